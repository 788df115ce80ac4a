"""Real `ketamine-cds` processes for the multi-process tests: started with the test's own
settings on free ports, waited for, stopped (SIGTERM, then SIGKILL), their JSON logs read back.

They run on the machine's real clock (the test process's clock is frozen): tokens and request
bodies for them are made at the real time (``real_now``, ``rolled``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import time_machine

from ehr.date_roller import roll_dates
from tests.factories import NOW
from tests.store.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 90.0
STOP_SECONDS = 45.0


def real_now() -> float:
    """The machine's clock, also while the test's clock is frozen."""
    if time_machine.escape_hatch.is_travelling():
        return float(time_machine.escape_hatch.time.time())
    return time.time()


def real_today() -> date:
    return datetime.fromtimestamp(real_now()).date()


def rolled(body: dict[str, Any]) -> dict[str, Any]:
    """A request body written at the frozen test clock, with its dates moved to today."""
    wrapper = {"timestamp": NOW.date().isoformat(), "body": body}
    moved: dict[str, Any] = roll_dates(wrapper, real_today())["body"]
    return moved


def environment(database_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any KETAMINE_CDS_* or Prometheus setting, plus the
    store and the given settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KETAMINE_CDS_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env["KETAMINE_CDS_DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ehr.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        found = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found

    def messages(self, prefix: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if str(line.get("message", "")).startswith(prefix)]

    def tail(self) -> str:
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:])

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            raise AssertionError(
                f"the service did not stop on signal {sig}:\n{self.tail()}"
            ) from None

    def kill_all(self) -> None:
        """SIGKILL the service and everything it started (its process group and the workers'
        own groups)."""
        for pid in [self.process.pid, *self.worker_pids()]:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        return [
            int(str(line["message"]).split("pid=")[1].split()[0])
            for line in self.messages("worker started")
        ]


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def serving(
    env: dict[str, str], *args: str, log: Path, port: int | None = None
) -> Iterator[Running]:
    """`ketamine-cds serve --port P ARGS` until it answers /healthz; stopped at the end."""
    port = port or free_port()
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "ehr.cli", "serve", "--port", str(port), *args],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Running(process, port, log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _ready(running.url):
            if process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}:\n{running.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not answer /healthz:\n{running.tail()}")
            time.sleep(0.1)
        if "--workers" in args:
            workers = int(args[args.index("--workers") + 1])
            wait_for(
                lambda: len(running.messages("Application startup complete")) >= workers,
                START_SECONDS,
                "every worker",
            )
        yield running
    finally:
        if process.poll() is None:
            running.stop()
