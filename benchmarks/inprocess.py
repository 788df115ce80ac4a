"""Server-side latency, in process: the request goes straight into the ASGI app (no sockets).

Run as a subprocess per chart size (``python -m benchmarks.inprocess SPEC ...``) so that the
measuring process holds only the request bodies (bytes), like a server does, and no chart
objects from other sizes inflate the garbage collector's work. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.app import BenchJwt, create_bench_app, running
from benchmarks.charts import ChartSpec, generate_chart
from benchmarks.hook_bodies import request_body
from benchmarks.stats import summary


def bodies_for(spec: ChartSpec, services: list[str], seed: int) -> tuple[dict[str, bytes], int]:
    resources = generate_chart(spec, seed)
    bodies = {s: orjson.dumps(request_body(spec, resources, s)) for s in services}
    return bodies, len(resources)


def decode_floor(body: bytes, repeats: int, *, collector: bool) -> list[float]:
    """orjson.loads of the same body, in ms, in the measuring process; ``collector`` False
    pauses the garbage collector during each decode (the pure decode cost)."""
    samples = []
    for _ in range(repeats):
        if not collector:
            gc.disable()
        try:
            started = time.perf_counter()
            decoded = orjson.loads(body)
            samples.append((time.perf_counter() - started) * 1000)
        finally:
            gc.enable()
        del decoded
    return samples


CPU_SHARE: list[float] = []
"""Per measurement: CPU time / wall time of this process (below 1: other work took the core)."""


def _clear_cache() -> bool:
    """Forget the service's validation verdicts (cold path); False if it keeps none."""
    from fhir_mappers import parse

    clear = getattr(parse, "clear_validation_cache", None)
    if clear is None:
        return False
    clear()
    return True


async def _samples(
    call: Any,
    path: str,
    body: bytes,
    iterations: int,
    time_limit: float,
    *,
    cold: bool,
    signer: BenchJwt | None,
) -> tuple[list[float], int]:
    samples: list[float] = []
    errors = 0
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    deadline = time.perf_counter() + time_limit
    while len(samples) < iterations and time.perf_counter() < deadline:
        if cold:
            _clear_cache()
        token = signer.token(path.rsplit("/", 1)[-1]) if signer else None  # signed untimed
        started = time.perf_counter()
        status, _ = await call(path, body, token)
        # A server's event loop runs its other tasks between requests (it waits on the socket);
        # here nothing else would ever run (the card log writer would starve until the end). One
        # loop iteration, inside the timed region: the background work is paid for, not hidden.
        await asyncio.sleep(0)
        samples.append((time.perf_counter() - started) * 1000)
        errors += status != 200
    wall = time.perf_counter() - wall_started
    CPU_SHARE.append((time.process_time() - cpu_started) / wall if wall else 1.0)
    return samples, errors


async def _measure(
    bodies: dict[str, bytes],
    iterations: int,
    warmup: int,
    time_limit: float,
    signer: BenchJwt | None,
) -> dict[str, Any]:
    app = create_bench_app()

    def token(service_id: str) -> str | None:
        return signer.token(service_id) if signer else None

    results: dict[str, Any] = {}
    async with running(app) as call:
        cards: dict[str, int] = {}
        for service_id, body in bodies.items():
            path = f"/cds-services/{service_id}"
            status, answer = await call(path, body, token(service_id))
            if status != 200:
                raise SystemExit(f"{service_id}: HTTP {status}: {answer[:300]!r}")
            cards[service_id] = len(orjson.loads(answer)["cards"])
            for _ in range(warmup):
                await call(path, body, token(service_id))
                await asyncio.sleep(0)
        for service_id, body in bodies.items():
            path = f"/cds-services/{service_id}"
            has_cache = _clear_cache()
            cold, cold_errors = await _samples(
                call, path, body, iterations, time_limit, cold=True, signer=signer
            )
            warm, warm_errors = (
                await _samples(
                    call, path, body, iterations, time_limit / 2, cold=False, signer=signer
                )
                if has_cache
                else (cold, 0)
            )
            cpu_share = min(CPU_SHARE[-2:]) if has_cache else CPU_SHARE[-1]
            repeats = max(5, min(50, len(cold)))
            results[service_id] = {
                "latency_ms": summary(cold),
                "warm_latency_ms": summary(warm),
                "verdict_cache": has_cache,
                "decode_ms": summary(decode_floor(body, repeats, collector=True)),
                "decode_pure_ms": summary(decode_floor(body, repeats, collector=False)),
                "body_bytes": len(body),
                "cards": cards[service_id],
                "errors": cold_errors + warm_errors,
                "cpu_share": round(cpu_share, 3),
            }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("specs", nargs="+", help="JSON ChartSpecs, measured in this order")
    parser.add_argument("--services", required=True)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per hook and chart")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--jwt-key",
        type=Path,
        default=None,
        help="PEM key of the trusted client (benchmarks.app.BenchJwt): a new token every call",
    )
    args = parser.parse_args(argv)
    signer = BenchJwt.from_pem(args.jwt_key.read_bytes()) if args.jwt_key else None
    for raw in args.specs:
        spec = ChartSpec(**json.loads(raw))
        bodies, count = bodies_for(spec, args.services.split(","), args.seed)
        gc.collect()
        results = asyncio.run(
            _measure(bodies, args.iterations, args.warmup, args.time_limit, signer)
        )
        del bodies
        gc.collect()
        sys.stdout.write(
            json.dumps({"spec": spec.name, "resources": count, "services": results}) + "\n"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
