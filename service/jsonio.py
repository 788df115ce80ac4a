"""JSON for request bodies, FHIR answers and responses: orjson, with the standard library as a
fallback for valid JSON that orjson refuses (integers beyond 64 bits). Non-standard constants
(NaN, Infinity) are refused."""

from __future__ import annotations

import json
from typing import Any

import orjson


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(raw: bytes) -> Any:
    """The decoded document; ``ValueError`` if ``raw`` is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise ValueError("not JSON") from exc


def dumps(value: Any) -> bytes:
    """``value`` as JSON bytes: orjson, with the standard library for what orjson refuses
    (integers beyond 64 bits, as a FHIR server may hold them)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
