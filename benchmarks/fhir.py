"""No-prefetch mode: the hook queries a real local FHIR server; its wall time next to the
slowest FHIR request it made (and the slowest search, all pages of it).

The server is the Medplum in-memory server (``integration/fhir_server.py``) when it is present
and Node can run it, else the stand-in of ``benchmarks/standin_fhir.py`` (which says so in the
results). Requests are timed by a transport wrapped around the service's own HTTP client, from
sending the request to having read the whole body.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.app import asgi_post, create_bench_app
from benchmarks.charts import ChartSpec, generate_chart
from benchmarks.hook_bodies import hook_request_for
from benchmarks.http import REPO, free_port
from benchmarks.stats import summary
from ehr.seeding import put_transaction

STANDIN_LATENCY_MS = 10.0

FHIR_TYPES = frozenset(
    {
        "Patient",
        "Condition",
        "MedicationRequest",
        "MedicationStatement",
        "Observation",
        "AllergyIntolerance",
        "Medication",
    }
)


class TimingTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.records: list[tuple[str, float]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        segments = [s for s in request.url.path.split("/") if s]
        kind = next((s for s in reversed(segments) if s in FHIR_TYPES), "?")
        self.records.append((kind, (time.perf_counter() - started) * 1000))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- servers -----------------------------------------------------------------------------------


@contextlib.contextmanager
def standin_server(
    spec: ChartSpec, seed: int, latency_ms: float, page_size: int, log_path: Path
) -> Iterator[str]:
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 (our own module)
            [
                sys.executable,
                "-m",
                "benchmarks.standin_fhir",
                "--port",
                str(port),
                "--spec",
                json.dumps(dataclasses.asdict(spec)),
                "--seed",
                str(seed),
                "--latency-ms",
                str(latency_ms),
                "--page-size",
                str(page_size),
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"stand-in FHIR server exited; see {log_path}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("stand-in FHIR server did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)


def node_version() -> str:
    try:
        done = subprocess.run(
            ["node", "--version"],  # noqa: S607 (whichever node is on PATH, as the tests use)
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return done.stdout.strip().lstrip("v") or "?"


def medplum_module() -> Any | None:
    """``integration.fhir_server`` if it exists and imports, else None."""
    if not (REPO / "integration" / "fhir_server.py").exists():
        return None
    try:
        return importlib.import_module("integration.fhir_server")
    except Exception:  # any import problem means: not usable
        return None


@contextlib.contextmanager
def medplum_server(module: Any, spec: ChartSpec, seed: int, page_size: int) -> Iterator[str]:
    """The Medplum server of ``integration/fhir_server.py``, loaded with the chart (PUTs in
    transactions, the way the integration tests load data)."""
    with module.medplum_server(page_size=page_size) as server:
        resources = generate_chart(spec, seed)
        with httpx.Client(timeout=300) as client:
            for start in range(0, len(resources), 500):
                bundle = put_transaction(resources[start : start + 500], base_url=server.base_url)
                response = client.post(
                    server.base_url,
                    content=orjson.dumps(bundle),
                    headers={"Content-Type": "application/fhir+json"},
                )
                if response.status_code >= 300:
                    raise RuntimeError(
                        f"loading the chart into Medplum: HTTP {response.status_code} "
                        f"{response.text[:300]}"
                    )
        yield str(server.base_url)


# --- measurement -------------------------------------------------------------------------------


async def _measure(
    base_url: str,
    service_ids: list[str],
    resources: list[dict[str, Any]],
    iterations: int,
    warmup: int,
) -> dict[str, Any]:
    transport = TimingTransport()
    app = create_bench_app(transport=transport)
    out: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        for service_id in service_ids:
            body = orjson.dumps(
                hook_request_for(service_id, resources, mode="fetch", fhir_server=base_url)
            )
            status, answer = await asgi_post(app, f"/cds-services/{service_id}/explain", body)
            if status != 200:
                raise RuntimeError(f"{service_id} (no prefetch): HTTP {status}: {answer[:300]!r}")
            explained = orjson.loads(answer)
            gaps = [
                g
                for g in explained["assessment"].get("data_gaps", [])
                if "truncated" in g or "query" in g
            ]
            for _ in range(warmup):
                await asgi_post(app, f"/cds-services/{service_id}", body)
            walls: list[float] = []
            slowest_request: list[float] = []
            slowest_search: list[float] = []
            requests: list[int] = []
            ratios: list[float] = []
            for _ in range(iterations):
                transport.records.clear()
                started = time.perf_counter()
                status, _ = await asgi_post(app, f"/cds-services/{service_id}", body)
                wall = (time.perf_counter() - started) * 1000
                if status != 200:
                    raise RuntimeError(f"{service_id} (no prefetch): HTTP {status}")
                chains: dict[str, float] = defaultdict(float)
                for kind, elapsed in transport.records:
                    chains[kind] += elapsed
                top = max(e for _, e in transport.records)
                walls.append(wall)
                slowest_request.append(top)
                slowest_search.append(max(chains.values()))
                requests.append(len(transport.records))
                ratios.append(wall / top)
            out[service_id] = {
                "wall_ms": summary(walls),
                "slowest_request_ms": summary(slowest_request),
                "slowest_search_ms": summary(slowest_search),
                "ratio_wall_to_slowest_request": summary(ratios),
                "ratio_wall_to_slowest_search": summary(
                    [w / s for w, s in zip(walls, slowest_search, strict=True)]
                ),
                "requests_per_call": max(requests),
                "resources_by_key": explained["explanation"]["resources_by_key"],
                "gaps": gaps,
            }
    return out


def measure(
    base_url: str,
    spec: ChartSpec,
    seed: int,
    service_ids: list[str],
    iterations: int,
    warmup: int,
    log_path: Path,
) -> dict[str, Any]:
    """Run the measurement in a subprocess (its JSON logs go to ``log_path``)."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.fhir",
        base_url,
        json.dumps(dataclasses.asdict(spec)),
        "--seed",
        str(seed),
        "--services",
        ",".join(service_ids),
        "--iterations",
        str(iterations),
        "--warmup",
        str(warmup),
    ]
    with log_path.open("ab") as log:
        done = subprocess.run(  # noqa: S603 (our own module)
            command,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=log,
            check=False,
            timeout=1800,
        )
    if done.returncode != 0:
        raise RuntimeError(f"no-prefetch benchmark failed; see {log_path}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("spec", help="JSON ChartSpec")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--services", required=True)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    spec = ChartSpec(**json.loads(args.spec))
    resources = generate_chart(spec, args.seed)
    result = asyncio.run(
        _measure(args.base_url, args.services.split(","), resources, args.iterations, args.warmup)
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
