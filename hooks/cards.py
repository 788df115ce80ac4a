"""CDS Hooks 2.0.1 response models and the JSON rules every response must follow.

Models use the spec's camelCase names. ``response_json`` drops ``None`` and empty values
(checklist items 2-4) and keeps ``cards`` even when empty (item 60); ``Card`` enforces the
<140-character one-sentence summary (item 63), and suggestions always come with
``selectionBehavior`` (item 67).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hooks.rules.findings import pruned

Indicator = Literal["info", "warning", "critical"]

MAX_SUMMARY = 139


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CdsCoding(_Wire):
    system: str
    code: str
    display: str | None = None


class Source(_Wire):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: CdsCoding | None = None


class Action(_Wire):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None


class Suggestion(_Wire):
    label: str
    uuid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(_Wire):
    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"
    appContext: str | None = None


CardKind = Literal[
    "screen-referral",
    "screen-not-recommended",
    "screen-verify",
    "screen-suicide-risk",
    "screen-on-treatment",
    "select-referral",
    "select-not-suggested",
    "select-verify",
    "select-referral-exists",
    "sign-contraindicated",
    "sign-safety",
    "sign-unreadable-order",
]
"""Which card template fired: a stable identifier for the card log, metrics and the CDS
committee report (never shown to the EHR; the wording of a template may change, its kind not)."""


class Card(_Wire):
    kind: CardKind = Field(exclude=True)
    uuid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    summary: str
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[CdsCoding] | None = None
    links: list[Link] | None = None

    @model_validator(mode="after")
    def _conformant(self) -> Card:
        if not 1 <= len(self.summary) <= MAX_SUMMARY:
            raise ValueError(f"card summary must be 1-{MAX_SUMMARY} characters")
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("a card with suggestions needs selectionBehavior")
        if self.overrideReasons and any(not r.display for r in self.overrideReasons):
            raise ValueError("every override reason needs a display")
        return self


def shorten(text: str, limit: int = MAX_SUMMARY) -> str:
    """Cut a sentence to the summary limit on a word boundary, ending with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def response_json(cards: list[Card]) -> dict[str, Any]:
    """``{"cards": [...]}`` with no null or empty members anywhere inside the cards."""
    return {"cards": [pruned(c.model_dump(mode="json", exclude_none=True)) for c in cards]}
