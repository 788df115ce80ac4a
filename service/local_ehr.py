"""An in-memory stand-in for an EHR: answers our prefetch templates from a patient's Bundle.

Used by the offline tools (``evaluate``, ``demo``) to build exactly the prefetch an EHR would send:
reads (``Patient/{id}``) and type searches filtered by patient, by ``code`` tokens, with
``_include`` of referenced Medications. It understands only the query forms our templates use.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fhir_mappers.collect import bundle_resources

SUBJECT_FIELDS = ("subject", "patient")


def _about(resource: dict[str, Any], patient_id: str) -> bool:
    for field in SUBJECT_FIELDS:
        ref = resource.get(field)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            target = str(ref["reference"])
            return target.endswith(f"Patient/{patient_id}") or target.endswith(patient_id)
    return True


def _codes(resource: dict[str, Any]) -> set[tuple[str | None, str | None]]:
    code = resource.get("code")
    found: set[tuple[str | None, str | None]] = set()
    if isinstance(code, dict):
        for coding in code.get("coding") or []:
            if isinstance(coding, dict):
                found.add((coding.get("system"), coding.get("code")))
    return found


def answer(rendered: str, resources: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The Bundle (or resource, or None) a FHIR server would return for a rendered template."""
    parts = urlsplit(rendered)
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) == 2:
        for resource in resources:
            if resource.get("resourceType") == segments[0] and resource.get("id") == unquote(
                segments[1]
            ):
                return resource
        return None
    rtype = segments[0]
    query = parse_qs(parts.query)
    patient_id = unquote(query.get("patient", [""])[0])
    matches = [r for r in resources if r.get("resourceType") == rtype and _about(r, patient_id)]
    if "code" in query:
        wanted = {
            (system or None, code)
            for system, _, code in (v.rpartition("|") for v in query["code"][0].split(","))
        }
        matches = [r for r in matches if _codes(r) & wanted]
    entries = [{"resource": r, "search": {"mode": "match"}} for r in matches]
    if query.get("_include", [""])[0].endswith(":medication"):
        by_ref = {
            f"Medication/{r.get('id')}": r
            for r in resources
            if r.get("resourceType") == "Medication"
        }
        for match in matches:
            ref = (match.get("medicationReference") or {}).get("reference")
            if ref in by_ref:
                entries.append({"resource": by_ref[ref], "search": {"mode": "include"}})
    if not entries:
        return None
    return {"resourceType": "Bundle", "type": "searchset", "total": len(matches), "entry": entries}


def prefetch_from_bundle(
    bundle: dict[str, Any], templates: dict[str, str], context: dict[str, Any]
) -> dict[str, Any]:
    """Fill every template from the bundle, as an EHR that honours all prefetch would."""
    from service.prefetch import render

    resources = bundle_resources(bundle)
    prefetch: dict[str, Any] = {}
    for key, template in templates.items():
        rendered = render(template, context)
        if rendered is not None:
            prefetch[key] = answer(rendered, resources)
    return prefetch


def patient_id_of(bundle: dict[str, Any]) -> str | None:
    for resource in bundle_resources(bundle):
        if resource.get("resourceType") == "Patient" and isinstance(resource.get("id"), str):
            return str(resource["id"])
    return None
