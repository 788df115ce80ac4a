"""What a scenario is (a patient's FHIR resources and what each hook must answer) and the drugs
and histories scenarios share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.factories import (
    blood_pressure,
    course,
    mdd,
    patient,
)

SERTRALINE_100 = ("sertraline 100 MG Oral Tablet", "312938")
ESCITALOPRAM_20 = ("escitalopram 20 MG Oral Tablet", "351250")
VENLAFAXINE_150 = ("24 HR venlafaxine 150 MG Extended Release Oral Capsule", "313581")
VENLAFAXINE_75 = ("24 HR venlafaxine 75 MG Extended Release Oral Capsule", "313585")
FLUOXETINE_20 = ("fluoxetine 20 MG Oral Capsule", "310385")
CITALOPRAM_20 = ("citalopram 20 MG Oral Tablet", "200371")
MIRTAZAPINE_30 = ("mirtazapine 30 MG Oral Tablet", "314111")
TRAZODONE_50 = ("trazodone hydrochloride 50 MG Oral Tablet", "856377")
AMITRIPTYLINE_25 = ("amitriptyline hydrochloride 25 MG Oral Tablet", "856834")
ARIPIPRAZOLE_5 = ("aripiprazole 5 MG Oral Tablet", "402131")


def drug_course(drug: tuple[str, str], **kw: Any) -> list[dict[str, Any]]:
    return course(drug[0], rxcui=drug[1], **kw)


def trd_history() -> list[dict[str, Any]]:
    """Two failed adequate trials (switches), a third ongoing; normal recent BP."""
    return [
        *drug_course(SERTRALINE_100, start_weeks_ago=60, weeks=12),
        *drug_course(ESCITALOPRAM_20, start_weeks_ago=47, weeks=10),
        *drug_course(VENLAFAXINE_150, start_weeks_ago=36, weeks=40, last_status="active"),
        blood_pressure(128, 80, days_ago=10),
        blood_pressure(124, 78, days_ago=40),
    ]


def trd_patient(*extra: dict[str, Any], **patient_kw: Any) -> list[dict[str, Any]]:
    return [patient(**patient_kw), mdd(), *trd_history(), *extra]


@dataclass
class Expect:
    """What the answer must show. ``None`` or empty means "not checked", except ``indicators``:
    an empty list means "no card" wherever no card is the point (see ``test_scenarios._check``)."""

    recommendation: str | None = None
    failed: int | None = None
    outcomes: dict[str, str] = field(default_factory=dict)
    """Trial outcome by trial name (``"fluoxetine + escitalopram"`` for a combination)."""
    contraindications: set[str] = field(default_factory=set)
    reasons: set[str] | None = None
    indicators: list[str] = field(default_factory=list)
    summary_has: str | None = None
    gap_has: str | None = None
    has_suggestion: bool | None = None
    cautions: set[str] | None = None
    """Exactly these cautions ("to weigh") in the assessment."""
    detail_has: tuple[str, ...] = ()
    """Each text appears in some card's detail."""
    detail_lacks: tuple[str, ...] = ()
    """No card's summary or detail contains any of these texts."""
    esketamine_indication: str | None = None
    """"none" for no label indication, else a word of it ("treatment-resistant", "suicidal")."""
    recommended_suggestion: bool | None = None
    """Whether the referral suggestion is pre-selected (``isRecommended``)."""
    kinds: list[str] | None = None
    """The cards' template kinds in order (read from the card log of the explain response)."""
    suppressed: str | None = None
    """Why a card was withheld (``assessment.suppression.reason``); "none" for no suppression."""


@dataclass
class Scenario:
    id: str
    describe: str
    build: Callable[[], list[dict[str, Any]]]
    expect: Expect
    service: str = "trd-ketamine-screen"
    orders: Callable[[], list[dict[str, Any]]] | None = None


TRD = "treatment-resistant-depression"


def finding_scenario(name: str, *extra: dict[str, Any], **patient_kw: Any) -> Scenario:
    return Scenario(
        f"trd-with-{name}",
        f"TRD patient with {name}: not recommended",
        lambda: trd_patient(*extra, **patient_kw),
        Expect("not-recommended", 2, contraindications={name}, indicators=["warning"]),
    )
