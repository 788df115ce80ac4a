"""Prefetch template rendering: the service's own token renderer (checklist D, items 35-41, 50)."""

from __future__ import annotations

from typing import Any

import pytest

from hooks.patient_data import prefetch_templates
from service.prefetch import render

CTX = {"patientId": "123", "userId": "Practitioner/abc", "encounterId": "enc-9"}


@pytest.mark.parametrize(
    ("template", "context", "expected"),
    [
        ("Patient/{{context.patientId}}", CTX, "Patient/123"),
        ("Encounter/{{context.encounterId}}", CTX, "Encounter/enc-9"),
        ("Condition?patient={{ context.patientId }}", CTX, "Condition?patient=123"),
        (
            "Observation?patient={{context.patientId}}&encounter={{context.encounterId}}",
            CTX,
            "Observation?patient=123&encounter=enc-9",
        ),
        ("Patient/{{context.patientId}}", {"patientId": 42}, "Patient/42"),
        ("Patient/{{context.patientId}}", {"patientId": 4.5}, "Patient/4.5"),
        ("metadata", CTX, "metadata"),
    ],
    ids=[
        "read",
        "optional-field-present",
        "spaces-in-token",
        "two-tokens",
        "integer-value",
        "float-value",
        "no-token",
    ],
)
def test_render_context_token_resolved_substituted(
    template: str, context: dict[str, Any], expected: str
) -> None:
    """Verify that context tokens are replaced by the root-level primitive context value."""
    assert render(template, context) == expected


@pytest.mark.parametrize(
    ("user_id", "template", "expected"),
    [
        ("Practitioner/123", "Practitioner/{{userPractitionerId}}", "Practitioner/123"),
        ("Practitioner/123", "PractitionerRole/{{userPractitionerRoleId}}", None),
        ("Practitioner/123", "Patient/{{userPatientId}}", None),
        (
            "PractitionerRole/123",
            "PractitionerRole/{{userPractitionerRoleId}}",
            "PractitionerRole/123",
        ),
        ("PractitionerRole/123", "Practitioner/{{userPractitionerId}}", None),
        ("PractitionerRole/123", "RelatedPerson/{{userRelatedPersonId}}", None),
        ("Patient/p7", "Patient/{{userPatientId}}", "Patient/p7"),
        ("RelatedPerson/rp1", "RelatedPerson/{{userRelatedPersonId}}", "RelatedPerson/rp1"),
        ("RelatedPerson/rp1", "Patient/{{userPatientId}}", None),
        ("123", "Practitioner/{{userPractitionerId}}", None),
        ("Practitioner/", "Practitioner/{{userPractitionerId}}", None),
        ("practitioner/123", "Practitioner/{{userPractitionerId}}", None),
        (None, "Practitioner/{{userPractitionerId}}", None),
    ],
    ids=[
        "practitioner-id",
        "practitioner-not-role",
        "practitioner-not-patient",
        "role-id",
        "role-not-practitioner",
        "role-not-related-person",
        "patient-user",
        "related-person-user",
        "related-person-not-patient",
        "bare-id",
        "empty-id",
        "lowercase-type",
        "no-user-id",
    ],
)
def test_render_user_token_by_user_type_resolved_or_none(
    user_id: str | None, template: str, expected: str | None
) -> None:
    """Verify that user tokens resolve only when context.userId has the matching resource type."""
    context: dict[str, Any] = {"patientId": "p1"}
    if user_id is not None:
        context["userId"] = user_id
    assert render(template, context) == expected


@pytest.mark.parametrize(
    ("template", "context"),
    [
        ("Encounter/{{context.encounterId}}", {"patientId": "p1"}),
        ("Encounter/{{context.encounterId}}", {"patientId": "p1", "encounterId": None}),
        ("Patient/{{context.patientId}}", {}),
        (
            "Observation?patient={{context.patientId}}&encounter={{context.encounterId}}",
            {"patientId": "p1"},
        ),
        ("Patient/{{unknownToken}}", {"patientId": "p1"}),
        ("Patient/{{patientId}}", {"patientId": "p1"}),
    ],
    ids=[
        "optional-field-absent",
        "optional-field-null",
        "required-field-absent",
        "one-of-two-missing",
        "unknown-token",
        "unqualified-context-name",
    ],
)
def test_render_unresolvable_token_returns_none(template: str, context: dict[str, Any]) -> None:
    """Verify that a template with any unresolvable token renders to None (not a partial URL)."""
    assert render(template, context) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a b", "a%20b"),
        ("a/b", "a%2Fb"),
        ("../Observation", "..%2FObservation"),
        ("p1&patient=p2", "p1%26patient%3Dp2"),
        ("p1?_count=1000", "p1%3F_count%3D1000"),
        ("p1#frag", "p1%23frag"),
        ("a+b", "a%2Bb"),
        ("100%", "100%25"),
        ("Zoë", "Zo%C3%AB"),
        ("p1,p2", "p1%2Cp2"),
        ("A-b.9_~", "A-b.9_~"),
    ],
    ids=[
        "space",
        "slash",
        "dot-dot-slash",
        "ampersand-equals",
        "question-mark",
        "hash",
        "plus",
        "percent",
        "non-ascii",
        "comma",
        "unreserved-unchanged",
    ],
)
def test_render_odd_id_url_encoded(value: str, expected: str) -> None:
    """Verify that token values are percent-encoded so an id cannot change the URL's shape."""
    assert render("Condition?patient={{context.patientId}}", {"patientId": value}) == (
        f"Condition?patient={expected}"
    )
    assert render("Patient/{{context.patientId}}", {"patientId": value}) == f"Patient/{expected}"


@pytest.mark.parametrize(
    "value",
    [
        {"resourceType": "Bundle", "type": "collection", "entry": []},
        ["MedicationRequest/1", "MedicationRequest/2"],
        {"id": "123"},
        [],
        True,
        None,
    ],
    ids=["bundle", "list", "object", "empty-list", "boolean", "null"],
)
def test_render_non_primitive_context_value_returns_none(value: Any) -> None:
    """Verify that object, array (and boolean/null) context values never become token values."""
    assert render("X?value={{context.field}}", {"patientId": "p1", "field": value}) is None


@pytest.mark.parametrize(
    "template",
    [
        "MedicationRequest?_id={{context.draftOrders.entry.resource.id}}",
        "Medication/{{context.medication.id}}",
    ],
    ids=["path-into-bundle", "path-into-object"],
)
def test_render_nested_context_path_returns_none(template: str) -> None:
    """Verify that 2.0 tokens are root-level only: a dotted path into an object is not resolved."""
    context = {
        "patientId": "p1",
        "medication": {"id": "m1"},
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": {"id": "d1"}}]},
    }
    assert render(template, context) is None


def test_render_template_literal_text_kept_verbatim(knowledge: Any) -> None:
    """Verify that only token values are encoded: the template's '|', ',', ':' stay as written."""
    templates = prefetch_templates(knowledge)
    rendered = {key: render(t, {"patientId": "p 1"}) for key, t in templates.items()}
    assert rendered["patient"] == "Patient/p%201"
    assert rendered["medicationRequests"] == (
        "MedicationRequest?patient=p%201&_include=MedicationRequest:medication"
    )
    assert rendered["observations"] is not None
    assert rendered["observations"].startswith("Observation?patient=p%201&code=http://loinc.org|")
    assert "http://loinc.org|44261-6" in rendered["observations"].split("code=", 1)[1].split(",")
