"""Structural validation of FHIR R4 resources with fhir.resources (its R4B models read R4 4.0.1).

Validation is the gate against malformed data, applied field by field to what the rules read:

- ``valid``: the whole resource validates (and its status codes are legal, see ``bindings``);
- ``tolerated``: it does not, but every defect is in an element no rule reads (``RULE_FIELDS``),
  is a required element that is simply absent (the mappers read absence as "no value"), or is an
  element FHIR does not define (``"stop"`` beside ``"start"`` in a Period: never read). Such
  a resource is used: a field no rule needs must not make the service drop a record (the CDS
  Hooks sandbox sends ``MedicationRequest.category`` as an object, for example);
- ``malformed``: an element a rule reads is present but invalid. The mappers still read what
  they can (they never raise), and the caller reports which screens could not be completed;
- ``unknown-type``: not a FHIR R4 resource type.

Resources no rule needs are never validated (it costs 50-300 µs each), which is why the mappers
filter by code (and, for Observations, date) first. Of a resource that is needed, only what can
change the verdict is validated: the elements a rule reads, every top-level primitive (FHIR's
required primitives among them) and the elements the model requires; the other complex elements
(narrative, identifiers, meta, performers, notes...) are left out before validation. A defect
there could only make the resource ``tolerated``, which is used exactly as a valid one, and they
hold most of the validation cost (measured on the benchmark's typical chart: a MedicationRequest
300 -> 150 µs, a Patient 1,100 -> 20 µs).

Verdicts are remembered by a digest of the resource's exact JSON (BLAKE2b-128 of its orjson
serialisation): an EHR sends the same chart again on every hook call for a patient (chart open,
each order selection, signing), and a verdict depends on nothing but the resource's content. Only
the digests and verdicts are kept (no resource content), in a bounded LRU. Log lines carry the
resource type only, never its id.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from fhir_mappers.bindings import illegal_status_fields

logger = logging.getLogger(__name__)

_MODELS: dict[str, Any] = {}

Verdict = Literal["valid", "tolerated", "malformed", "unknown-type"]

RULE_FIELDS: dict[str, frozenset[str]] = {
    "Patient": frozenset({"birthDate", "gender", "deceasedBoolean", "deceasedDateTime"}),
    "Condition": frozenset(
        {
            "code",
            "clinicalStatus",
            "verificationStatus",
            "onsetDateTime",
            "onsetPeriod",
            "abatementDateTime",
            "abatementPeriod",
            "recordedDate",
        }
    ),
    "MedicationRequest": frozenset(
        {
            "medicationCodeableConcept",
            "medicationReference",
            "contained",
            "status",
            "intent",
            "statusReason",
            "reasonCode",
            "reasonReference",
            "authoredOn",
            "dosageInstruction",
            "dispenseRequest",
        }
    ),
    "MedicationStatement": frozenset(
        {
            "medicationCodeableConcept",
            "medicationReference",
            "contained",
            "status",
            "statusReason",
            "reasonCode",
            "reasonReference",
            "effectiveDateTime",
            "effectivePeriod",
            "dateAsserted",
            "dosage",
        }
    ),
    "Observation": frozenset(
        {
            "code",
            "status",
            "effectiveDateTime",
            "effectivePeriod",
            "effectiveInstant",
            "issued",
            "valueQuantity",
            "valueInteger",
            "valueCodeableConcept",
            "component",
        }
    ),
    "MedicationAdministration": frozenset(
        {
            "medicationCodeableConcept",
            "medicationReference",
            "contained",
            "status",
            "statusReason",
            "reasonCode",
            "effectiveDateTime",
            "effectivePeriod",
            "dosage",
        }
    ),
    "MedicationDispense": frozenset(
        {
            "medicationCodeableConcept",
            "medicationReference",
            "contained",
            "status",
            "whenHandedOver",
            "whenPrepared",
            "quantity",
            "daysSupply",
            "dosageInstruction",
        }
    ),
    "ServiceRequest": frozenset(
        {
            "status",
            "intent",
            "code",
            "identifier",
            "authoredOn",
            "occurrenceDateTime",
            "occurrencePeriod",
        }
    ),
    "AllergyIntolerance": frozenset({"code", "clinicalStatus", "verificationStatus"}),
    "Medication": frozenset({"code", "ingredient"}),
}
"""The elements each mapper reads. A defect anywhere else cannot make a record unusable."""


@dataclass(frozen=True, slots=True)
class Inspection:
    verdict: Verdict
    bad_fields: tuple[str, ...] = ()
    """Elements a rule reads that are present but invalid (for ``malformed``)."""

    @property
    def usable(self) -> bool:
        return self.verdict in ("valid", "tolerated")


VALID = Inspection("valid")

VERDICT_CACHE_SIZE = 50_000
"""Digests kept (about 150 bytes each: under 10 MB)."""


class _VerdictCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._verdicts: OrderedDict[bytes, Inspection] = OrderedDict()

    def get(self, key: bytes) -> Inspection | None:
        verdict = self._verdicts.get(key)
        if verdict is None:
            self.misses += 1
            return None
        self.hits += 1
        self._verdicts.move_to_end(key)
        return verdict

    def put(self, key: bytes, verdict: Inspection) -> None:
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


_KEPT: dict[str, frozenset[str]] = {}


def _kept(resource_type: str, model: Any) -> frozenset[str]:
    """The complex elements of a resource type that are validated: those a rule reads and those
    the model requires (a missing required element is read as "no value", see ``_inspect``)."""
    kept = _KEPT.get(resource_type)
    if kept is None:
        required = {
            field.alias or name for name, field in model.model_fields.items() if field.is_required()
        }
        kept = RULE_FIELDS.get(resource_type, frozenset()) | frozenset(required)
        _KEPT[resource_type] = kept
    return kept


def validated_part(resource: dict[str, Any], kept: frozenset[str]) -> dict[str, Any]:
    """The resource without the complex elements no rule reads and the model does not require."""
    return {k: v for k, v in resource.items() if k in kept or not isinstance(v, dict | list)}


def _inspect(resource: dict[str, Any], resource_type: str) -> Inspection:
    try:
        model = _model(resource_type)
    except KeyError:
        return Inspection("unknown-type")
    read = RULE_FIELDS.get(resource_type, frozenset())
    bad: set[str] = set()
    failed = False
    try:
        model.model_validate(validated_part(resource, _kept(resource_type, model)))
    except ValidationError as exc:
        failed = True
        for error in exc.errors():
            loc = error.get("loc") or ()
            field = str(loc[0]) if loc else "?"
            if error.get("type") in ("missing", "extra_forbidden"):
                continue  # an absent element reads as "no value"; an unknown one is never read
            if field in read or field not in resource:
                bad.add(field)  # a rule reads it, or the defect names no element (whole resource)
    except (ValueError, TypeError):
        return Inspection("malformed", ("?",))
    bad.update(illegal_status_fields(resource))
    if bad:
        return Inspection("malformed", tuple(sorted(bad)))
    return Inspection("tolerated") if failed else VALID


def inspect(resource: dict[str, Any]) -> Inspection:
    """How usable the resource is for the rules (see the module docstring). Never raises."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return Inspection("unknown-type")
    key = _digest(resource)
    found = _VERDICTS.get(key) if key is not None else None
    if found is None:
        found = _inspect(resource, resource_type)
        if key is not None:
            _VERDICTS.put(key, found)
    if found.verdict == "unknown-type":
        logger.warning("unknown FHIR resource type skipped")
    elif found.verdict == "malformed":
        logger.warning(
            "FHIR %s malformed in %s", resource_type[:40], ",".join(found.bad_fields)[:120]
        )
    return found


def is_valid(resource: dict[str, Any]) -> bool:
    """Whether the rules can use the resource (valid, or defective only where no rule reads)."""
    return inspect(resource).usable
