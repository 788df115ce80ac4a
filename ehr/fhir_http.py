"""The EHR side's HTTP client for a FHIR server, and what to say when a server refuses."""

from __future__ import annotations

from typing import Any

import httpx

FHIR_JSON = "application/fhir+json"


def fhir_client(token: str | None, *, timeout: float = 60.0) -> httpx.AsyncClient:
    """A client that sends FHIR JSON requests (with the bearer token, if any), no redirects."""
    headers = {"Accept": FHIR_JSON}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(headers=headers, timeout=timeout, follow_redirects=False)


def _outcome_text(body: Any) -> str:
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        parts = []
        for issue in body.get("issue") or []:
            text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
            parts.append(str(text or issue.get("code") or "error"))
        return "; ".join(parts)
    return ""


def response_problem(response: httpx.Response) -> str:
    """``HTTP 412: <the OperationOutcome's text>`` (or the start of a non-FHIR body)."""
    try:
        detail = _outcome_text(response.json())
    except ValueError:
        detail = response.text[:300]
    return f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
