"""The typed hook contexts: what each hook's request must carry."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hooks.contexts import (
    MAX_SELECTIONS,
    HookContext,
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
)

BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": []}
BASE = {"userId": "Practitioner/1", "patientId": "p1"}
ORDERS = {**BASE, "draftOrders": BUNDLE}
SELECT = {**ORDERS, "selections": ["MedicationRequest/m1"]}

VALID = [
    (PatientViewContext, BASE),
    (PatientViewContext, {**BASE, "encounterId": "e1", "extension-field": {"x": 1}}),
    (OrderSignContext, ORDERS),
    (OrderSelectContext, SELECT),
    (HookContext, {"patientId": "p1"}),
]


@pytest.mark.parametrize(
    ("model", "context"), VALID, ids=["pv", "pv-extra", "sign", "select", "base"]
)
def test_contexts_valid_context_is_accepted(
    model: type[HookContext], context: dict[str, Any]
) -> None:
    """Verify that a context with the hook's fields validates and keeps every field."""
    parsed = model.model_validate(context)
    assert parsed.patientId == "p1"
    fields = parsed.template_fields()
    for key, value in context.items():
        assert fields[key] == (tuple(value) if isinstance(value, list) else value)


INVALID = [
    (PatientViewContext, {"patientId": "p1"}, "userId"),
    (PatientViewContext, {"userId": "Practitioner/1"}, "patientId"),
    (PatientViewContext, {**BASE, "patientId": ""}, "patientId"),
    (PatientViewContext, {**BASE, "patientId": 12}, "patientId"),
    (PatientViewContext, {**BASE, "patientId": "x" * 300}, "patientId"),
    (OrderSignContext, BASE, "draftOrders"),
    (OrderSignContext, {**BASE, "draftOrders": {}}, "draftOrders"),
    (OrderSignContext, {**BASE, "draftOrders": {"resourceType": "Patient"}}, "draftOrders"),
    (OrderSignContext, {**BASE, "draftOrders": [BUNDLE]}, "draftOrders"),
    (OrderSelectContext, ORDERS, "selections"),
    (OrderSelectContext, {**ORDERS, "selections": []}, "selections"),
    (OrderSelectContext, {**ORDERS, "selections": "MedicationRequest/m1"}, "selections"),
    (OrderSelectContext, {**ORDERS, "selections": [1]}, "selections"),
    (
        OrderSelectContext,
        {**ORDERS, "selections": [f"MedicationRequest/{i}" for i in range(MAX_SELECTIONS + 1)]},
        "selections",
    ),
]


@pytest.mark.parametrize(
    ("model", "context", "field"),
    INVALID,
    ids=[f"{m.__name__}-{f}-{i}" for i, (m, _, f) in enumerate(INVALID)],
)
def test_contexts_missing_or_mistyped_field_is_refused_naming_it(
    model: type[HookContext], context: dict[str, Any], field: str
) -> None:
    """Verify that a missing, empty or mistyped field is refused and named."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(context)
    assert field in {str(error["loc"][0]) for error in caught.value.errors()}


def test_contexts_patient_prefix_is_removed() -> None:
    """Verify that a "Patient/" prefix on patientId (sent by some clients) is removed."""
    assert PatientViewContext.model_validate({**BASE, "patientId": "Patient/p9"}).patientId == "p9"
