"""A tiny FHIR R4 server for the no-prefetch figures when the Medplum server is not available.

Serves one generated chart from memory (``python -m benchmarks.standin_fhir --port P --spec
JSON``) on loopback: the EHR side's in-memory server (``ehr.memory_fhir``: reads, type searches
with ``patient``, ``code`` and ``_include=*:medication``, pages of ``--page-size`` entries, 20 by
default as Medplum's, linked by ``next``) behind ASGI, with an artificial per-request latency
(``--latency-ms``, default 10) standing in for the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import orjson
import uvicorn

from benchmarks.charts import ChartSpec, generate_chart
from ehr.memory_fhir import FHIR_JSON, MemoryFhirServer

DEFAULT_PAGE_SIZE = 20


class StandInFhir:
    """ASGI app: ``server`` answers every GET after ``latency`` seconds; ``/healthz`` is up."""

    def __init__(self, server: MemoryFhirServer, latency: float) -> None:
        self.server = server
        self.latency = latency

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if self.latency:
            await asyncio.sleep(self.latency)
        if scope["path"] == "/healthz":
            status, body = 200, {"status": "ok"}
        else:
            raw_path = scope.get("raw_path") or scope["path"].encode()
            status, body = self.server.handle(raw_path.decode(), scope["query_string"].decode())
        payload = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", FHIR_JSON.encode()),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spec", required=True, help="JSON ChartSpec")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE)
    args = parser.parse_args(argv)
    spec = ChartSpec(**json.loads(args.spec))
    server = MemoryFhirServer(
        generate_chart(spec, args.seed),
        base=f"http://127.0.0.1:{args.port}/fhir",
        page_size=args.page_size,
    )
    uvicorn.run(
        StandInFhir(server, args.latency_ms / 1000),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
