"""The service's own scenarios: one per rule, each contraindication, each hook."""

from __future__ import annotations

from tests.factories import (
    ICD10,
    IV_ROUTE,
    allergy,
    blood_pressure,
    body_weight,
    condition,
    course,
    draft_order,
    mdd,
    med_request,
    med_statement,
    medication,
    observation,
    patient,
    phq9,
    phq9_item9,
)
from tests.scenarios.model import (
    AMITRIPTYLINE_25,
    ARIPIPRAZOLE_5,
    CITALOPRAM_20,
    ESCITALOPRAM_20,
    FLUOXETINE_20,
    MIRTAZAPINE_30,
    SERTRALINE_100,
    TRAZODONE_50,
    TRD,
    VENLAFAXINE_75,
    VENLAFAXINE_150,
    Expect,
    Scenario,
    drug_course,
    finding_scenario,
    trd_history,
    trd_patient,
)

CORE: list[Scenario] = [
    Scenario(
        "trd-two-switches",
        "Two adequate trials each followed by a switch: refer",
        lambda: trd_patient(),
        Expect(
            "refer-for-evaluation",
            2,
            {"sertraline": "failed", "escitalopram": "failed", "venlafaxine": "ongoing"},
            reasons={TRD},
            indicators=["info"],
            has_suggestion=True,
        ),
    ),
    Scenario(
        "one-failed-trial",
        "One failed trial, second ongoing: no card",
        lambda: [
            patient(),
            mdd(),
            *drug_course(SERTRALINE_100, start_weeks_ago=30, weeks=12),
            *drug_course(ESCITALOPRAM_20, start_weeks_ago=17, weeks=20, last_status="active"),
            blood_pressure(120, 80, days_ago=5),
        ],
        Expect(
            "not-a-candidate", 1, {"sertraline": "failed", "escitalopram": "ongoing"}, indicators=[]
        ),
    ),
    Scenario(
        "intolerance-not-counted",
        "Stopped for intolerance (sintol) at 3 weeks is not a failure",
        lambda: [
            patient(),
            mdd(),
            med_request(
                *SERTRALINE_100[:1],
                rxcui=SERTRALINE_100[1],
                weeks_ago=40,
                supply_days=21,
                status="stopped",
                status_reason_code="sintol",
            ),
            *drug_course(ESCITALOPRAM_20, start_weeks_ago=36, weeks=12),
            *drug_course(VENLAFAXINE_150, start_weeks_ago=23, weeks=30, last_status="active"),
            blood_pressure(120, 80, days_ago=5),
        ],
        Expect("not-a-candidate", 1, {"sertraline": "intolerance", "escitalopram": "failed"}),
    ),
    Scenario(
        "inadequate-dose",
        "Venlafaxine 75 mg for 10 weeks is below the 150 mg ATRQ minimum",
        lambda: [
            patient(),
            mdd(),
            *drug_course(VENLAFAXINE_75, start_weeks_ago=50, weeks=10),
            *drug_course(SERTRALINE_100, start_weeks_ago=39, weeks=12),
            *drug_course(FLUOXETINE_20, start_weeks_ago=26, weeks=26, last_status="active"),
            blood_pressure(120, 80, days_ago=5),
        ],
        Expect("not-a-candidate", 1, {"venlafaxine": "inadequate-dose", "sertraline": "failed"}),
    ),
    Scenario(
        "inadequate-duration",
        "Citalopram 20 mg for 4 weeks then a switch: too short",
        lambda: [
            patient(),
            mdd(),
            *drug_course(CITALOPRAM_20, start_weeks_ago=40, weeks=4),
            *drug_course(SERTRALINE_100, start_weeks_ago=35, weeks=12),
            *drug_course(FLUOXETINE_20, start_weeks_ago=22, weeks=22, last_status="active"),
            blood_pressure(120, 80, days_ago=5),
        ],
        Expect("not-a-candidate", 1, {"citalopram": "inadequate-duration", "sertraline": "failed"}),
    ),
    Scenario(
        "trazodone-for-sleep",
        "Trazodone 50 mg at night is not a depression trial and is not a switch",
        lambda: [
            *trd_patient(),
            *drug_course(TRAZODONE_50, start_weeks_ago=58, weeks=56, last_status="active"),
        ],
        Expect(
            "refer-for-evaluation", 2, {"trazodone": "not-for-depression", "sertraline": "failed"}
        ),
    ),
    Scenario(
        "amitriptyline-for-pain",
        "Amitriptyline 25 mg prescribed for neuropathic pain is not a depression trial",
        lambda: [
            patient(),
            mdd(),
            *drug_course(
                AMITRIPTYLINE_25,
                start_weeks_ago=30,
                weeks=20,
                reason={
                    "coding": [{"system": ICD10, "code": "G89.29", "display": "Other chronic pain"}]
                },
            ),
            *drug_course(SERTRALINE_100, start_weeks_ago=20, weeks=20, last_status="active"),
            blood_pressure(120, 80, days_ago=5),
        ],
        Expect(
            "not-a-candidate", 0, {"amitriptyline": "not-for-depression", "sertraline": "ongoing"}
        ),
    ),
    Scenario(
        "phq9-non-response",
        "Second adequate trial ongoing with PHQ-9 22 -> 20 after 10 weeks: failed; severe",
        lambda: [
            patient(),
            mdd(),
            *drug_course(FLUOXETINE_20, start_weeks_ago=40, weeks=14),
            phq9(22, weeks_ago=26),
            *drug_course(SERTRALINE_100, start_weeks_ago=25, weeks=26, last_status="active"),
            phq9(20, weeks_ago=2),
            blood_pressure(118, 76, days_ago=3),
        ],
        Expect(
            "refer-for-evaluation",
            2,
            {"fluoxetine": "failed", "sertraline": "failed"},
            reasons={TRD, "severe-depression"},
        ),
    ),
    Scenario(
        "phq9-response",
        "Ongoing adequate trial with PHQ-9 20 -> 6: responding, not failed",
        lambda: [
            patient(),
            mdd(),
            *drug_course(FLUOXETINE_20, start_weeks_ago=40, weeks=14),
            phq9(20, weeks_ago=26),
            *drug_course(SERTRALINE_100, start_weeks_ago=25, weeks=26, last_status="active"),
            phq9(6, weeks_ago=2),
            blood_pressure(118, 76, days_ago=3),
        ],
        Expect("not-a-candidate", 1, {"fluoxetine": "failed", "sertraline": "ongoing"}),
    ),
    Scenario(
        "statements-ineffective",
        "MedicationStatement-only history, both stopped as ineffective",
        lambda: [
            patient(),
            mdd(),
            med_statement(
                "Zoloft 150 mg daily",
                start_weeks_ago=70,
                end_weeks_ago=58,
                dose_mg=150,
                status="stopped",
                status_reason="ineffective",
            ),
            med_statement(
                "Lexapro",
                start_weeks_ago=56,
                end_weeks_ago=46,
                dose_mg=20,
                status="stopped",
                status_reason="No response",
            ),
            blood_pressure(118, 76, days_ago=3),
        ],
        Expect("refer-for-evaluation", 2, {"sertraline": "failed", "escitalopram": "failed"}),
    ),
    Scenario(
        "augmentation",
        "Fluoxetine switched, then sertraline augmented with aripiprazole 5 mg",
        lambda: [
            patient(),
            mdd(),
            *drug_course(FLUOXETINE_20, start_weeks_ago=50, weeks=12),
            *drug_course(SERTRALINE_100, start_weeks_ago=37, weeks=37, last_status="active"),
            *drug_course(ARIPIPRAZOLE_5, start_weeks_ago=20, weeks=20, last_status="active"),
            blood_pressure(118, 76, days_ago=3),
        ],
        Expect("refer-for-evaluation", 2, {"fluoxetine": "failed", "sertraline": "failed"}),
    ),
    Scenario(
        "contained-medication",
        "Orders reference contained Medications with ingredient strengths",
        lambda: [
            patient(),
            mdd(),
            *[
                med_request(
                    "x",
                    weeks_ago=w,
                    supply_days=28,
                    medication=medication(
                        f"m{w}", "Sertraline Tab", ingredient="sertraline", strength_mg=100
                    ),
                )
                for w in (60, 56, 52)
            ],
            *[
                med_request(
                    "x",
                    weeks_ago=w,
                    supply_days=28,
                    medication=medication(
                        f"e{w}",
                        "Escitalopram 20 mg tablet",
                        ingredient="escitalopram",
                        strength_mg=20,
                    ),
                )
                for w in (47, 43, 39)
            ],
            *drug_course(VENLAFAXINE_150, start_weeks_ago=35, weeks=35, last_status="active"),
            blood_pressure(118, 76, days_ago=3),
        ],
        Expect("refer-for-evaluation", 2, {"sertraline": "failed", "escitalopram": "failed"}),
    ),
    Scenario(
        "referenced-medication",
        "Orders reference Medication resources (delivered by _include)",
        lambda: [
            patient(),
            mdd(),
            medication("med-sert", "sertraline 100 MG Oral Tablet", rxcui="312938"),
            medication("med-cit", "citalopram 20 MG Oral Tablet", rxcui="200371"),
            *[
                med_request("x", weeks_ago=w, supply_days=28, medication_ref="Medication/med-sert")
                for w in (60, 56, 52)
            ],
            *[
                med_request(
                    "x", weeks_ago=w, supply_days=28, medication_ref="Medication/med-cit", dose=2
                )
                for w in (47, 43, 39)
            ],
            *drug_course(MIRTAZAPINE_30, start_weeks_ago=35, weeks=35, last_status="active"),
            blood_pressure(118, 76, days_ago=3),
        ],
        Expect(
            "refer-for-evaluation",
            2,
            {"sertraline": "failed", "citalopram": "failed", "mirtazapine": "ongoing"},
        ),
    ),
    Scenario(
        "unknown-doses",
        "Two text-only antidepressants with no dose, switched: verify doses",
        lambda: [
            patient(),
            mdd(),
            *course("Zoloft", start_weeks_ago=60, weeks=12, dose=None),
            *course("Celexa", start_weeks_ago=47, weeks=10, dose=None),
            *drug_course(VENLAFAXINE_150, start_weeks_ago=36, weeks=36, last_status="active"),
            blood_pressure(118, 76, days_ago=3),
        ],
        Expect(
            "insufficient-data",
            0,
            {"sertraline": "unknown-dose", "citalopram": "unknown-dose"},
            indicators=["info"],
            summary_has="verify",
        ),
    ),
    Scenario(
        "no-depression-diagnosis",
        "Two failed trials but no depressive-disorder diagnosis on record",
        lambda: [patient(), *trd_history()],
        Expect(
            "insufficient-data", 2, indicators=["info"], gap_has="no active depressive-disorder"
        ),
    ),
    Scenario(
        "old-trials-outside-episode",
        "Two failed trials more than two years ago are outside the current episode",
        lambda: [
            patient(),
            mdd(),
            *drug_course(SERTRALINE_100, start_weeks_ago=200, weeks=12),
            *drug_course(ESCITALOPRAM_20, start_weeks_ago=187, weeks=10),
            *drug_course(FLUOXETINE_20, start_weeks_ago=176, weeks=12),
            blood_pressure(118, 76, days_ago=3),
        ],
        Expect("not-a-candidate", 0, indicators=[]),
    ),
    finding_scenario(
        "psychosis-history",
        condition(
            "F20.9",
            "Schizophrenia, unspecified",
            status="resolved",
            onset_weeks_ago=500,
            abated_weeks_ago=400,
        ),
    ),
    Scenario(
        "refuted-psychosis-ignored",
        "A refuted schizophrenia diagnosis does not count",
        lambda: trd_patient(
            condition(
                "F20.9", "Schizophrenia, unspecified", status="inactive", verification="refuted"
            )
        ),
        Expect("refer-for-evaluation", 2, contraindications=set()),
    ),
    Scenario(
        "psychotic-depression-history",
        "Past severe depression with psychotic features is a psychosis history",
        lambda: trd_patient(
            condition(
                "F33.3",
                "Major depressive disorder, recurrent, severe with psychotic symptoms",
                status="resolved",
                onset_weeks_ago=300,
                abated_weeks_ago=280,
            )
        ),
        Expect("not-recommended", 2, contraindications={"psychosis-history"}),
    ),
    Scenario(
        "trd-with-current-mania-or-hypomania",
        "Current hypomania beside an MDD code and two failures: confirm the diagnosis first",
        lambda: trd_patient(
            condition("F31.0", "Bipolar disorder, current episode hypomanic", onset_weeks_ago=2)
        ),
        Expect(
            "insufficient-data",
            2,
            contraindications={"current-mania-or-hypomania"},
            indicators=["info"],
            summary_has="bipolar disorder is recorded",
        ),
    ),
    Scenario(
        "trd-with-uncontrolled-hypertension",
        "Recent blood pressure panels average above 140/90",
        lambda: [
            patient(),
            mdd(),
            *trd_history()[:-2],
            blood_pressure(162, 98, days_ago=3),
            blood_pressure(158, 96, days_ago=20),
        ],
        Expect("not-recommended", 2, contraindications={"uncontrolled-hypertension"}),
    ),
    Scenario(
        "controlled-hypertension-diagnosis",
        "A hypertension diagnosis with normal recent readings is not uncontrolled",
        lambda: trd_patient(
            condition("I10", "Essential (primary) hypertension", onset_weeks_ago=300)
        ),
        Expect("refer-for-evaluation", 2, contraindications=set()),
    ),
    finding_scenario(
        "serious-heart-disease", condition("I50.22", "Chronic systolic (congestive) heart failure")
    ),
    finding_scenario(
        "aneurysmal-vascular-disease-or-avm", condition("I67.1", "Cerebral aneurysm, nonruptured")
    ),
    finding_scenario(
        "intracerebral-hemorrhage-history",
        condition(
            "I69.151",
            "Hemiplegia following nontraumatic intracerebral hemorrhage",
            status="inactive",
        ),
    ),
    finding_scenario("ketamine-hypersensitivity", allergy("Ketamine", rxcui="6130")),
    Scenario(
        "refuted-ketamine-allergy",
        "A refuted ketamine allergy is ignored",
        lambda: trd_patient(allergy("Ketamine", rxcui="6130", verification="refuted")),
        Expect("refer-for-evaluation", 2),
    ),
    finding_scenario(
        "active-substance-use-disorder", condition("F10.20", "Alcohol dependence, uncomplicated")
    ),
    Scenario(
        "sud-in-remission",
        "Alcohol dependence in remission does not count as active",
        lambda: trd_patient(condition("F10.21", "Alcohol dependence, in remission")),
        Expect("refer-for-evaluation", 2, contraindications=set()),
    ),
    finding_scenario(
        "pregnancy", condition("Z33.1", "Pregnant state, incidental", onset_weeks_ago=10)
    ),
    Scenario(
        "past-pregnancy",
        "A pregnancy 80 weeks ago, resolved, is not current",
        lambda: trd_patient(
            condition(
                "Z33.1",
                "Pregnant state, incidental",
                status="resolved",
                onset_weeks_ago=80,
                abated_weeks_ago=50,
            )
        ),
        Expect("refer-for-evaluation", 2, contraindications=set()),
    ),
    finding_scenario(
        "breastfeeding",
        condition(
            "Z39.1", "Encounter for care and examination of lactating mother", onset_weeks_ago=8
        ),
    ),
    finding_scenario("minor", birth="2010-03-02"),
    Scenario(
        "minor-by-partial-birth-date",
        "Birth year 2008 only: could still be 17, flagged as a minor",
        lambda: trd_patient(birth="2008"),
        Expect("not-recommended", 2, contraindications={"minor"}),
    ),
    Scenario(
        "suicidal-ideation-phq9-item9",
        "Depression with PHQ-9 item 9 = 2 this week: a same-day risk assessment, no referral",
        lambda: [
            patient(),
            mdd(),
            phq9(14, weeks_ago=1),
            phq9_item9(2, weeks_ago=1),
            blood_pressure(118, 76, days_ago=3),
        ],
        Expect(
            "not-a-candidate",
            0,
            reasons={"suicidal-ideation"},
            indicators=["warning"],
            summary_has="same-day suicide risk assessment",
        ),
    ),
    Scenario(
        "severe-depression-code",
        "Severe major depression code after one failed trial: refer (off-label ketamine)",
        lambda: [
            patient(),
            condition(
                "F32.2",
                "Major depressive disorder, single episode, severe without psychotic features",
                onset_weeks_ago=4,
            ),
            *drug_course(SERTRALINE_100, start_weeks_ago=30, weeks=12, last_reason="ineffective"),
            *drug_course(ESCITALOPRAM_20, start_weeks_ago=17, weeks=20, last_status="active"),
            blood_pressure(118, 76, days_ago=3),
        ],
        Expect(
            "refer-for-evaluation",
            1,
            reasons={"severe-depression"},
            indicators=["info"],
            detail_has=("off-label ketamine",),
        ),
    ),
    Scenario(
        "bipolar-depression",
        "Bipolar depression after a failed trial: specialist, off-label ketamine; not pre-selected",
        lambda: [
            patient(),
            condition("F31.32", "Bipolar disorder, current episode depressed, moderate"),
            *drug_course(SERTRALINE_100, start_weeks_ago=30, weeks=12, last_reason="ineffective"),
            blood_pressure(118, 76, days_ago=3),
        ],
        Expect(
            "refer-for-evaluation",
            1,
            reasons={"bipolar-depression"},
            recommended_suggestion=False,
            detail_has=("third-line",),
        ),
    ),
    Scenario(
        "bipolar-without-phase",
        "TRD with bipolar II on the problem list and no phase: verify first",
        lambda: trd_patient(condition("F31.81", "Bipolar II disorder")),
        Expect("insufficient-data", 2, gap_has="confirm the phase"),
    ),
    Scenario(
        "deceased",
        "Deceased patient: no card",
        lambda: trd_patient(deceasedDateTime="2026-10-01"),
        Expect("not-a-candidate", 2, indicators=[]),
    ),
    Scenario(
        "no-depression-no-drugs",
        "Healthy adult: no card",
        lambda: [
            patient(),
            blood_pressure(118, 76, days_ago=3),
            observation("8867-4", "Heart rate", 70, unit="/min"),
        ],
        Expect("not-a-candidate", 0, indicators=[]),
    ),
    Scenario(
        "no-recent-bp-is-a-gap",
        "TRD without any recent blood pressure: refer, and say BP was not verified",
        lambda: [patient(), mdd(), *trd_history()[:-2]],
        Expect("refer-for-evaluation", 2, gap_has="no blood pressure"),
    ),
    # order-select
    Scenario(
        "order-select-after-trd",
        "Selecting another antidepressant after two failed trials: one card",
        trd_patient,
        Expect(
            "refer-for-evaluation",
            2,
            indicators=["info"],
            summary_has="before",
            has_suggestion=True,
        ),
        service="trd-antidepressant-order",
        orders=lambda: [
            draft_order("mirtazapine 30 MG Oral Tablet", rxcui="314111", dose=1, unit="TAB")
        ],
    ),
    Scenario(
        "order-select-not-antidepressant",
        "Selecting lisinopril: no card",
        trd_patient,
        Expect("refer-for-evaluation", 2, indicators=[]),
        service="trd-antidepressant-order",
        orders=lambda: [
            draft_order("lisinopril 10 MG Oral Tablet", rxcui="314076", dose=1, unit="TAB")
        ],
    ),
    Scenario(
        "order-select-one-failure",
        "Selecting an antidepressant after one failed trial: no card",
        lambda: [
            patient(),
            mdd(),
            *drug_course(SERTRALINE_100, start_weeks_ago=30, weeks=12, last_reason="not effective"),
            blood_pressure(120, 80, days_ago=5),
        ],
        Expect("not-a-candidate", 1, {"sertraline": "failed"}, indicators=[]),
        service="trd-antidepressant-order",
        orders=lambda: [
            draft_order("escitalopram 10 MG Oral Tablet", rxcui="349332", dose=1, unit="TAB")
        ],
    ),
    # order-sign
    Scenario(
        "order-sign-esketamine-safe",
        "Esketamine 56 mg twice weekly, on esketamine for two weeks, BP today: no card",
        lambda: trd_patient(
            *[
                med_request(
                    "esketamine 28 MG Nasal Spray (SPRAVATO)",
                    weeks_ago=w,
                    dose=56,
                    unit="mg",
                    per_day=None,
                    supply_days=1,
                )
                for w in (2, 1.5, 1, 0.5)
            ],
            blood_pressure(124, 78, days_ago=0.05),
        ),
        Expect("refer-for-evaluation", 2, indicators=[]),
        service="ketamine-order-safety",
        orders=lambda: [
            draft_order("esketamine 28 MG Nasal Spray (SPRAVATO)", dose=56, unit="mg", per_week=2)
        ],
    ),
    Scenario(
        "order-sign-ketamine-overdose",
        "IV ketamine 60 mg for 70 kg (0.86 mg/kg): warning",
        lambda: [*trd_patient(), body_weight(70, days_ago=7)],
        Expect("refer-for-evaluation", 2, indicators=["warning"], summary_has="dose"),
        service="ketamine-order-safety",
        orders=lambda: [
            draft_order("ketamine 50 MG/ML Injectable Solution", dose=60, unit="mg", route=IV_ROUTE)
        ],
    ),
    Scenario(
        "order-sign-ketamine-per-kg-ok",
        "IV ketamine 0.5 mg/kg with recent weight and BP: no card",
        lambda: [*trd_patient(), body_weight(70, days_ago=7)],
        Expect("refer-for-evaluation", 2, indicators=[]),
        service="ketamine-order-safety",
        orders=lambda: [
            draft_order("Ketalar 10 mg/mL injection", dose=0.5, unit="mg/kg", route=IV_ROUTE)
        ],
    ),
    Scenario(
        "order-sign-ketamine-no-weight-no-bp",
        "IV ketamine with no recent BP and no weight: one warning listing both",
        lambda: [patient(), mdd(), *trd_history()[:-2]],
        Expect(
            "refer-for-evaluation",
            2,
            indicators=["warning"],
            summary_has="no recent blood pressure (+1 more)",
        ),
        service="ketamine-order-safety",
        orders=lambda: [
            draft_order("ketamine 50 MG/ML Injectable Solution", dose=35, unit="mg", route=IV_ROUTE)
        ],
    ),
    Scenario(
        "order-sign-contraindicated",
        "Esketamine for a patient with a schizophrenia history: critical card",
        lambda: trd_patient(
            condition("F20.0", "Paranoid schizophrenia", status="resolved", onset_weeks_ago=300)
        ),
        Expect(
            "not-recommended",
            2,
            contraindications={"psychosis-history"},
            indicators=["critical"],
            has_suggestion=True,
        ),
        service="ketamine-order-safety",
        orders=lambda: [draft_order("Spravato 28 mg nasal spray", dose=56, unit="mg")],
    ),
    Scenario(
        "order-sign-other-drug",
        "Signing a sertraline order: no card",
        trd_patient,
        Expect("refer-for-evaluation", 2, indicators=[]),
        service="ketamine-order-safety",
        orders=lambda: [
            draft_order(*SERTRALINE_100[:1], rxcui=SERTRALINE_100[1], dose=1, unit="TAB")
        ],
    ),
]
