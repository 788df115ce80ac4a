"""`ketamine-cds serve` as real processes on one store: JWT replay refused across processes
and across the workers of `--workers 2`, no delayed-ACK latency, graceful SIGTERM, workers
replaced when they die, feedback that survives SIGKILL, metrics summed over workers, and the
PostgreSQL migration gate."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.serving import Supervisor
from tests.store.helpers import EhrClient, free_port
from tests.store.processes import (
    ROOT,
    environment,
    real_now,
    rolled,
    run_cli,
    serving,
    wait_for,
)
from tests.store.support import _admin, postgres_admin_url
from tests.store.test_app_store import SCREEN, feedback_body, request_for

TOKENS = 12


def _metric(url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def _send_pairs(urls: tuple[str, str], ehr: EhrClient) -> list[tuple[int, int]]:
    """Each of TOKENS fresh tokens sent twice at the same moment, once to each URL, each on a
    connection of its own; the two statuses per token."""
    body = rolled(request_for("trd-two-switches"))

    def post(url: str, token: str) -> int:
        with httpx.Client(timeout=30) as client:
            response = client.post(
                f"{url}/cds-services/{SCREEN}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
        return response.status_code

    pairs = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(TOKENS):
            token = ehr.token(SCREEN, now=real_now())
            first, second = pool.submit(post, urls[0], token), pool.submit(post, urls[1], token)
            pairs.append((first.result(), second.result()))
    return pairs


def test_serving_two_processes_one_store_token_accepted_once(
    store_url: str, tmp_path: Path
) -> None:
    """Verify that two `ketamine-cds serve` processes on one store accept each JWT exactly once
    between them (one 200, one 401), the same token sent to both at the same moment."""
    ehr = EhrClient()
    env = environment(store_url, ehr.environment())
    with (
        serving(env, log=tmp_path / "a.log") as first,
        serving(env, log=tmp_path / "b.log") as second,
    ):
        pairs = _send_pairs((first.url, second.url), ehr)
    assert all(sorted(pair) == [200, 401] for pair in pairs), pairs


def test_serving_two_workers_one_port_token_accepted_once_metrics_summed(
    store_url: str, tmp_path: Path
) -> None:
    """Verify that `serve --workers 2` accepts each JWT once over both workers (a replay that
    reaches the other worker is refused too), and that /metrics sums the workers' counts."""
    ehr = EhrClient()
    env = environment(store_url, ehr.environment())
    with serving(env, "--workers", "2", log=tmp_path / "w.log") as service:
        pairs = _send_pairs((service.url, service.url), ehr)
        calls = {
            status: _metric(
                service.url,
                "ketamine_cds_hook_calls_total",
                service=SCREEN,
                endpoint="service",
                status=status,
            )
            for status in ("200", "401")
        }
        accepted = service.messages("jwt accepted")
        refused = service.messages("jwt rejected")
        workers = set(service.worker_pids())
    assert all(sorted(pair) == [200, 401] for pair in pairs), pairs
    assert calls == {"200": TOKENS, "401": TOKENS}
    assert len(workers) == 2
    assert {line["pid"] for line in accepted} == workers, "both workers should have served"
    assert {line["pid"] for line in refused} <= workers
    by_worker: dict[int, int] = defaultdict(int)
    for line in accepted:
        by_worker[line["pid"]] += 1
    assert sum(by_worker.values()) == TOKENS


def _median_ms(url: str, body: dict[str, Any], calls: int = 40) -> float:
    with httpx.Client(base_url=url, timeout=10) as client:
        client.post(f"/cds-services/{SCREEN}", json=body)  # connection and first-call costs
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            response = client.post(f"/cds-services/{SCREEN}", json=body)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    return statistics.median(times)


LATENCY_RUNS = {
    "serve-1-worker": (["--workers", "1"], False),
    "serve-2-workers": (["--workers", "2"], False),
    "control-uvicorn-workers-2": (None, True),
}


@pytest.mark.parametrize(("args", "slow"), list(LATENCY_RUNS.values()), ids=list(LATENCY_RUNS))
def test_serving_latency_no_delayed_ack_penalty(
    args: list[str] | None, slow: bool, isolated_store: str, tmp_path: Path, capsys: Any
) -> None:
    """Verify that a hook call over a keep-alive connection answers in a few milliseconds with
    one worker and with two (TCP_NODELAY set), while the control, uvicorn's own --workers 2,
    pays the ~40 ms delayed-ACK penalty on the same machine."""
    env = environment(isolated_store)
    body = rolled(request_for("trd-two-switches"))
    if args is None:
        median = _median_ms_control(env, body, tmp_path)
    else:
        with serving(env, "--dev", *args, log=tmp_path / "lat.log") as service:
            median = _median_ms(service.url, body)
    with capsys.disabled():
        print(
            f"\n    hook call median over HTTP, {' '.join(args or ['uvicorn --workers 2'])}: "
            f"{median:.1f} ms"
        )
    if slow:
        assert median > 30, median
    else:
        assert median < 20, median


def _median_ms_control(env: dict[str, str], body: dict[str, Any], tmp_path: Path) -> float:
    """The benchmark's exact `uvicorn --workers 2` (benchmarks/serve.py, mode uvicorn)."""
    import subprocess
    import sys

    port = free_port()
    with (tmp_path / "control.log").open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.serve",
                "--port",
                str(port),
                "--workers",
                "2",
                "--mode",
                "uvicorn",
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 90, "the control server")
        time.sleep(2)  # both workers up
        return _median_ms(url, body)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


class _SlowFhir(http.server.ThreadingHTTPServer):
    """A FHIR server on loopback that answers every query after a delay (empty results)."""

    delay = 1.5

    def __init__(self) -> None:
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(handler) -> None:
                self.requests += 1
                time.sleep(self.delay)
                path = handler.path.split("?")[0].rstrip("/").split("/")
                if len(path) >= 2 and path[-2] == "Patient":
                    body = {"resourceType": "Patient", "id": path[-1]}
                else:
                    body = {"resourceType": "Bundle", "type": "searchset", "total": 0}
                data = json.dumps(body).encode()
                handler.send_response(200)
                handler.send_header("Content-Type", "application/fhir+json")
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data)

            def log_message(handler, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def slow_fhir() -> Iterator[_SlowFhir]:
    server = _SlowFhir()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_serving_sigterm_call_in_flight_finishes_then_exit_0(
    isolated_store: str, tmp_path: Path, slow_fhir: _SlowFhir
) -> None:
    """Verify that SIGTERM to `serve --workers 2` lets a call in flight finish (200), then the
    workers and the supervisor exit 0 and the metrics directory is removed."""
    env = environment(isolated_store)
    fhir = f"http://127.0.0.1:{slow_fhir.server_address[1]}/fhir"
    body = rolled(request_for("trd-two-switches", mode="fetch", fhir_server=fhir))
    with serving(env, "--dev", "--workers", "2", log=tmp_path / "t.log") as service:
        [started] = service.messages("supervisor started")
        metrics_dir = Path(str(started["message"]).split("metrics_dir=")[1])
        assert metrics_dir.is_dir()
        with ThreadPoolExecutor(max_workers=1) as pool:
            call = pool.submit(
                lambda: httpx.post(f"{service.url}/cds-services/{SCREEN}", json=body, timeout=30)
            )
            wait_for(lambda: slow_fhir.requests > 0, 30, "the call to reach the FHIR server")
            stopped_at = time.monotonic()
            service.process.send_signal(signal.SIGTERM)
            response = call.result(timeout=30)
            code = service.process.wait(timeout=40)
        took = time.monotonic() - stopped_at
    assert response.status_code == 200, response.text
    assert code == 0, service.tail()
    assert took < 30
    assert not metrics_dir.exists()
    assert service.messages("supervisor stopped code=0")


def test_serving_worker_killed_replaced_service_still_answers(
    isolated_store: str, tmp_path: Path
) -> None:
    """Verify that a worker killed with SIGKILL is replaced by a new one and the port keeps
    answering."""
    env = environment(isolated_store)
    with serving(env, "--dev", "--workers", "2", log=tmp_path / "k.log") as service:
        first = service.worker_pids()
        os.kill(first[0], signal.SIGKILL)
        wait_for(lambda: len(service.worker_pids()) == 3, 30, "a replacement worker")
        replacement = service.worker_pids()[-1]
        wait_for(
            lambda: len(service.messages("Application startup complete")) >= 3,
            60,
            "the replacement to start",
        )
        statuses = [httpx.get(f"{service.url}/readyz", timeout=5).status_code for _ in range(20)]
        alive = service.process.poll() is None
    assert replacement not in first
    assert service.messages("worker exited")
    assert statuses == [200] * 20
    assert alive


def test_serving_feedback_committed_survives_sigkill_in_report(
    store_url: str, tmp_path: Path
) -> None:
    """Verify that feedback answered 200 is in the store after the service is killed with
    SIGKILL right after the answer, is there when the service is started again, and appears in
    `ketamine-cds report`."""
    env = environment(store_url)
    with serving(env, "--dev", log=tmp_path / "f1.log") as service:
        answer = httpx.post(
            f"{service.url}/cds-services/{SCREEN}",
            json=rolled(request_for("trd-two-switches")),
            timeout=30,
        ).json()
        [card] = answer["cards"]
        wait_for(
            lambda: (
                _metric(service.url, "ketamine_cds_card_log_records_total", result="written") >= 1
            ),
            30,
            "the card log record",
        )
        response = httpx.post(
            f"{service.url}/cds-services/{SCREEN}/feedback",
            json=rolled(feedback_body(card, "accepted")),
            timeout=30,
        )
        service.kill_all()
    assert response.status_code == 200
    with serving(env, "--dev", log=tmp_path / "f2.log") as again:
        ready = httpx.get(f"{again.url}/readyz", timeout=5).status_code
        report = run_cli(["report", "--since", "1d", "--format", "json"], env)
    assert ready == 200
    assert report.returncode == 0, report.stderr
    kinds = {(k["service"], k["kind"]): k for k in json.loads(report.stdout)["kinds"]}
    referral = kinds[(SCREEN, "screen-referral")]
    assert (referral["shown"], referral["accepted"], referral["without_feedback"]) == (1, 1, 0)


@pytest.fixture
def unmigrated_postgres(postgres_database: str) -> Iterator[str]:
    """A PostgreSQL database of its own, created empty (no schema), dropped after."""
    from sqlalchemy import make_url

    name = f"{make_url(postgres_database).database}_empty"
    import asyncio

    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)
        )
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serving_postgresql_unmigrated_refused_until_db_upgrade(
    unmigrated_postgres: str, workers: str, tmp_path: Path
) -> None:
    """Verify that `serve` on a PostgreSQL database without the schema exits 2 with a message
    naming `ketamine-cds db upgrade` (before any worker starts), that `db current` says so, and
    that after `db upgrade` the service starts and is ready."""
    env = environment(unmigrated_postgres)
    refused = run_cli(["serve", "--dev", "--port", str(free_port()), "--workers", workers], env)
    current_before = run_cli(["db", "current"], env)
    upgraded = run_cli(["db", "upgrade"], env)
    again = run_cli(["db", "upgrade"], env)
    current_after = run_cli(["db", "current"], env)
    assert refused.returncode == 2
    assert "ketamine-cds db upgrade" in refused.stderr
    assert "worker started" not in refused.stderr
    assert "password" not in refused.stderr.lower()
    assert current_before.returncode == 1
    assert (upgraded.returncode, again.returncode, current_after.returncode) == (0, 0, 0)
    assert "upgraded from no schema" in upgraded.stdout and "nothing to do" in again.stdout
    with serving(env, "--dev", "--workers", workers, log=tmp_path / "m.log") as service:
        assert httpx.get(f"{service.url}/readyz", timeout=5).status_code == 200


def test_serving_workers_port_in_use_refused(isolated_store: str) -> None:
    """Verify that `serve --workers 2` on a port another server holds exits 1 with a message
    (SO_REUSEPORT would otherwise let it share the port silently)."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = run_cli(
            ["serve", "--dev", "--port", str(port), "--workers", "2"], environment(isolated_store)
        )
    assert result.returncode == 1
    assert "already in use" in result.stderr


class _FailingSupervisor(Supervisor):
    """The real supervisor, with workers that exit at once (as a worker that cannot start)."""

    def _command(self) -> list[str]:
        return [sys.executable, "-c", "import sys; sys.exit(3)"]


def test_serving_workers_exiting_at_start_supervisor_gives_up() -> None:
    """Verify that workers that keep dying right after their start are restarted a few times,
    then the supervisor exits 1 (rather than loop for ever) and removes its metrics directory."""
    supervisor = _FailingSupervisor(
        host="127.0.0.1", port=free_port(), workers=1, dev=True, graceful_timeout=1
    )
    started = time.monotonic()
    assert supervisor.run() == 1
    assert supervisor.rapid_exits == 5
    assert time.monotonic() - started < 30
    assert not Path(supervisor.metrics_dir).exists()
