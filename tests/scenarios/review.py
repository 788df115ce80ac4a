"""Every case of the outside clinical review of rule set 2026.11.1, with the answer after the fix.

The ids keep the review's case names (lower case: example patient ids are derived from them), so
each finding can be followed from the review to its scenario, its example patient and its test.
Must-fix findings M1-M9 come first, then the should-consider findings S1-S11 and two probes the
review asked for (overlapping courses; the suicide-risk card's content).
"""

from __future__ import annotations

from typing import Any

from tests.factories import (
    SNOMED,
    blood_pressure,
    body_weight,
    condition,
    draft_order,
    mdd,
    med_request,
    med_statement,
    patient,
    phq9,
    phq9_item9,
)
from tests.scenarios.model import (
    ESCITALOPRAM_20,
    FLUOXETINE_20,
    SERTRALINE_100,
    TRD,
    VENLAFAXINE_150,
    Expect,
    Scenario,
    drug_course,
    trd_history,
    trd_patient,
)

QUETIAPINE_150 = ("quetiapine 150 MG Oral Tablet", "389201")
BUPROPION_300 = ("24 HR bupropion hydrochloride 300 MG Extended Release Oral Tablet", "993557")
SPRAVATO = "esketamine 28 MG Nasal Spray (SPRAVATO)"
KETAMINE_IV = "ketamine 50 MG/ML Injectable Solution"
IV_ROUTE = {"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}]}
IM_ROUTE = {"coding": [{"system": SNOMED, "code": "78421000", "display": "Intramuscular route"}]}
GAD = ("F41.1", "Generalized anxiety disorder")
NORMAL_BP = blood_pressure
SIGN = "ketamine-order-safety"
SELECT = "trd-antidepressant-order"


def _esketamine(dose: float = 56, per_week: float | None = 2, **kw: Any) -> Any:
    return lambda: [draft_order(SPRAVATO, dose=dose, unit="mg", per_week=per_week, **kw)]


def _text_condition(text: str, *, weeks_ago: float = 1) -> dict[str, Any]:
    """A problem-list entry recorded as free text only (no code), as some EHRs keep them."""
    found = condition("R69", text, onset_weeks_ago=weeks_ago)
    found["code"] = {"text": text}
    return found


def _titration(drug: tuple[str, str], *, weeks_ago: float, steps: list[tuple[float, float]]) -> Any:
    """One order with successive dose steps ``(mg per day, weeks)`` (sequence + boundsDuration)."""
    order = med_request(drug[0], rxcui=drug[1], weeks_ago=weeks_ago, supply_days=None)
    order["status"] = "stopped"
    order["dosageInstruction"] = [
        {
            "sequence": index + 1,
            "text": f"{mg:g} mg daily for {weeks:g} weeks",
            "timing": {
                "repeat": {
                    "frequency": 1,
                    "period": 1,
                    "periodUnit": "d",
                    "boundsDuration": {
                        "value": weeks * 7,
                        "unit": "d",
                        "system": "http://unitsofmeasure.org",
                        "code": "d",
                    },
                }
            },
            "doseAndRate": [
                {
                    "doseQuantity": {
                        "value": mg,
                        "unit": "mg",
                        "system": "http://unitsofmeasure.org",
                        "code": "mg",
                    }
                }
            ],
        }
        for index, (mg, weeks) in enumerate(steps)
    ]
    total = sum(weeks for _, weeks in steps) * 7
    order["dispenseRequest"] = {
        "expectedSupplyDuration": {
            "value": total,
            "unit": "days",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        }
    }
    return order


def _fills(drug: tuple[str, str], *weeks_ago: float, days: float = 14) -> list[dict[str, Any]]:
    """Separate short fills (``days`` of supply each) of the same drug."""
    return [
        med_request(drug[0], rxcui=drug[1], weeks_ago=w, supply_days=days, status="completed")
        for w in weeks_ago
    ]


def _dx(code: str, display: str, **kw: Any) -> dict[str, Any]:
    return condition(code, display, **kw)


def _current_ad() -> list[dict[str, Any]]:
    """An ongoing antidepressant started 10 weeks ago (a current oral antidepressant)."""
    return drug_course(SERTRALINE_100, start_weeks_ago=10, weeks=12, last_status="active")


M1 = [
    Scenario(
        "r1-treatment-naive-severe-code",
        "M1: severe MDD code a week old, never treated: severity is context, not a referral",
        lambda: [
            patient(),
            _dx(
                "F32.2",
                "Major depressive disorder, single episode, severe without psychotic features",
                onset_weeks_ago=1,
            ),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect("not-a-candidate", 0, reasons=set(), indicators=[]),
    ),
    Scenario(
        "r1b-treatment-naive-phq9-21",
        "M1: first visit, PHQ-9 21, no antidepressant ever: no card",
        lambda: [patient(), mdd(onset_weeks_ago=0.2), phq9(21, weeks_ago=0.2)],
        Expect("not-a-candidate", 0, reasons=set(), indicators=[]),
    ),
    Scenario(
        "r1c-stale-severe-code-remitted-phq9",
        "M1: F33.2 from three years ago still active, PHQ-9 now 4: no card",
        lambda: [
            patient(),
            _dx(
                "F33.2",
                "Major depressive disorder, recurrent severe without psychotic features",
                onset_weeks_ago=156,
            ),
            *drug_course(SERTRALINE_100, start_weeks_ago=60, weeks=12, last_reason="ineffective"),
            phq9(4, weeks_ago=2),
        ],
        Expect("not-a-candidate", reasons=set(), indicators=[]),
    ),
    Scenario(
        "r2-bipolar-depression-no-trials",
        "M1/M2: bipolar depression, no failed trial: no referral card",
        lambda: [
            patient(),
            _dx("F31.31", "Bipolar disorder, current episode depressed, mild"),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect("not-a-candidate", 0, reasons=set(), indicators=[], cautions={"bipolar-disorder"}),
    ),
    Scenario(
        "r2-bipolar-depression-esketamine-order",
        "M1/M2: esketamine ordered in bipolar depression: a warning (not approved or studied)",
        lambda: [
            patient(),
            _dx("F31.31", "Bipolar disorder, current episode depressed, mild"),
            NORMAL_BP(118, 76, days_ago=0.1),
        ],
        Expect(
            "not-a-candidate",
            indicators=["warning"],
            summary_has="bipolar disorder",
            detail_has=("not approved or studied in bipolar depression",),
        ),
        service=SIGN,
        orders=_esketamine(),
    ),
    Scenario(
        "r3-item9-one-treatment-naive",
        "M1: PHQ-9 item 9 = 1, treatment-naive: a same-day risk assessment, no referral",
        lambda: [patient(), mdd(), phq9(13, weeks_ago=0.5), phq9_item9(1, weeks_ago=0.5)],
        Expect(
            "not-a-candidate",
            0,
            reasons={"suicidal-ideation"},
            indicators=["warning"],
            kinds=["screen-suicide-risk"],
            summary_has="same-day suicide risk assessment",
            esketamine_indication="none",
            detail_lacks=("Consider ketamine", "isRecommended"),
        ),
    ),
    Scenario(
        "r3b-stale-si-code-item9-zero",
        "M1: R45.851 from three years ago, item 9 = 0 last week: no card",
        lambda: [
            patient(),
            mdd(),
            _dx("R45.851", "Suicidal ideations", onset_weeks_ago=156),
            phq9(9, weeks_ago=1),
            phq9_item9(0, weeks_ago=1),
        ],
        Expect("not-a-candidate", 0, reasons=set(), indicators=[]),
    ),
]

M2 = [
    Scenario(
        "r2b-bipolar-depressed-with-ad-failures",
        "M2: bipolar depression plus an MDD code and two failed antidepressants: bipolar pathway",
        lambda: trd_patient(_dx("F31.31", "Bipolar disorder, current episode depressed, mild")),
        Expect(
            "refer-for-evaluation",
            2,
            reasons={"bipolar-depression"},
            indicators=["info"],
            recommended_suggestion=False,
            detail_has=("esketamine is not approved or studied in bipolar depression",),
            detail_lacks=("approved for treatment-resistant depression",),
            esketamine_indication="none",
        ),
    ),
    Scenario(
        "r2b-bipolar-order-select-bupropion",
        "M2/M3: bupropion selected in bipolar depression: no TRD card (the pathway is unipolar)",
        lambda: trd_patient(_dx("F31.31", "Bipolar disorder, current episode depressed, mild")),
        Expect("refer-for-evaluation", 2, indicators=[]),
        service=SELECT,
        orders=lambda: [draft_order(BUPROPION_300[0], rxcui=BUPROPION_300[1], dose=1, unit="TAB")],
    ),
    Scenario(
        "r2c-bipolar-in-remission-invisible",
        "M2: bipolar I in remission (F31.72) plus F33.1 and two failures: verify, bipolar shown",
        lambda: trd_patient(
            _dx("F31.72", "Bipolar disorder, in full remission, most recent episode hypomanic")
        ),
        Expect(
            "insufficient-data",
            2,
            reasons=set(),
            indicators=["info"],
            cautions={"bipolar-disorder"},
            gap_has="bipolar disorder",
            detail_has=("bipolar",),
            detail_lacks=("approved for treatment-resistant depression",),
        ),
    ),
    Scenario(
        "r2d-past-mania-resolved-invisible",
        "M2: resolved mania (F31.13) plus F33.1 and two failures: verify, the history shown",
        lambda: trd_patient(
            _dx(
                "F31.13",
                "Bipolar disorder, current episode manic without psychotic features, severe",
                status="resolved",
                onset_weeks_ago=300,
                abated_weeks_ago=280,
            )
        ),
        Expect(
            "insufficient-data",
            2,
            reasons=set(),
            indicators=["info"],
            cautions={"bipolar-disorder"},
            detail_has=("mania",),
        ),
    ),
]

M3 = [
    Scenario(
        "r4-order-select-without-depression-dx",
        "M3: GAD only, two failed trials, selecting mirtazapine: verify the diagnosis, no referral",
        lambda: [patient(), _dx(*GAD), *trd_history()],
        Expect(
            "insufficient-data",
            2,
            indicators=["info"],
            kinds=["select-verify"],
            has_suggestion=False,
            detail_lacks=("approved for this", "approved for treatment-resistant depression"),
        ),
        service=SELECT,
        orders=lambda: [
            draft_order("mirtazapine 30 MG Oral Tablet", rxcui="314111", dose=1, unit="TAB")
        ],
    ),
    Scenario(
        "r4b-order-select-bipolar-unphased",
        "M3: bipolar II with no phase, selecting mirtazapine: verify the phase, no referral",
        lambda: trd_patient(_dx("F31.81", "Bipolar II disorder")),
        Expect(
            "insufficient-data",
            2,
            indicators=["info"],
            kinds=["select-verify"],
            has_suggestion=False,
            gap_has="confirm the phase",
        ),
        service=SELECT,
        orders=lambda: [
            draft_order("mirtazapine 30 MG Oral Tablet", rxcui="314111", dose=1, unit="TAB")
        ],
    ),
]

M4 = [
    Scenario(
        "c7a-esketamine-112mg",
        "M4: esketamine 112 mg per session: critical",
        trd_patient,
        Expect(indicators=["critical"], summary_has="112 mg exceeds 84 mg"),
        service=SIGN,
        orders=_esketamine(112),
    ),
    Scenario(
        "c7b-esketamine-84mg-daily",
        "M4: esketamine 84 mg once daily: critical (7 sessions a week)",
        trd_patient,
        Expect(
            indicators=["critical"],
            detail_has=("7 sessions a week", "day 1 of treatment-resistant depression is 56 mg"),
        ),
        service=SIGN,
        orders=_esketamine(84, per_week=None),
    ),
    Scenario(
        "c7c-esketamine-3-devices-twice-daily",
        "M4: three devices twice a day (168 mg a day): critical",
        trd_patient,
        Expect(indicators=["critical"], detail_has=("168 mg a day", "exceeds the label's maximum")),
        service=SIGN,
        orders=lambda: [
            draft_order(SPRAVATO, dose=3, unit="unit", per_day=2),
        ],
    ),
    Scenario(
        "c9-esketamine-no-indication",
        "M4: esketamine 56 mg twice weekly for a patient with GAD only: no label indication",
        lambda: [patient(), _dx(*GAD), NORMAL_BP(120, 78, days_ago=0.1)],
        Expect(indicators=["warning"], detail_has=("no documented label indication",)),
        service=SIGN,
        orders=_esketamine(),
    ),
    Scenario(
        "c7-esketamine-label-dose",
        "M4: 56 mg twice weekly, first dose, TRD: an info card with the REMS reminder only",
        trd_patient,
        Expect(
            "refer-for-evaluation",
            indicators=["info"],
            summary_has="first dose",
            detail_has=("REMS", "2 hours", "no driving"),
        ),
        service=SIGN,
        orders=_esketamine(),
    ),
]

M5 = [
    Scenario(
        "c1-today-186-114-averaged-away",
        "M5: 186/114 today with two normal readings months ago: critical at signing",
        lambda: [
            patient(),
            mdd(),
            *trd_history()[:-2],
            NORMAL_BP(186, 114, days_ago=0.1),
            NORMAL_BP(118, 76, days_ago=60),
            NORMAL_BP(116, 74, days_ago=80),
        ],
        Expect(indicators=["critical"], summary_has="blood pressure 186/114"),
        service=SIGN,
        orders=_esketamine(),
    ),
    Scenario(
        "c1b-last-reading-high",
        "M5: 178/108 today, earlier readings normal: warning, weigh delaying",
        lambda: [
            patient(),
            mdd(),
            *trd_history()[:-2],
            NORMAL_BP(178, 108, days_ago=0.1),
            NORMAL_BP(122, 78, days_ago=30),
            NORMAL_BP(120, 76, days_ago=50),
        ],
        Expect(
            indicators=["warning"],
            summary_has="blood pressure 178/108",
            detail_has=("weigh delaying the dose",),
        ),
        service=SIGN,
        orders=_esketamine(),
    ),
    Scenario(
        "c2-hypertensive-encephalopathy-history",
        "M5: hypertensive encephalopathy two years ago: caution; monitoring at signing",
        lambda: trd_patient(
            _dx(
                "I67.4",
                "Hypertensive encephalopathy",
                status="resolved",
                onset_weeks_ago=104,
                abated_weeks_ago=102,
            )
        ),
        Expect(
            indicators=["warning"],
            summary_has="hypertensive encephalopathy",
            detail_has=("more intensive blood pressure",),
            cautions={"hypertensive-encephalopathy-history"},
        ),
        service=SIGN,
        orders=_esketamine(),
    ),
    Scenario(
        "c2-hypertensive-encephalopathy-patient-view",
        "M5: the same history at patient-view: refer, with the caution to weigh",
        lambda: trd_patient(
            _dx(
                "I67.4",
                "Hypertensive encephalopathy",
                status="resolved",
                onset_weeks_ago=104,
                abated_weeks_ago=102,
            )
        ),
        Expect(
            "refer-for-evaluation",
            2,
            indicators=["info"],
            cautions={"hypertensive-encephalopathy-history"},
            detail_has=("To weigh", "hypertensive encephalopathy"),
        ),
    ),
]

M6 = [
    Scenario(
        "c4-ich-breadth",
        "M6: resolved traumatic ICH, resolved subdural, active I69.20: contraindicated",
        lambda: trd_patient(
            _dx(
                "S06.360A",
                "Traumatic hemorrhage of cerebrum, unspecified, without loss of consciousness",
                status="resolved",
                onset_weeks_ago=200,
                abated_weeks_ago=190,
            ),
            _dx(
                "I62.00",
                "Nontraumatic subdural hemorrhage, unspecified",
                status="resolved",
                onset_weeks_ago=150,
                abated_weeks_ago=140,
            ),
            _dx("I69.20", "Unspecified sequelae of other nontraumatic intracranial hemorrhage"),
        ),
        Expect(
            "not-recommended",
            2,
            contraindications={"intracerebral-hemorrhage-history"},
            indicators=["warning"],
        ),
    ),
    Scenario(
        "c4-ich-breadth-esketamine-order",
        "M6: the same patient's esketamine order: critical",
        lambda: trd_patient(
            _dx(
                "S06.360A",
                "Traumatic hemorrhage of cerebrum, unspecified, without loss of consciousness",
                status="resolved",
                onset_weeks_ago=200,
                abated_weeks_ago=190,
            )
        ),
        Expect(
            indicators=["critical"],
            summary_has="contraindicated",
            has_suggestion=True,
        ),
        service=SIGN,
        orders=_esketamine(),
    ),
]

M7 = [
    Scenario(
        "c6-cns-depressants-maoi-stimulant",
        "M7: lorazepam, oxycodone, phenelzine and amphetamine, then esketamine: monitor",
        lambda: trd_patient(
            *drug_course(
                ("lorazepam 1 MG Oral Tablet", "197901"),
                start_weeks_ago=8,
                weeks=12,
                last_status="active",
                per_day=3,
            ),
            *drug_course(
                ("oxycodone hydrochloride 10 MG Oral Tablet", "1049621"),
                start_weeks_ago=8,
                weeks=12,
                last_status="active",
                per_day=4,
            ),
            *drug_course(
                ("phenelzine 15 MG Oral Tablet", "315246"),
                start_weeks_ago=6,
                weeks=12,
                last_status="active",
                per_day=3,
            ),
            *drug_course(
                (
                    "amphetamine aspartate / amphetamine sulfate / dextroamphetamine saccharate / "
                    "dextroamphetamine sulfate 20 MG Oral Tablet",
                    "541363",
                ),
                start_weeks_ago=8,
                weeks=12,
                last_status="active",
            ),
        ),
        Expect(
            indicators=["warning"],
            detail_has=(
                "lorazepam",
                "oxycodone",
                "respiratory depression",
                "phenelzine",
                "closely monitor blood pressure",
            ),
        ),
        service=SIGN,
        orders=_esketamine(),
    ),
]

M8 = [
    Scenario(
        "t1a-gap-credited-as-exposure",
        "M8: two 14-day fills twelve weeks apart, for two drugs: about 4 weeks each, not adequate",
        lambda: [
            patient(),
            mdd(),
            *_fills(SERTRALINE_100, 60, 48),
            *_fills(ESCITALOPRAM_20, 40, 28),
            *drug_course(VENLAFAXINE_150, start_weeks_ago=20, weeks=22, last_status="active"),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect(
            "not-a-candidate",
            0,
            {"sertraline": "inadequate-duration", "escitalopram": "inadequate-duration"},
            indicators=[],
        ),
    ),
    Scenario(
        "t1b-doseless-statement-extends-adequacy",
        "M8: a 14-day adequate order and a dose-less statement do not make 20 adequate weeks",
        lambda: [
            patient(),
            mdd(),
            *_fills(SERTRALINE_100, 40),
            med_statement("sertraline", start_weeks_ago=40, end_weeks_ago=20, status="stopped"),
            *drug_course(ESCITALOPRAM_20, start_weeks_ago=19, weeks=20, last_status="active"),
        ],
        Expect(
            "not-a-candidate",
            0,
            indicators=[],
        ),
    ),
    Scenario(
        "t3-statement-not-taken-ignored",
        "M8: the patient never took the escitalopram ordered: not a trial",
        lambda: [
            patient(),
            mdd(),
            *drug_course(SERTRALINE_100, start_weeks_ago=60, weeks=12),
            *drug_course(ESCITALOPRAM_20, start_weeks_ago=47, weeks=10),
            med_statement(
                "escitalopram 20 MG Oral Tablet",
                rxcui=ESCITALOPRAM_20[1],
                start_weeks_ago=47,
                end_weeks_ago=37,
                status="not-taken",
                status_reason="patient did not start",
            ),
            *drug_course(VENLAFAXINE_150, start_weeks_ago=36, weeks=40, last_status="active"),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect("not-a-candidate", 1, {"sertraline": "failed"}, indicators=[]),
    ),
    Scenario(
        "t3b-statement-stopped-early-vs-order",
        "M8: a 90-day order, but the patient stopped after 10 days for nausea",
        lambda: [
            patient(),
            mdd(),
            *drug_course(SERTRALINE_100, start_weeks_ago=60, weeks=12),
            med_request(ESCITALOPRAM_20[0], rxcui=ESCITALOPRAM_20[1], weeks_ago=46, supply_days=90),
            med_statement(
                "escitalopram 20 MG Oral Tablet",
                rxcui=ESCITALOPRAM_20[1],
                start_weeks_ago=46,
                end_weeks_ago=44.6,
                dose_mg=20,
                status="stopped",
                status_reason="stopped after 10 days, nausea",
            ),
            *drug_course(VENLAFAXINE_150, start_weeks_ago=33, weeks=40, last_status="active"),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect("not-a-candidate", 1, {"escitalopram": "intolerance"}, indicators=[]),
    ),
]

M9 = [
    Scenario(
        "t4-nonfailure-stop-reasons-then-switch",
        "M9: a formulary switch and 'try another treatment first' are not failures",
        lambda: [
            patient(),
            mdd(),
            *drug_course(
                SERTRALINE_100,
                start_weeks_ago=60,
                weeks=12,
                last_reason="insurance no longer covers - formulary switch",
            ),
            *drug_course(
                ESCITALOPRAM_20,
                start_weeks_ago=47,
                weeks=10,
                last_reason_code="altchoice",
            ),
            *drug_course(VENLAFAXINE_150, start_weeks_ago=36, weeks=40, last_status="active"),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect(
            "not-a-candidate",
            0,
            {"sertraline": "adequate-not-failed", "escitalopram": "adequate-not-failed"},
            indicators=[],
        ),
    ),
    Scenario(
        "t5-remission-then-relapse-counted-as-failure",
        "M9: escitalopram stopped in remission, relapse, venlafaxine: not a failure",
        lambda: [
            patient(),
            mdd(),
            *drug_course(SERTRALINE_100, start_weeks_ago=100, weeks=12, last_reason="ineffective"),
            *drug_course(
                ESCITALOPRAM_20, start_weeks_ago=87, weeks=60, last_reason="remission achieved"
            ),
            *drug_course(VENLAFAXINE_150, start_weeks_ago=17, weeks=20, last_status="active"),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect("not-a-candidate", 0, {"escitalopram": "adequate-not-failed"}, indicators=[]),
    ),
    Scenario(
        "t5b-previous-episode-failures-counted",
        "M9: two failures 80-100 weeks ago, then remission; a new untreated episode: no card",
        lambda: [
            patient(),
            mdd(),
            *drug_course(SERTRALINE_100, start_weeks_ago=100, weeks=10, last_reason="no response"),
            *drug_course(ESCITALOPRAM_20, start_weeks_ago=89, weeks=9, last_reason="ineffective"),
            *drug_course(
                VENLAFAXINE_150, start_weeks_ago=79, weeks=40, last_reason="remission, tapered"
            ),
            phq9(3, weeks_ago=40),
            phq9(17, weeks_ago=1),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect("not-a-candidate", 0, indicators=[]),
    ),
]

SHOULD = [
    Scenario(
        "r3c-negated-si-text",
        "S1: 'seen today, without suicidal ideation' is not suicidal ideation",
        lambda: [
            patient(),
            mdd(),
            _text_condition("Depressed mood, without suicidal ideation"),
            phq9(12, weeks_ago=1),
        ],
        Expect("not-a-candidate", 0, reasons=set(), indicators=[]),
    ),
    Scenario(
        "r3d-suicide-attempt-self-poisoning-code",
        "S1: intentional benzodiazepine overdose last week and Z91.51: a risk-assessment card",
        lambda: [
            patient(),
            mdd(),
            _dx(
                "T42.4X2A",
                "Poisoning by benzodiazepines, intentional self-harm, initial encounter",
                onset_weeks_ago=1,
            ),
            _dx("Z91.51", "Personal history of suicidal behavior", onset_weeks_ago=1),
            *_current_ad(),
        ],
        Expect(
            "not-a-candidate",
            reasons={"suicidal-ideation"},
            indicators=["warning"],
            kinds=["screen-suicide-risk"],
            esketamine_indication="suicidal",
            detail_has=(
                "same-day suicide risk assessment",
                "in conjunction with an oral antidepressant",
                "does not preclude the need for hospitalization",
            ),
        ),
    ),
    Scenario(
        "t2-titration-in-one-order",
        "S2: venlafaxine 75 mg for 4 weeks then 150 mg for 2 weeks in one order: 2 adequate weeks",
        lambda: [
            patient(),
            mdd(),
            *drug_course(SERTRALINE_100, start_weeks_ago=40, weeks=12),
            _titration(VENLAFAXINE_150, weeks_ago=27, steps=[(75, 4), (150, 2)]),
            *drug_course(ESCITALOPRAM_20, start_weeks_ago=21, weeks=22, last_status="active"),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect("not-a-candidate", 1, {"venlafaxine": "inadequate-duration"}, indicators=[]),
    ),
    Scenario(
        "t10-early-augmenter-counts-failure",
        "S3: quetiapine added in week 1 of escitalopram is not a failure signal",
        lambda: [
            patient(),
            mdd(),
            *drug_course(SERTRALINE_100, start_weeks_ago=60, weeks=12),
            *drug_course(ESCITALOPRAM_20, start_weeks_ago=47, weeks=47, last_status="active"),
            *drug_course(QUETIAPINE_150, start_weeks_ago=46, weeks=46, last_status="active"),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect(
            "not-a-candidate",
            1,
            {"escitalopram + quetiapine": "ongoing", "sertraline": "failed"},
            indicators=[],
        ),
    ),
    Scenario(
        "t9-early-combination-counts-both",
        "S3/D: two antidepressants started together are one combination trial",
        lambda: [
            patient(),
            mdd(),
            *drug_course(SERTRALINE_100, start_weeks_ago=50, weeks=12),
            *drug_course(("mirtazapine 30 MG Oral Tablet", "314111"), start_weeks_ago=50, weeks=12),
            *drug_course(ESCITALOPRAM_20, start_weeks_ago=37, weeks=37, last_status="active"),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect(
            "not-a-candidate",
            1,
            {"mirtazapine + sertraline": "failed"},
            indicators=[],
        ),
    ),
    Scenario(
        "t11-adequate-nonresponse-masked-by-intolerance",
        "S4: 12 weeks at 100 mg with PHQ-9 22 -> 21, then stopped 'sintol': a failed trial",
        lambda: [
            patient(),
            mdd(),
            phq9(22, weeks_ago=61),
            *drug_course(
                SERTRALINE_100,
                start_weeks_ago=60,
                weeks=12,
                last_reason_code="sintol",
            ),
            phq9(21, weeks_ago=49),
            *drug_course(ESCITALOPRAM_20, start_weeks_ago=47, weeks=10, last_reason="ineffective"),
            *drug_course(VENLAFAXINE_150, start_weeks_ago=36, weeks=40, last_status="active"),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect("refer-for-evaluation", 2, {"sertraline": "failed", "escitalopram": "failed"}),
    ),
    Scenario(
        "t6-negated-side-effect-text",
        "S4: 'ineffective after 10 weeks, no side effects' is an efficacy failure",
        lambda: [
            patient(),
            mdd(),
            *drug_course(
                SERTRALINE_100,
                start_weeks_ago=60,
                weeks=10,
                last_reason="ineffective after 10 weeks, no side effects",
            ),
            *drug_course(ESCITALOPRAM_20, start_weeks_ago=48, weeks=10, last_reason="no response"),
            *drug_course(VENLAFAXINE_150, start_weeks_ago=36, weeks=40, last_status="active"),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect("refer-for-evaluation", 2, {"sertraline": "failed", "escitalopram": "failed"}),
    ),
    Scenario(
        "c5-sud-history-in-remission",
        "S5: hallucinogen and alcohol dependence in remission: refer, history to weigh",
        lambda: trd_patient(
            _dx("F16.21", "Hallucinogen dependence, in remission"),
            _dx("F10.21", "Alcohol dependence, in remission"),
        ),
        Expect(
            "refer-for-evaluation",
            2,
            contraindications=set(),
            cautions={"substance-use-history", "hallucinogen-use-history"},
            summary_has="treatment-resistant depression",
            detail_has=("Hallucinogen dependence",),
        ),
    ),
    Scenario(
        "c12-mild-cannabis-use-disorder",
        "S5: mild cannabis use disorder (F12.10) is a risk assessment, not an exclusion",
        lambda: trd_patient(_dx("F12.10", "Cannabis abuse, uncomplicated")),
        Expect(
            "refer-for-evaluation",
            2,
            contraindications=set(),
            cautions={"substance-use-history"},
            indicators=["info"],
        ),
    ),
    Scenario(
        "c3-cv-breadth",
        "S6: ischaemic stroke 6 weeks ago, TIA 3 weeks ago, aortic stenosis, DCM, CAD",
        lambda: trd_patient(
            _dx("I63.9", "Cerebral infarction, unspecified", onset_weeks_ago=6),
            _dx("G45.9", "Transient cerebral ischemic attack, unspecified", onset_weeks_ago=3),
            _dx("I35.0", "Nonrheumatic aortic (valve) stenosis"),
            _dx("I42.0", "Dilated cardiomyopathy"),
            _dx("I25.10", "Atherosclerotic heart disease of native coronary artery"),
        ),
        Expect(
            "not-recommended",
            2,
            contraindications={"serious-heart-disease"},
            cautions={"cardiovascular-condition"},
            detail_has=("Cerebral infarction", "Transient cerebral ischemic attack"),
        ),
    ),
    Scenario(
        "c3b-recent-mi-coded-i25-2",
        "S6: an MI five weeks ago already coded I25.2 (old MI): a recent cardiovascular event",
        lambda: trd_patient(_dx("I25.2", "Old myocardial infarction", onset_weeks_ago=5)),
        Expect("not-recommended", 2, contraindications={"serious-heart-disease"}),
    ),
    Scenario(
        "c10-decompensated-cirrhosis",
        "S6: alcoholic cirrhosis with ascites: refer, hepatic impairment to weigh (Child-Pugh)",
        lambda: trd_patient(_dx("K70.31", "Alcoholic cirrhosis of liver with ascites")),
        Expect(
            "refer-for-evaluation",
            2,
            cautions={"hepatic-impairment"},
            detail_has=("Child-Pugh C",),
        ),
    ),
    Scenario(
        "c8-iv-ketamine-2mgkg",
        "S9: IV ketamine 2 mg/kg: critical, above the 1 mg/kg studied ceiling",
        lambda: [*trd_patient(), body_weight(70, days_ago=7)],
        Expect(indicators=["critical"], summary_has="2.00 mg/kg is above 1 mg/kg"),
        service=SIGN,
        orders=lambda: [
            draft_order(KETAMINE_IV, dose=140, unit="mg", route=IV_ROUTE, infusion_minutes=40)
        ],
    ),
    Scenario(
        "c8b-im-ketamine-no-dose-check",
        "S9: IM ketamine 0.5 mg/kg is judged by the IM ceiling, not the IV rule: no card",
        lambda: [*trd_patient(), body_weight(70, days_ago=7)],
        Expect(indicators=[]),
        service=SIGN,
        orders=lambda: [draft_order(KETAMINE_IV, dose=35, unit="mg", route=IM_ROUTE)],
    ),
    Scenario(
        "c8c-iv-ketamine-short-infusion",
        "S9: IV ketamine 0.5 mg/kg over 15 minutes: warning",
        lambda: [*trd_patient(), body_weight(70, days_ago=7)],
        Expect(indicators=["warning"], summary_has="15-minute infusion"),
        service=SIGN,
        orders=lambda: [
            draft_order(KETAMINE_IV, dose=35, unit="mg", route=IV_ROUTE, infusion_minutes=15)
        ],
    ),
    Scenario(
        "s10-esketamine-age-70",
        "S10: a first esketamine order at 70: the non-US 28 mg start noted",
        lambda: trd_patient(birth="1956-02-11"),
        Expect(indicators=["info"], detail_has=("age 70", "28 mg")),
        service=SIGN,
        orders=_esketamine(),
    ),
    Scenario(
        "c11-postpartum-pregnancy-code-still-active",
        "S11: delivered 4 weeks ago, the pregnancy code still active: not pregnant",
        lambda: trd_patient(
            _dx("Z33.1", "Pregnant state, incidental", onset_weeks_ago=38),
            _dx("O80", "Encounter for full-term uncomplicated delivery", onset_weeks_ago=4),
        ),
        Expect("refer-for-evaluation", 2, contraindications=set()),
    ),
]

PROBES = [
    Scenario(
        "probe-overlap-fluoxetine-escitalopram",
        "Review D: fluoxetine and escitalopram together for 9 weeks are one combination regimen",
        lambda: [
            patient(),
            mdd(),
            *drug_course(FLUOXETINE_20, start_weeks_ago=40, weeks=21),
            *drug_course(ESCITALOPRAM_20, start_weeks_ago=30, weeks=30, last_status="active"),
            NORMAL_BP(118, 76, days_ago=3),
        ],
        Expect(
            "not-a-candidate",
            1,
            {"fluoxetine": "failed", "escitalopram + fluoxetine": "adequate-not-failed"},
            indicators=[],
        ),
    ),
    Scenario(
        "probe-si-card-trd",
        "Review D: TRD with documented acute suicidal ideation: the risk card first, then referral",
        lambda: trd_patient(_dx("R45.851", "Suicidal ideations", onset_weeks_ago=0.5)),
        Expect(
            "refer-for-evaluation",
            2,
            reasons={TRD, "suicidal-ideation"},
            indicators=["warning", "info"],
            kinds=["screen-suicide-risk", "screen-referral"],
            detail_has=(
                "same-day suicide risk assessment",
                "safety plan",
                "has not been demonstrated",
            ),
        ),
    ),
]

REVIEW: list[Scenario] = [*M1, *M2, *M3, *M4, *M5, *M6, *M7, *M8, *M9, *SHOULD, *PROBES]
