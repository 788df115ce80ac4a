"""The context of each hook (CDS Hooks 2.0.1, hooks patient-view 1.0, order-select 1.0,
order-sign 1.0), as typed models validated at the edge and passed typed to the services.

``HookContext`` is what every service reads; the three subclasses are what a request must carry
for its hook (checklist items 18-27): ``userId`` and ``patientId`` always, ``draftOrders`` (a FHIR
Bundle) for the order hooks, ``selections`` (``Type/id`` references into it) for order-select.
Fields this service does not read (``encounterId``, extensions) are accepted and kept for the
prefetch tokens; they are never logged.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_SELECTIONS = 100


class HookContext(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    patientId: str = Field(min_length=1, max_length=256)
    """The patient's FHIR id (a ``Patient/`` prefix, which some clients send, is removed)."""
    userId: str | None = Field(default=None, max_length=256)
    encounterId: str | None = Field(default=None, max_length=256)
    draftOrders: dict[str, Any] | None = None
    selections: tuple[str, ...] = ()

    @field_validator("patientId", mode="before")
    @classmethod
    def _bare_id(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.removeprefix("Patient/")
        return value

    @field_validator("draftOrders")
    @classmethod
    def _bundle(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and (not value or value.get("resourceType", "Bundle") != "Bundle"):
            raise ValueError("must be a FHIR Bundle")
        return value

    def template_fields(self) -> dict[str, Any]:
        """Every field with a value, by its context name (for the prefetch tokens)."""
        return self.model_dump(exclude_none=True)


class PatientViewContext(HookContext):
    userId: str = Field(min_length=1, max_length=256)


class OrderSignContext(HookContext):
    userId: str = Field(min_length=1, max_length=256)
    draftOrders: dict[str, Any]


class OrderSelectContext(OrderSignContext):
    selections: tuple[str, ...] = Field(min_length=1, max_length=MAX_SELECTIONS)
