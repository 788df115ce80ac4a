"""What a CDS service is to the rest of the code: its discovery entry and a pure ``evaluate``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir_mappers.facts import Unreadable
from hooks.cards import Card
from hooks.contexts import HookContext
from hooks.rules.findings import Assessment
from hooks.rules.knowledge import Knowledge
from hooks.rules.suppression import StoredSuppression


@dataclass(frozen=True)
class HookInput:
    """Everything a hook needs, already gathered: no I/O happens below this line."""

    context: HookContext
    resources: dict[str, list[dict[str, Any]]]
    """Prefetch key -> the resources found (empty for a null prefetch or an empty search)."""
    gaps: tuple[str, ...]
    """Notes about the data that change no screen."""
    now: datetime
    knowledge: Knowledge
    unreadable: tuple[Unreadable, ...] = ()
    """Sources that could not be read, or were read only in part (failed or truncated queries,
    malformed answers): the screens that depend on them are not done."""
    app_launch_url: str | None = None
    """The evidence app's SMART launch URL (``{public base}/app/launch.html``): the patient-view
    and order-select cards link to it."""
    suppression: StoredSuppression | None = None
    """A clinician's feedback that withholds the referral card for this patient (from the
    shared store; None when there is none or it could not be read: a gap then says so)."""


@dataclass(frozen=True)
class HookResult:
    cards: list[Card]
    assessment: Assessment
    extra: dict[str, Any] = field(default_factory=dict)
    """Hook-specific explanation (e.g. the order checks), shown by the explain endpoint."""


@dataclass(frozen=True)
class HookService:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]
    required_prefetch: frozenset[str]
    context_model: type[HookContext]
    """What a request's context must hold (validated at the edge)."""
    evaluate: Callable[[HookInput], HookResult]
    usage_requirements: str | None = None

    def discovery_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(self.prefetch),
        }
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        return entry
