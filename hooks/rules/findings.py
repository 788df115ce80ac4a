"""What the rules conclude: trials, contraindications, the assessment. Plain frozen data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Outcome = Literal[
    "failed",
    "ongoing",
    "intolerance",
    "inadequate-dose",
    "inadequate-duration",
    "unknown-dose",
    "not-for-depression",
    "adequate-not-failed",
]
"""Trial outcomes. ``adequate-not-failed`` (our addition to the seven fixed values) is an adequate
trial that ended with no sign of failure: a documented response or remission, a stop for a
non-efficacy reason, or a stop with no reason and no switch. It is not counted."""

CandidateReason = Literal[
    "treatment-resistant-depression", "suicidal-ideation", "severe-depression", "bipolar-depression"
]

ContraindicationId = Literal[
    "psychosis-history",
    "current-mania-or-hypomania",
    "uncontrolled-hypertension",
    "serious-heart-disease",
    "aneurysmal-vascular-disease-or-avm",
    "intracerebral-hemorrhage-history",
    "ketamine-hypersensitivity",
    "active-substance-use-disorder",
    "pregnancy",
    "breastfeeding",
    "minor",
]

Recommendation = Literal[
    "refer-for-evaluation", "not-recommended", "insufficient-data", "not-a-candidate"
]


@dataclass(frozen=True)
class Trial:
    ingredient: str
    outcome: Outcome
    start: datetime
    end: datetime | None
    weeks: float
    max_daily_dose_mg: float | None
    evidence: tuple[str, ...]
    why: str
    """One sentence explaining the outcome (shown by explain and in card detail)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "ingredient": self.ingredient,
            "outcome": self.outcome,
            "start": self.start.date().isoformat(),
            "end": self.end.date().isoformat() if self.end else None,
            "weeks": self.weeks,
            "max_daily_dose_mg": self.max_daily_dose_mg,
            "evidence": list(self.evidence),
            "why": self.why,
        }


@dataclass(frozen=True)
class Contraindication:
    id: ContraindicationId
    evidence: tuple[str, ...]
    source: str
    detail: str
    """What was found, in clinician words (e.g. "Schizophrenia (Condition/12), resolved")."""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "evidence": list(self.evidence),
            "source": self.source,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Assessment:
    failed_adequate_trials: int
    trials: tuple[Trial, ...]
    candidate_reasons: tuple[CandidateReason, ...]
    contraindications: tuple[Contraindication, ...]
    data_gaps: tuple[str, ...]
    recommendation: Recommendation
    ruleset_version: str
    reasons_evidence: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "failed_adequate_trials": self.failed_adequate_trials,
            "trials": [t.as_json() for t in self.trials],
            "candidate_reasons": list(self.candidate_reasons),
            "contraindications": [c.as_json() for c in self.contraindications],
            "data_gaps": list(self.data_gaps),
            "recommendation": self.recommendation,
            "ruleset_version": self.ruleset_version,
            "candidate_reason_evidence": {k: list(v) for k, v in self.reasons_evidence.items()},
        }
