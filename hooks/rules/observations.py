"""Which Observations are results. Pure. One rule for every reader (PHQ-9, blood pressure, body
weight, pregnancy status, the evidence app's charts).

An Observation is a result when its status is ``final``, ``amended``, ``corrected`` or
``preliminary`` (a value someone recorded; a preliminary vital sign is still the reading taken),
or when it has no status (a malformed or minimal record: its value is still the evidence we have).
``registered`` (no result yet), ``cancelled``, ``entered-in-error`` and ``unknown`` are not.
"""

from __future__ import annotations

from fhir_mappers.facts import ObservationFact

RESULT_STATUSES = frozenset({"final", "amended", "corrected", "preliminary", None})


def is_result(observation: ObservationFact) -> bool:
    return observation.status in RESULT_STATUSES
