"""Structural validation of FHIR R4 resources with fhir.resources (its R4B models read R4 4.0.1).

Validation is the gate against malformed data: a resource that a rule needs is validated once; one
that fails is skipped and reported as a data gap naming only its type and id. Resources no rule
needs are never validated (it costs about 0.2 ms each), which is why the mappers filter by
code first.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from fhir_mappers.bindings import bindings_ok

logger = logging.getLogger(__name__)

_MODELS: dict[str, Any] = {}


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


def is_valid(resource: dict[str, Any]) -> bool:
    """Whether the resource validates against its FHIR R4(B) model. Logs type and id only."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return False
    try:
        model = _model(resource_type)
    except KeyError:
        logger.warning("unknown FHIR resource type %s skipped", resource_type[:40])
        return False
    try:
        model.model_validate(resource)
    except (ValidationError, ValueError, TypeError):
        logger.warning("malformed FHIR resource %s skipped", resource_ref(resource)[:120])
        return False
    if not bindings_ok(resource):
        logger.warning(
            "FHIR resource %s has an illegal status code; skipped", resource_ref(resource)[:120]
        )
        return False
    return True
