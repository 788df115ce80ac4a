"""CDS Hooks 2.0.1 wire input: hook requests and feedback (checklist sections C, E, I)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Input(BaseModel):
    # Unknown members are ignored, not rejected: hooks add optional fields in minor versions
    # and clients may add extensions (checklist items 116, 117).
    model_config = ConfigDict(extra="ignore")


class FhirAuthorization(_Input):
    access_token: str = Field(min_length=1)
    token_type: str
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None

    def __repr__(self) -> str:  # never show the token in tracebacks or logs
        return f"FhirAuthorization(token_type={self.token_type!r}, scope={self.scope!r})"

    __str__ = __repr__


class HookRequest(_Input):
    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1)
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, dict[str, Any] | None] | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _server_with_token(self) -> HookRequest:
        if self.fhirAuthorization is not None and not self.fhirServer:
            raise ValueError("fhirAuthorization requires fhirServer (cds-r-1)")
        return self


class AcceptedSuggestion(_Input):
    id: str = Field(min_length=1)


class FeedbackCoding(_Input):
    system: str | None = None
    code: str = Field(min_length=1)
    display: str | None = None


class OverrideReason(_Input):
    reason: FeedbackCoding | None = None
    userComment: str | None = None

    @model_validator(mode="after")
    def _something(self) -> OverrideReason:
        if self.reason is None and not self.userComment:
            raise ValueError("overrideReason needs a reason or a userComment (cds-fb-3)")
        return self


class FeedbackItem(_Input):
    card: str = Field(min_length=1)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str = Field(min_length=1)

    @model_validator(mode="after")
    def _accepted_has_suggestions(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("accepted feedback needs acceptedSuggestions (cds-fb-2)")
        return self


class FeedbackRequest(_Input):
    feedback: list[FeedbackItem] = Field(min_length=1)
