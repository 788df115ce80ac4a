"""Prefetch template rendering (checklist items 35-41): the service's own token renderer.

Tokens: ``{{context.<field>}}`` for root-level primitive context fields, and the user tokens
``{{userPractitionerId}}``, ``{{userPractitionerRoleId}}``, ``{{userPatientId}}`` and
``{{userRelatedPersonId}}`` derived from ``context.userId``. A template whose token cannot be
resolved (an optional field absent, a user token of the wrong type) renders to ``None``: it cannot
be satisfied by the client or by the service (item 50).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

_TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")

USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


def _token_value(token: str, context: dict[str, Any]) -> str | None:
    if token.startswith("context."):
        value = context.get(token[len("context.") :])
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return None
        return str(value)
    resource_type = USER_TOKENS.get(token)
    user = context.get("userId")
    if resource_type and isinstance(user, str) and "/" in user:
        kind, _, ident = user.partition("/")
        if kind == resource_type and ident:
            return ident
    return None


def render(template: str, context: dict[str, Any]) -> str | None:
    """The template with every token replaced (URL-encoded), or None if one is unresolvable."""
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        value = _token_value(match.group(1), context)
        if value is None:
            missing = True
            return ""
        return quote(value, safe="")

    rendered = _TOKEN.sub(replace, template)
    return None if missing else rendered
