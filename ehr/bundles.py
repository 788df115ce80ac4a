"""A Bundle's resources as a FHIR server stores them, and reference rewriting.

A server that processes a transaction replaces references to other entries' ``fullUrl``
(``urn:uuid:...`` in Synthea files, absolute URLs elsewhere) with ``Type/id``, so that searches by
``patient`` and ``_include`` find them; ``stored_resources`` does the same for a Bundle of any type.
"""

from __future__ import annotations

from typing import Any

from fhir_mappers.collect import bundle_resources


def rewrite_references(value: Any, renamed: dict[str, str]) -> Any:
    """A copy of ``value`` with every ``reference`` found in ``renamed`` replaced."""
    if isinstance(value, dict):
        return {
            key: renamed.get(item, item)
            if key == "reference" and isinstance(item, str)
            else rewrite_references(item, renamed)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [rewrite_references(item, renamed) for item in value]
    return value


def stored_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of a Bundle (or a lone resource) with entry references as ``Type/id``."""
    if bundle.get("resourceType") != "Bundle":
        return bundle_resources(bundle)
    renamed: dict[str, str] = {}
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(full_url, str) and "id" in resource:
            renamed[full_url] = f"{resource.get('resourceType')}/{resource['id']}"
    resources = bundle_resources(bundle)
    return [rewrite_references(r, renamed) for r in resources] if renamed else resources


def patient_id_of(resources: list[dict[str, Any]]) -> str | None:
    """The id of the first Patient."""
    for resource in resources:
        if resource.get("resourceType") == "Patient" and isinstance(resource.get("id"), str):
            return str(resource["id"])
    return None
