"""The CDS services as an EHR knows them: discovery entries (``id``, ``hook``, ``prefetch``).

Those of this codebase come from ``hooks.registry`` (the one table of services and their hooks);
a running service's come from its discovery endpoint (``ehr.service_client.discovery``).
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from ehr.errors import EhrError
from hooks.registry import build_registry
from hooks.rules.knowledge import default_knowledge

ORDER_HOOKS = ("order-select", "order-sign")
"""The hooks whose context carries ``draftOrders`` (``order-select`` also ``selections``)."""


@cache
def _local() -> tuple[dict[str, Any], ...]:
    return tuple(s.discovery_json() for s in build_registry(default_knowledge()))


def local_services() -> list[dict[str, Any]]:
    """The discovery entries of this codebase's services, in discovery order."""
    return copy.deepcopy(list(_local()))


def local_service(service_id: str) -> dict[str, Any]:
    return pick_service(local_services(), service_id)


def pick_service(services: list[dict[str, Any]], hook_or_service: str) -> dict[str, Any]:
    """The service with that id, or the only one on that hook."""
    for service in services:
        if service["id"] == hook_or_service:
            return service
    on_hook = [s for s in services if s["hook"] == hook_or_service]
    if len(on_hook) == 1:
        return on_hook[0]
    names = ", ".join(f"{s['id']} ({s['hook']})" for s in services)
    raise EhrError(f"no single CDS service for {hook_or_service!r}; the service has {names}")
