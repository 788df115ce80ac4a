"""A tiny FHIR R4 server for the no-prefetch figures when the Medplum server is not available.

Serves one generated chart from memory (``python -m benchmarks.standin_fhir --port P --spec
JSON``) on loopback: ``GET /fhir/Patient/{id}`` and type searches with ``patient``, ``code``
(``system|code`` OR-lists), ``_include=*:medication``, ``_count`` and ``_offset`` paging with
``next`` links (default page size 20, as Medplum's), and an artificial per-request latency
(``--latency-ms``, default 10) standing in for the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson
import uvicorn

from benchmarks.charts import ChartSpec, generate_chart

DEFAULT_COUNT = 20
MAX_COUNT = 1000


class StandInFhir:
    def __init__(
        self, resources: list[dict[str, Any]], latency: float, base: str, page_size: int
    ) -> None:
        self.latency = latency
        self.page_size = page_size
        self.base = base
        self.by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.by_ref: dict[str, dict[str, Any]] = {}
        for resource in resources:
            self.by_type[resource["resourceType"]].append(resource)
            self.by_ref[f"{resource['resourceType']}/{resource['id']}"] = resource

    def _search(self, kind: str, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        found = self.by_type.get(kind, [])
        patient = query.get("patient", [None])[0]
        if patient:
            wanted_ref = patient if "/" in patient else f"Patient/{patient}"
            found = [
                r
                for r in found
                if (r.get("subject") or r.get("patient") or {}).get("reference") == wanted_ref
            ]
        codes = query.get("code")
        if codes:
            wanted = set()
            for value in codes[0].split(","):
                system, _, code = value.rpartition("|")
                wanted.add((system, code))
            found = [
                r
                for r in found
                if any(
                    (c.get("system"), c.get("code")) in wanted
                    for c in (r.get("code") or {}).get("coding", [])
                )
            ]
        return found

    def handle(self, path: str, query_string: str) -> tuple[int, dict[str, Any]]:
        parts = [p for p in path.removeprefix("/fhir").split("/") if p]
        query = parse_qs(query_string)
        if len(parts) == 2:
            resource = self.by_ref.get(f"{parts[0]}/{parts[1]}")
            if resource is None:
                return 404, {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "not-found"}],
                }
            return 200, resource
        if len(parts) != 1:
            return 400, {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-supported"}],
            }
        kind = parts[0]
        matches = self._search(kind, query)
        count = min(MAX_COUNT, int(query.get("_count", [self.page_size])[0]))
        offset = int(query.get("_offset", ["0"])[0])
        page = matches[offset : offset + count]
        entries = [
            {
                "fullUrl": f"{self.base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in page
        ]
        if query.get("_include", [""])[0].endswith(":medication"):
            seen = set()
            for resource in page:
                ref = (resource.get("medicationReference") or {}).get("reference", "")
                if ref.startswith("Medication/") and ref in self.by_ref and ref not in seen:
                    seen.add(ref)
                    entries.append(
                        {
                            "fullUrl": f"{self.base}/{ref}",
                            "resource": self.by_ref[ref],
                            "search": {"mode": "include"},
                        }
                    )
        flat = {k: v[0] for k, v in query.items()}
        links = [{"relation": "self", "url": f"{self.base}/{kind}?{urlencode(flat)}"}]
        if offset + count < len(matches):
            flat.update({"_count": str(count), "_offset": str(offset + count)})
            links.append({"relation": "next", "url": f"{self.base}/{kind}?{urlencode(flat)}"})
        return 200, {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": links,
            "entry": entries,
        }

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
            status, body = self.handle(scope["path"], scope["query_string"].decode())
        payload = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/fhir+json"),
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
    parser.add_argument("--page-size", type=int, default=DEFAULT_COUNT)
    args = parser.parse_args(argv)
    spec = ChartSpec(**json.loads(args.spec))
    base = f"http://127.0.0.1:{args.port}/fhir"
    app = StandInFhir(generate_chart(spec, args.seed), args.latency_ms / 1000, base, args.page_size)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
