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

ScreenStatus = Literal["found", "not-found", "incomplete", "no-data"]
ScreenKind = Literal["contraindication", "candidate-reason", "in-progress"]

InProgressId = Literal["treatment-in-progress", "referral-in-progress"]

IN_PROGRESS_LABELS: dict[InProgressId, str] = {
    "treatment-in-progress": "ketamine/esketamine treatment in progress",
    "referral-in-progress": "referral for ketamine/esketamine evaluation in progress",
}

CONTRAINDICATION_LABELS: dict[ContraindicationId, str] = {
    "psychosis-history": "history of psychosis",
    "current-mania-or-hypomania": "current mania or hypomania",
    "uncontrolled-hypertension": "uncontrolled hypertension",
    "serious-heart-disease": "serious heart disease",
    "aneurysmal-vascular-disease-or-avm": "aneurysmal vascular disease or AVM",
    "intracerebral-hemorrhage-history": "history of intracerebral hemorrhage",
    "ketamine-hypersensitivity": "ketamine/esketamine hypersensitivity",
    "active-substance-use-disorder": "active substance use disorder",
    "pregnancy": "pregnancy",
    "breastfeeding": "breastfeeding",
    "minor": "minor (pediatric patient)",
}
"""Clinician words for each contraindication id (cards, gaps, the evidence app)."""

REASON_LABELS: dict[CandidateReason, str] = {
    "treatment-resistant-depression": "treatment-resistant depression",
    "suicidal-ideation": "suicidal ideation",
    "severe-depression": "severe depression",
    "bipolar-depression": "bipolar depression",
}
"""Clinician words for each candidate reason."""

SCREEN_LABELS: dict[str, str] = {
    **{str(k): v for k, v in CONTRAINDICATION_LABELS.items()},
    **{str(k): v for k, v in REASON_LABELS.items()},
    **{str(k): v for k, v in IN_PROGRESS_LABELS.items()},
}
"""Clinician words for every screen id."""


RegimenKind = Literal["monotherapy", "combination", "augmentation"]
EpisodePart = Literal["current", "previous"]


@dataclass(frozen=True)
class Trial:
    """One treatment trial: a regimen (one antidepressant, a combination, or an antidepressant
    with an augmenting drug), or a course of a drug used for another indication."""

    ingredient: str
    """The regimen's display name ("sertraline", "fluoxetine + escitalopram")."""
    outcome: Outcome
    start: datetime
    end: datetime | None
    weeks: float
    """Weeks from the regimen's start to its end."""
    max_daily_dose_mg: float | None
    evidence: tuple[str, ...]
    why: str
    """One sentence explaining the outcome (shown by explain and in card detail)."""
    ingredients: tuple[str, ...] = ()
    kind: RegimenKind = "monotherapy"
    adequate_weeks: float = 0.0
    """Weeks covered at an adequate dose (what the 6-week rule reads)."""
    doses_mg: tuple[tuple[str, float], ...] = ()
    """Each ingredient's largest daily dose in the regimen."""
    episode: EpisodePart = "current"
    """Whether the trial reaches into the current episode (only those are counted)."""

    def as_json(self) -> dict[str, Any]:
        return pruned(
            {
                "ingredient": self.ingredient,
                "ingredients": list(self.ingredients),
                "kind": self.kind,
                "outcome": self.outcome,
                "start": self.start.date().isoformat(),
                "end": self.end.date().isoformat() if self.end else None,
                "weeks": self.weeks,
                "adequate_weeks": self.adequate_weeks or None,
                "max_daily_dose_mg": self.max_daily_dose_mg,
                "doses_mg": dict(self.doses_mg),
                "evidence": list(self.evidence),
                "why": self.why,
                "episode": self.episode,
            }
        )


Severity = Literal["contraindication", "warning", "caution"]
"""``contraindication``: a SPRAVATO label contraindication (section 4: aneurysmal vascular
disease or AVM, history of intracerebral haemorrhage, hypersensitivity); ``warning``: a label
warning or "not recommended" that needs a specialist's judgement (psychosis, mania, uncontrolled
hypertension, serious heart disease, other intracranial haemorrhage, moderate/severe substance
use disorder, pregnancy, breastfeeding, under 18); ``caution``: to weigh, which does not change
the recommendation (history of substance use disorder, hypertensive encephalopathy, other
cardiovascular conditions, hepatic impairment, bipolar disorder)."""

CautionId = Literal[
    "bipolar-disorder",
    "hallucinogen-use-history",
    "substance-use-history",
    "hypertensive-encephalopathy-history",
    "cardiovascular-condition",
    "hepatic-impairment",
]

CAUTION_LABELS: dict[CautionId, str] = {
    "bipolar-disorder": "bipolar disorder (history of mania or hypomania)",
    "hallucinogen-use-history": "history of hallucinogen, phencyclidine or ketamine use disorder",
    "substance-use-history": "substance use disorder, mild or in remission",
    "hypertensive-encephalopathy-history": "history of hypertensive encephalopathy",
    "cardiovascular-condition": "cardiovascular or cerebrovascular condition",
    "hepatic-impairment": "possible hepatic impairment",
}


FINDING_LABELS: dict[str, str] = {
    **{str(k): v for k, v in CONTRAINDICATION_LABELS.items()},
    **{str(k): v for k, v in CAUTION_LABELS.items()},
}


@dataclass(frozen=True)
class Contraindication:
    """A finding against ketamine/esketamine: a label contraindication, a label warning, or a
    caution (``severity``)."""

    id: ContraindicationId | CautionId
    evidence: tuple[str, ...]
    source: str
    detail: str
    """What was found, in clinician words (e.g. "Schizophrenia (Condition/12), resolved")."""
    severity: Severity = "warning"

    @property
    def label(self) -> str:
        return FINDING_LABELS.get(self.id, self.id)

    def as_json(self) -> dict[str, Any]:
        return pruned(
            {
                "id": self.id,
                "severity": self.severity,
                "evidence": list(self.evidence),
                "source": self.source,
                "detail": self.detail,
            }
        )


@dataclass(frozen=True)
class Episode:
    """The current depressive episode: where counting starts, and why there."""

    start: datetime
    basis: str

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start.date().isoformat(), "basis": self.basis}


@dataclass(frozen=True)
class InProgress:
    """Treatment or a referral already under way, with the records that show it."""

    id: InProgressId
    evidence: tuple[str, ...]
    detail: str
    """In clinician words: "esketamine (MedicationAdministration/7, 2026-11-20)"."""
    until: datetime | None
    """When it stops counting (the latest record plus the window); None while active."""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "evidence": list(self.evidence),
            "detail": self.detail,
            "until": self.until.date().isoformat() if self.until else None,
        }


@dataclass(frozen=True)
class Suppression:
    """Why a card the assessment called for was not shown (the recommendation keeps its
    clinical meaning): treatment or a referral in progress, or a clinician's feedback."""

    reason: str
    """``treatment-in-progress``, ``referral-in-progress``, ``referral-accepted`` or
    ``feedback:<override reason code>``."""
    evidence: tuple[str, ...]
    """The records that show it, or ``feedback on card <uuid>``."""
    until: datetime | None
    detail: str
    withheld: tuple[str, ...] = ()
    """The card kinds that were not shown."""

    def as_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "evidence": list(self.evidence),
            "until": self.until.date().isoformat() if self.until else None,
            "detail": self.detail,
            "withheld": list(self.withheld),
        }


@dataclass(frozen=True)
class Screen:
    """The result of one screen, as shown by explain and the evidence app's checklist."""

    id: str
    kind: ScreenKind
    status: ScreenStatus
    evidence: tuple[str, ...] = ()
    why: tuple[str, ...] = ()
    """What could not be read (incomplete), or what the record lacks (no-data)."""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "status": self.status}
        if self.evidence:
            out["evidence"] = list(self.evidence)
        if self.why:
            out["why"] = list(self.why)
        return out


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
    screens: tuple[Screen, ...] = ()
    """Every contraindication and candidate-reason screen with its status."""
    cautions: tuple[Contraindication, ...] = ()
    """Findings to weigh that do not change the recommendation."""
    episode: Episode | None = None
    context: tuple[str, ...] = ()
    """Findings shown for context that are not candidate reasons (e.g. severity in an untreated
    patient, bipolar depression before any failed trial)."""
    esketamine_indication: str | None = None
    """The SPRAVATO label indication the record supports, if any."""
    in_progress: tuple[InProgress, ...] = ()
    """Treatment or referral already under way (no referral card then)."""
    suppression: Suppression | None = None
    """Set by the hook when a card the assessment calls for was withheld, and why."""
    suppression_lifted: str | None = None
    """Why a clinician's earlier suppression no longer holds (a material change)."""

    def progress(self, progress_id: InProgressId) -> InProgress | None:
        return next((p for p in self.in_progress if p.id == progress_id), None)

    def screen(self, screen_id: str) -> Screen | None:
        return next((s for s in self.screens if s.id == screen_id), None)

    @property
    def incomplete(self) -> tuple[Screen, ...]:
        """Contraindication screens that could not be completed."""
        return tuple(
            s for s in self.screens if s.kind == "contraindication" and s.status == "incomplete"
        )

    def as_json(self) -> dict[str, Any]:
        """The assessment as JSON, with no null or empty member anywhere (omitted instead)."""
        return pruned(
            {
                "failed_adequate_trials": self.failed_adequate_trials,
                "trials": [t.as_json() for t in self.trials],
                "candidate_reasons": list(self.candidate_reasons),
                "contraindications": [c.as_json() for c in self.contraindications],
                "cautions": [c.as_json() for c in self.cautions],
                "screens": [s.as_json() for s in self.screens],
                "episode": self.episode.as_json() if self.episode else None,
                "context": list(self.context),
                "esketamine_indication": self.esketamine_indication,
                "in_progress": [p.as_json() for p in self.in_progress],
                "suppression": self.suppression.as_json() if self.suppression else None,
                "suppression_lifted": self.suppression_lifted,
                "data_gaps": list(self.data_gaps),
                "recommendation": self.recommendation,
                "ruleset_version": self.ruleset_version,
                "candidate_reason_evidence": {k: list(v) for k, v in self.reasons_evidence.items()},
            }
        )


def pruned(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` without null, "", [] or {} members (CDS Hooks: omit what has no value)."""
    out: dict[str, Any] = _prune(value)
    return out


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            kept = _prune(item)
            if kept is None or kept == "" or kept == [] or kept == {}:
                continue
            out[key] = kept
        return out
    if isinstance(value, list):
        return [k for k in (_prune(v) for v in value) if k not in (None, "", [], {})]
    return value
