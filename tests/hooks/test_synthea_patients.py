"""The patient-view hook on every Synthea patient with depression or an antidepressant.

Synthea records (``fhir-r4/``: SMART sandbox R4 bundles, Synthea 3.x fhir-data-pipes bundles, and
the bulk-export NDJSON set grouped per patient): the patients of the curated subset in
``tests/data`` always, every patient of the shared corpus with the ``corpus`` marker. They were
generated around
2019-2020; the suite's clock is 2026-11-27, so with the 104-week lookback only records that are
still running (status "active") reach the current episode. The selection is every patient with a
depression diagnosis (SNOMED CT 370143000, 36923009 or a code of the knowledge list
"depressive-disorder") or a medication that resolves to an ingredient with role "antidepressant".

EXPECTED holds, per patient, what the hook SHOULD conclude, judged clinically from the record
(not copied from the output); the judgement is in each row. Where the service is wrong the row
still says what is right, so the test fails until the service is fixed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fhir_mappers.codes import SNOMED, concept
from fhir_mappers.collect import bundle_resources, index_medications
from fhir_mappers.medication import resolve_medication
from hooks import trd_ketamine_screen
from hooks.base import HookInput, HookResult
from hooks.contexts import HookContext
from hooks.rules.knowledge import Knowledge
from hooks.rules.medications import resolve_ingredients
from tests.factories import NOW
from tests.shared_data import (
    CORPUS,
    CORPUS_FHIR_R4,
    SUBSET_FHIR_R4,
    corpus_params,
    corpus_subdir,
)

SANDBOX = "synthea-smart-sandbox-r4"
PIPES = "synthea-v3-fhir-data-pipes"
NDJSON = "synthea-bulk-ndjson-10-patients"
DEPRESSION_SNOMED = frozenset({"370143000", "36923009"})
NO_BP = "no blood pressure recorded in the last 90 days"
DECEASED = "patient is recorded as deceased"


@dataclass(frozen=True)
class Expected:
    born: int
    deceased: bool
    recommendation: str
    failed: int
    contraindications: frozenset[str]
    trials: dict[str, str] = field(default_factory=dict)
    """Ingredient -> outcome of the trials that SHOULD be reported (current episode)."""
    judgement: str = ""


EXPECTED: dict[str, Expected] = {
    # --- depression diagnosis ---
    f"{SANDBOX}/Milan_Beatty_e78d0ed2-1b54-4c30-90ae-f7405af1e402.json": Expected(
        born=1973,
        deceased=False,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset(),
        trials={"fluoxetine": "ongoing"},
        judgement=(
            "MDD (370143000) active since 1993; Fluoxetine 25MG 1/day, re-ordered after 8 days and "
            "still 'active': one ongoing adequate-dose SSRI, no failure signal, no PHQ-9. Not TRD; "
            "no card is right."
        ),
    ),
    f"{SANDBOX}/Darron_Feeney_ff447d4a-3e5c-4e90-9854-a66a1d0bdfac.json": Expected(
        born=1941,
        deceased=True,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset({"active-substance-use-disorder"}),
        trials={},
        judgement=(
            "Died 2005. MDD active, no antidepressant ever; opioid abuse active. Deceased: no card."
        ),
    ),
    f"{SANDBOX}/Sherman_McGlynn_8ef2ef98-48c5-427e-80d4-5e8f30ac8bf5.json": Expected(
        born=1936,
        deceased=True,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset({"active-substance-use-disorder"}),
        trials={},
        judgement=(
            "Died 2012. MDD + Fluoxetine 25MG 'active' since 1955; opioid abuse active. "
            "Deceased: no card. The fluoxetine exposure ends at death (2012), long before the "
            "104-week window: no trial belongs to a current episode."
        ),
    ),
    # --- antidepressant without a depression diagnosis ---
    f"{SANDBOX}/Eliseo_Cummings_55c373ad-af55-46ed-8f69-9c7a40a89d46.json": Expected(
        born=1973,
        deceased=False,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset(),
        trials={"sertraline": "not-for-depression"},
        judgement=(
            "Sertraline 100MG 'active' since 2015, reasonReference PTSD (resolved 2017); no "
            "depression diagnosis. Not a candidate. The stated indication (PTSD) makes it not a "
            "depression trial."
        ),
    ),
    f"{SANDBOX}/Gilberto_Orosco_6ece62f3-283c-4387-aa9b-affba8ebf4c3.json": Expected(
        born=1936,
        deceased=True,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset({"active-substance-use-disorder"}),
        trials={},
        judgement=(
            "Died 1994. Sertraline 'active' since 1967; opioid abuse. Deceased: no card, and no "
            "trial can reach the current episode."
        ),
    ),
    f"{SANDBOX}/Roberto_Graham_238a58eb-31dc-4054-82ee-0651ee76f391.json": Expected(
        born=1920,
        deceased=True,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset({"serious-heart-disease"}),
        trials={},
        judgement=(
            "Died 1987. Sertraline 'active' since 1978; chronic congestive heart failure. "
            "Deceased: no card, no current-episode trial."
        ),
    ),
    f"{SANDBOX}/Donnell_Torphy_9c154119-26ef-45d6-b560-c41380868b5f.json": Expected(
        born=1910,
        deceased=True,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset(),
        trials={},
        judgement=(
            "Died 1992. Sertraline 'active' since 1936; Alzheimer's. Deceased: no card, no "
            "current-episode trial."
        ),
    ),
    f"{SANDBOX}/Gilbert_Wunsch_ab591293-dc94-4290-a29f-f35522273600.json": Expected(
        born=1941,
        deceased=True,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset(),
        trials={},
        judgement=(
            "Died 2012. Sertraline 'active' since 1966. Deceased: no card, no current-episode "
            "trial."
        ),
    ),
    # --- dextromethorphan cough syrup (role 'antidepressant' only because of Auvelity) ---
    f"{SANDBOX}/Alexia_Rice_a39449f8-f68c-4fc7-a481-1d0720c45fd8.json": Expected(
        born=1983,
        deceased=False,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset(),
        trials={},
        judgement=(
            "Dextromethorphan cough syrup (2020, stopped) for bronchitis: not an antidepressant "
            "trial (no adequate dose). Past pregnancies all resolved. Not a candidate."
        ),
    ),
    f"{SANDBOX}/Angele_Greenfelder_3c9e65ef-e65e-46e7-b69a-60a3457307f0.json": Expected(
        born=2004,
        deceased=False,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset(),
        trials={},
        judgement=("Dextromethorphan cough syrup (2017). Adult now (22). Not a candidate."),
    ),
    f"{SANDBOX}/Margarita_Powlowski_3fadaab7-2f3b-498b-b07a-d5769cbc47cf.json": Expected(
        born=2001,
        deceased=False,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset(),
        trials={},
        judgement=("Dextromethorphan cough syrup (2013). Not a candidate."),
    ),
    f"{NDJSON}/Patient/6a4160eb-a793-2f86-2302-378626f46cce": Expected(
        born=1963,
        deceased=False,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset(),
        trials={},
        judgement=("Dextromethorphan cough syrup (2015, stopped). Not a candidate."),
    ),
    f"{NDJSON}/Patient/bb6a9034-2f23-2508-d29d-35efee156dc9": Expected(
        born=2007,
        deceased=False,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset(),
        trials={},
        judgement=(
            "Dextromethorphan cough syrup (2021, stopped). Born 2007-07-11: 19 today, adult. Not a "
            "candidate."
        ),
    ),
    f"{NDJSON}/Patient/ca15b832-01e4-41dd-6a52-97bd3e5510cb": Expected(
        born=1986,
        deceased=False,
        recommendation="not-a-candidate",
        failed=0,
        contraindications=frozenset(),
        trials={},
        judgement=("Dextromethorphan cough syrup (2021, stopped). Not a candidate."),
    ),
}


# --------------------------------------------------------------------------------------------
# Loading (every function takes the fhir-r4 root: the subset's or the corpus's)


def _bundle_patients(root: Path, folder: str) -> list[str]:
    return [
        f"{folder}/{p.name}"
        for p in sorted((root / folder).glob("*.json"))
        if not p.name.startswith(("hospitalInformation", "practitionerInformation"))
    ]


@cache
def _ndjson_by_patient(root: Path) -> dict[str, list[dict[str, Any]]]:
    """The bulk-export NDJSON resources grouped per patient (Patient.id, subject, patient)."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted((root / NDJSON).glob("*.000.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            resource = json.loads(line)
            if resource.get("resourceType") == "Patient":
                grouped[resource["id"]].insert(0, resource)
                continue
            owner = resource.get("subject") or resource.get("patient") or {}
            reference = owner.get("reference", "") if isinstance(owner, dict) else ""
            if reference.startswith("Patient/"):
                grouped[reference.removeprefix("Patient/")].append(resource)
    return dict(grouped)


def patient_resources(root: Path, key: str) -> list[dict[str, Any]]:
    folder, _, rest = key.partition("/")
    if folder == NDJSON:
        pid = rest.removeprefix("Patient/")
        resources = _ndjson_by_patient(root).get(pid)
        assert resources, f"no NDJSON resources for patient {pid}"
        return resources
    path = root / key
    assert path.is_file(), f"fixture {key} missing"
    return bundle_resources(json.loads(path.read_text(encoding="utf-8")))


def all_patient_keys(root: Path) -> list[str]:
    keys = _bundle_patients(root, SANDBOX) + _bundle_patients(root, PIPES)
    keys += [f"{NDJSON}/Patient/{pid}" for pid in sorted(_ndjson_by_patient(root))]
    return keys


def the_patient(resources: list[dict[str, Any]]) -> dict[str, Any]:
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    assert len(patients) == 1, f"{len(patients)} Patient resources"
    return patients[0]


SUBSET_KEYS = [k for k in EXPECTED if not k.startswith(NDJSON) and (SUBSET_FHIR_R4 / k).is_file()]
"""The judged patients whose whole record is in the subset (its NDJSON holds only Patients)."""


# --------------------------------------------------------------------------------------------
# Selection


def has_depression(resources: list[dict[str, Any]], knowledge: Knowledge) -> bool:
    depressive = knowledge.code_list("depressive-disorder")
    for resource in resources:
        if resource.get("resourceType") != "Condition":
            continue
        for coding in concept(resource.get("code")).codings:
            if coding.system == SNOMED and coding.code in DEPRESSION_SNOMED:
                return True
            if depressive.matches_code(coding.system, coding.code):
                return True
    return False


def antidepressants(resources: list[dict[str, Any]], knowledge: Knowledge) -> set[str]:
    medications = index_medications(resources)
    found: set[str] = set()
    for resource in resources:
        if resource.get("resourceType") not in ("MedicationRequest", "MedicationStatement"):
            continue
        product, ingredients, _ = resolve_medication(resource, medications)
        for item in resolve_ingredients(product, ingredients, knowledge):
            if knowledge.ingredients[item.name].role == "antidepressant":
                found.add(item.name)
    return found


def selected(root: Path, knowledge: Knowledge) -> list[str]:
    """The Synthea patients under ``root`` with depression or an antidepressant."""
    return sorted(
        key
        for key in all_patient_keys(root)
        if has_depression(resources := patient_resources(root, key), knowledge)
        or antidepressants(resources, knowledge)
    )


def test_synthea_subset_selection_matches_its_table_rows(knowledge: Knowledge) -> None:
    """Verify that the subset's Synthea patients with depression or an antidepressant are exactly
    its judged rows, and that it keeps at least two of them."""
    assert selected(SUBSET_FHIR_R4, knowledge) == sorted(SUBSET_KEYS)
    assert len(SUBSET_KEYS) >= 2


@CORPUS
def test_synthea_selection_depression_or_antidepressant_matches_table(knowledge: Knowledge) -> None:
    """Verify that the corpus's Synthea patients with depression or an antidepressant are the table
    rows."""
    assert selected(corpus_subdir(*CORPUS_FHIR_R4), knowledge) == sorted(EXPECTED)


# --------------------------------------------------------------------------------------------
# The hook, in process


def run_screen(root: Path, key: str, knowledge: Knowledge) -> tuple[dict[str, Any], HookResult]:
    resources = patient_resources(root, key)
    patient = the_patient(resources)
    hook_input = HookInput(
        context=HookContext(patientId=patient["id"], userId="Practitioner/x"),
        resources={"bundle": resources},
        gaps=(),
        now=NOW,
        knowledge=knowledge,
    )
    return patient, trd_ketamine_screen.evaluate(hook_input)


def _key_id(key: str) -> str:
    folder, _, rest = key.partition("/")
    short = {SANDBOX: "sandbox", PIPES: "pipes", NDJSON: "ndjson"}[folder]
    if folder == NDJSON:
        return f"{short}/{rest.removeprefix('Patient/')[:8]}"
    return f"{short}/" + "_".join(rest.split("_")[:2])


def _root(source: str) -> Path:
    return SUBSET_FHIR_R4 if source == "subset" else corpus_subdir(*CORPUS_FHIR_R4)


CASES = [pytest.param(("subset", key), id=f"subset/{_key_id(key)}") for key in SUBSET_KEYS]
CASES += corpus_params(lambda _: [("corpus", key) for key in EXPECTED], ids=lambda c: _key_id(c[1]))
"""(source, key): the subset's judged patients always, every judged patient with the corpus."""


@pytest.mark.parametrize("case", CASES)
def test_trd_ketamine_screen_synthea_patient_gets_expected_assessment(
    case: tuple[str, str], knowledge: Knowledge
) -> None:
    """Verify that a Synthea patient gets the expected verdict, count and contraindications."""
    source, key = case
    expected = EXPECTED[key]
    patient, result = run_screen(_root(source), key, knowledge)
    assessment = result.assessment
    assert int(patient["birthDate"][:4]) == expected.born
    assert (
        bool(patient.get("deceasedDateTime") or patient.get("deceasedBoolean")) == expected.deceased
    )
    summary = assessment.as_json()
    assert assessment.recommendation == expected.recommendation, (expected.judgement, summary)
    assert assessment.failed_adequate_trials == expected.failed, summary.get("trials", [])
    assert {c.id for c in assessment.contraindications} == expected.contraindications, summary
    if expected.recommendation == "not-a-candidate":
        assert result.cards == []
    assert (DECEASED in assessment.data_gaps) == expected.deceased
    # Synthea data stop in 2019-2020: no blood pressure can be recent on 2026-11-27.
    assert NO_BP in assessment.data_gaps


@pytest.mark.parametrize("case", CASES)
def test_trd_ketamine_screen_synthea_patient_reports_current_episode_trials(
    case: tuple[str, str], knowledge: Knowledge
) -> None:
    """Verify that only trials that can belong to the current episode are reported."""
    source, key = case
    expected = EXPECTED[key]
    _, result = run_screen(_root(source), key, knowledge)
    trials = {t.ingredient: t.outcome for t in result.assessment.trials}
    assert trials == expected.trials, (
        expected.judgement,
        [t.as_json() for t in result.assessment.trials],
    )
