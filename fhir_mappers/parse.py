"""Structural validation of FHIR R4 resources with fhir.resources (its R4B models read R4 4.0.1).

Validation is the gate against malformed data: a resource that a rule needs is validated once; one
that fails is skipped and reported as a data gap naming only its type and id. Resources no rule
needs are never validated (it costs 50-300 µs each), which is why the mappers filter by code
(and, for Observations, date) first.

Verdicts are remembered by a digest of the resource's exact JSON (BLAKE2b-128 of its orjson
serialisation): an EHR sends the same chart again on every hook call for a patient (chart open,
each order selection, signing), and a verdict depends on nothing but the resource's content. Only
the digests and verdicts are kept (no resource content), in a bounded LRU.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from fhir_mappers.bindings import bindings_ok

logger = logging.getLogger(__name__)

_MODELS: dict[str, Any] = {}

Verdict = Literal["valid", "unknown-type", "malformed", "illegal-status"]

VERDICT_CACHE_SIZE = 50_000
"""Digests kept (about 150 bytes each: under 10 MB)."""


class _VerdictCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._verdicts: OrderedDict[bytes, Verdict] = OrderedDict()

    def get(self, key: bytes) -> Verdict | None:
        verdict = self._verdicts.get(key)
        if verdict is None:
            self.misses += 1
            return None
        self.hits += 1
        self._verdicts.move_to_end(key)
        return verdict

    def put(self, key: bytes, verdict: Verdict) -> None:
        self._verdicts[key] = verdict
        if len(self._verdicts) > self.size:
            self._verdicts.popitem(last=False)

    def clear(self) -> None:
        self._verdicts.clear()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._verdicts)


_VERDICTS = _VerdictCache(VERDICT_CACHE_SIZE)


def clear_validation_cache() -> None:
    """Forget every remembered verdict (tests and benchmarks measure the cold path with it)."""
    _VERDICTS.clear()


def validation_cache_info() -> dict[str, int]:
    return {"size": len(_VERDICTS), "hits": _VERDICTS.hits, "misses": _VERDICTS.misses}


def preload_models(
    resource_types: Iterable[str] = (
        "Patient",
        "Condition",
        "MedicationRequest",
        "MedicationStatement",
        "Observation",
        "AllergyIntolerance",
    ),
) -> None:
    """Import the fhir.resources models now (start-up) rather than on the first hook call."""
    for resource_type in resource_types:
        _model(resource_type)


def _model(resource_type: str) -> Any:
    model = _MODELS.get(resource_type)
    if model is None:
        from fhir.resources.R4B import get_fhir_model_class

        model = get_fhir_model_class(resource_type)
        _MODELS[resource_type] = model
    return model


def resource_ref(resource: dict[str, Any]) -> str:
    """ "Type/id" of a resource (id "?" when it has none)."""
    return f"{resource.get('resourceType', 'Unknown')}/{resource.get('id', '?')}"


def _digest(resource: dict[str, Any]) -> bytes | None:
    try:
        return hashlib.blake2b(orjson.dumps(resource), digest_size=16).digest()
    except (TypeError, orjson.JSONEncodeError):
        return None  # not plain JSON data: validate it every time


def _verdict(resource: dict[str, Any], resource_type: str) -> Verdict:
    try:
        model = _model(resource_type)
    except KeyError:
        return "unknown-type"
    try:
        model.model_validate(resource)
    except (ValidationError, ValueError, TypeError):
        return "malformed"
    if not bindings_ok(resource):
        return "illegal-status"
    return "valid"


def is_valid(resource: dict[str, Any]) -> bool:
    """Whether the resource validates against its FHIR R4(B) model. Logs type and id only."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return False
    key = _digest(resource)
    verdict = _VERDICTS.get(key) if key is not None else None
    if verdict is None:
        verdict = _verdict(resource, resource_type)
        if key is not None:
            _VERDICTS.put(key, verdict)
    if verdict == "unknown-type":
        logger.warning("unknown FHIR resource type %s skipped", resource_type[:40])
    elif verdict == "malformed":
        logger.warning("malformed FHIR resource %s skipped", resource_ref(resource)[:120])
    elif verdict == "illegal-status":
        logger.warning(
            "FHIR resource %s has an illegal status code; skipped", resource_ref(resource)[:120]
        )
    return verdict == "valid"
