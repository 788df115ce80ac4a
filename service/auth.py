"""Who may call the hook, explain and feedback endpoints.

JWT verification is not implemented yet (its own issue). Until it lands every call is refused
with 401 unless the operator runs in development mode (``KETAMINE_CDS_ALLOW_UNAUTHENTICATED``),
which the settings only allow on a loopback bind address.
"""

from __future__ import annotations

import logging

from service.errors import NotAuthenticated
from service.settings import Settings

logger = logging.getLogger(__name__)


def authorise(settings: Settings, authorization_header: str | None) -> None:
    if settings.allow_unauthenticated:
        return
    raise NotAuthenticated(
        "this service requires a CDS client JWT, and JWT verification is not configured; "
        "for local development set KETAMINE_CDS_ALLOW_UNAUTHENTICATED=true on a loopback bind"
    )
