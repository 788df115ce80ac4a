"""Treatment and referrals already under way (issue 12): no card a clinician has already acted on.

Each one is a TRD patient who would otherwise get the referral card. A patient already given
esketamine or ketamine (ordered, administered in clinic, dispensed), or with a referral for
evaluation open or recently completed, gets no referral card; a completed referral older than
the window brings it back; a patient on esketamine with a new label warning gets one warning
card; order-select names the referral already in progress.
"""

from __future__ import annotations

from tests.factories import (
    SNOMED,
    condition,
    draft_order,
    med_request,
    medication_administration,
    medication_dispense,
    service_request,
)
from tests.scenarios.model import Expect, Scenario, trd_patient

SPRAVATO = "esketamine 28 MG Nasal Spray (SPRAVATO)"
KETAMINE_IV = "ketamine 50 MG/ML Injectable Solution"
IV_ROUTE = {"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}]}
REFERRAL_TEXT = "Referral to psychiatry: evaluation for esketamine (SPRAVATO) treatment"
TREATMENT = "treatment-in-progress"
REFERRAL = "referral-in-progress"

IN_PROGRESS = [
    Scenario(
        "in-progress-on-esketamine",
        "Esketamine twice weekly ordered over the last three weeks: no referral card",
        lambda: trd_patient(
            *[
                med_request(
                    SPRAVATO,
                    weeks_ago=w,
                    dose=56,
                    unit="mg",
                    per_day=None,
                    supply_days=1,
                    status="completed",
                )
                for w in (3, 2.5, 2, 1.5, 1, 0.5)
            ]
        ),
        Expect("refer-for-evaluation", 2, indicators=[], suppressed=TREATMENT),
    ),
    Scenario(
        "in-progress-on-iv-ketamine-administered",
        "IV ketamine infusions given in clinic (MedicationAdministration) last week: no card",
        lambda: trd_patient(
            medication_administration(KETAMINE_IV, days_ago=9, dose=35, route=IV_ROUTE),
            medication_administration(KETAMINE_IV, days_ago=6, dose=35, route=IV_ROUTE),
        ),
        Expect("refer-for-evaluation", 2, indicators=[], suppressed=TREATMENT),
    ),
    Scenario(
        "in-progress-esketamine-dispensed",
        "Esketamine dispensed to the treatment centre three weeks ago: no card",
        lambda: trd_patient(medication_dispense(SPRAVATO, days_ago=21, days_supply=28)),
        Expect("refer-for-evaluation", 2, indicators=[], suppressed=TREATMENT),
    ),
    Scenario(
        "in-progress-esketamine-long-ago",
        "Esketamine given a year ago, nothing since: treatment not in progress, the card shows",
        lambda: trd_patient(
            medication_administration(SPRAVATO, days_ago=365, dose=56),
        ),
        Expect("refer-for-evaluation", 2, indicators=["info"], suppressed="none"),
    ),
    Scenario(
        "in-progress-on-esketamine-new-pregnancy",
        "On esketamine, and now pregnant: one warning card, because treatment is under way",
        lambda: trd_patient(
            medication_administration(SPRAVATO, days_ago=4, dose=84),
            condition("Z33.1", "Pregnant state, incidental", onset_weeks_ago=3),
        ),
        Expect(
            "not-recommended",
            2,
            contraindications={"pregnancy"},
            indicators=["warning"],
            kinds=["screen-on-treatment"],
            summary_has="On ketamine/esketamine treatment",
            suppressed=TREATMENT,
        ),
    ),
    Scenario(
        "in-progress-active-referral",
        "A referral for esketamine evaluation ordered last week (active): no referral card",
        lambda: trd_patient(service_request(REFERRAL_TEXT, status="active", weeks_ago=1)),
        Expect("refer-for-evaluation", 2, indicators=[], suppressed=REFERRAL),
    ),
    Scenario(
        "in-progress-completed-referral-recent",
        "The evaluation referral was completed two months ago: no referral card",
        lambda: trd_patient(
            service_request(REFERRAL_TEXT, status="completed", weeks_ago=12, done_weeks_ago=8)
        ),
        Expect("refer-for-evaluation", 2, indicators=[], suppressed=REFERRAL),
    ),
    Scenario(
        "in-progress-completed-referral-outside-window",
        "The evaluation referral was completed 40 weeks ago (outside 180 days): the card shows",
        lambda: trd_patient(
            service_request(REFERRAL_TEXT, status="completed", weeks_ago=44, done_weeks_ago=40)
        ),
        Expect("refer-for-evaluation", 2, indicators=["info"], suppressed="none"),
    ),
    Scenario(
        "in-progress-revoked-referral",
        "A revoked referral does not count: the card shows",
        lambda: trd_patient(service_request(REFERRAL_TEXT, status="revoked", weeks_ago=2)),
        Expect("refer-for-evaluation", 2, indicators=["info"], suppressed="none"),
    ),
    Scenario(
        "in-progress-other-psychiatry-referral",
        "An unrelated psychiatry referral (no ketamine in it) does not count: the card shows",
        lambda: trd_patient(
            service_request(
                "Referral to psychiatry service",
                coding={
                    "system": SNOMED,
                    "code": "183524004",
                    "display": "Referral to psychiatry service",
                },
            )
        ),
        Expect("refer-for-evaluation", 2, indicators=["info"], suppressed="none"),
    ),
    Scenario(
        "in-progress-referral-order-select",
        "Selecting mirtazapine with an evaluation referral open: the card names the referral",
        lambda: trd_patient(service_request(REFERRAL_TEXT, status="active", weeks_ago=1)),
        Expect(
            "refer-for-evaluation",
            2,
            indicators=["info"],
            kinds=["select-referral-exists"],
            summary_has="already in progress",
            has_suggestion=False,
            suppressed=REFERRAL,
        ),
        service="trd-antidepressant-order",
        orders=lambda: [
            draft_order("mirtazapine 30 MG Oral Tablet", rxcui="314111", dose=1, unit="TAB")
        ],
    ),
    Scenario(
        "in-progress-esketamine-order-select",
        "Selecting mirtazapine for a patient on esketamine: no card",
        lambda: trd_patient(medication_administration(SPRAVATO, days_ago=4, dose=84)),
        Expect("refer-for-evaluation", 2, indicators=[], suppressed=TREATMENT),
        service="trd-antidepressant-order",
        orders=lambda: [
            draft_order("mirtazapine 30 MG Oral Tablet", rxcui="314111", dose=1, unit="TAB")
        ],
    ),
]
