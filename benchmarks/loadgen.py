"""Closed-loop HTTP/1.1 load generator (the fallback when ``wrk`` is not installed).

Runs as its own process (``python -m benchmarks.loadgen``): N keep-alive connections on raw
asyncio streams, each sending the same POST and waiting for the answer before the next one,
until ``--duration`` seconds or ``--max-requests`` requests; with ``--jwt-key`` every request
carries a new signed token (signed in this process, so its cost is the load generator's, not
the service's). Loopback URLs only. Prints one
JSON document: requests, errors, throughput and latency percentiles (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.app import BenchJwt
from benchmarks.stats import summary

PATIENT_ID = b"pt-0000000000"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _worker(
    host: str,
    port: int,
    make_request: Callable[[], bytes],
    stop_at: float,
    budget: list[int],
    samples: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            request = make_request()
            started = time.perf_counter()
            try:
                writer.write(request)
                await writer.drain()
                status = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors[0] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            samples.append((time.perf_counter() - started) * 1000)
            if status != 200:
                errors[0] += 1
    finally:
        writer.close()


async def run(
    url: str,
    body: bytes,
    connections: int,
    duration: float,
    max_requests: int,
    unique_offset: int | None = None,
    signer: BenchJwt | None = None,
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if not _loopback(host):
        raise SystemExit("the load generator only targets loopback addresses")
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    ).encode()
    counter = [unique_offset or 0]
    service_id = parts.path.rstrip("/").rsplit("/", 1)[-1]

    def make_request() -> bytes:
        # A new signed token (new jti) for every call: the service refuses a replayed one.
        auth = b""
        if signer is not None:
            auth = b"Authorization: Bearer %s\r\n" % signer.token(service_id).encode()
        if unique_offset is None:
            return head + auth + b"\r\n" + body
        counter[0] += 1  # a new patient id in every resource: a never-seen chart
        return head + auth + b"\r\n" + body.replace(PATIENT_ID, b"pt-%010d" % counter[0])

    samples: list[float] = []
    errors = [0]
    budget = [max_requests]
    started = time.perf_counter()
    stop_at = started + duration
    await asyncio.gather(
        *(
            _worker(host, port, make_request, stop_at, budget, samples, errors)
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    return {
        "tool": "benchmarks.loadgen",
        "requests": len(samples),
        "errors": errors[0],
        "seconds": elapsed,
        "rps": len(samples) / elapsed if elapsed else 0.0,
        "latency_ms": summary(samples),
        "connections": connections,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("body_file", type=Path)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=10**9)
    parser.add_argument(
        "--unique-offset",
        type=int,
        default=None,
        help="replace the chart's patient id with a new one per call, counting from here",
    )
    parser.add_argument(
        "--jwt-key",
        type=Path,
        default=None,
        help="PEM key of the trusted client (benchmarks.app.BenchJwt): a new token every call",
    )
    args = parser.parse_args(argv)
    signer = BenchJwt.from_pem(args.jwt_key.read_bytes()) if args.jwt_key else None
    result = asyncio.run(
        run(
            args.url,
            args.body_file.read_bytes(),
            args.connections,
            min(args.duration, 600.0),
            args.max_requests,
            args.unique_offset,
            signer,
        )
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
