"""Robustness on real data: third-party FHIR R4 patients on a real FHIR server.

The patients of the curated subset (``tests/data/fhir-r4``: Synthea SMART sandbox, Inferno US
Core, bulk NDJSON Patients, HL7 and US Core examples) always; with the ``corpus`` marker, every
patient of the shared corpus (Synthea sandbox and 3.x, Inferno, bulk NDJSON, HL7 and US Core
examples). They are loaded into Medplum servers (``real_data.py``; 20 results per page, like HAPI)
and the patient-view hook is fired for each one with the prefetch filled from the server and with
no prefetch: never a 5xx, always a conformant response, and the same answer both ways. The service
runs with a page cap of 100 (2000 results) so that no record is truncated (the default cap of 10
pages is exercised on the largest corpus records below).

The patients with a depression diagnosis or an antidepressant get the result judged from their
record in ``DEPRESSION_OR_ANTIDEPRESSANT`` (the same patients and verdicts as the in-process
table of tests/hooks/test_synthea_patients.py, plus Inferno patient 85). The suite's clock is
2026-11-27; the Synthea records stop in 2019-2020, so only orders still "active" can reach the
104-week current episode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.helpers import assert_sound, fire
from tests.integration.real_data import (
    INFERNO,
    NDJSON,
    SANDBOX,
    UNLOADABLE,
    RealData,
    patient_keys,
)
from tests.shared_data import CORPUS, CORPUS_FHIR_R4, SUBSET_FHIR_R4, corpus_params

SUBSET_KEYS = patient_keys(SUBSET_FHIR_R4)
PAGE_CAP = 100
NO_BP = "no blood pressure recorded in the last 90 days"
DECEASED = "patient is recorded as deceased"


@dataclass(frozen=True)
class Judged:
    recommendation: str
    failed: int
    contraindications: frozenset[str] = frozenset()
    trials: dict[str, str] = field(default_factory=dict)
    deceased: bool = False
    why: str = ""


NOT = "not-a-candidate"
SUD = "active-substance-use-disorder"
HEART = "serious-heart-disease"

DEPRESSION_OR_ANTIDEPRESSANT: dict[str, Judged] = {
    f"{SANDBOX}/Milan_Beatty_e78d0ed2-1b54-4c30-90ae-f7405af1e402.json": Judged(
        NOT,
        0,
        trials={"fluoxetine": "ongoing"},
        why="MDD active; Fluoxetine 25 mg/day still active: one ongoing adequate trial, no "
        "failure signal, no PHQ-9. One trial is not TRD.",
    ),
    f"{SANDBOX}/Darron_Feeney_ff447d4a-3e5c-4e90-9854-a66a1d0bdfac.json": Judged(
        NOT,
        0,
        frozenset({SUD}),
        deceased=True,
        why="Died 2005; MDD, never an antidepressant; opioid abuse active. Deceased: no card.",
    ),
    f"{SANDBOX}/Sherman_McGlynn_8ef2ef98-48c5-427e-80d4-5e8f30ac8bf5.json": Judged(
        NOT,
        0,
        frozenset({SUD}),
        deceased=True,
        why="Died 2012; MDD + fluoxetine 'active' (exposure ends at death, long before the "
        "episode window); opioid abuse. Deceased: no card.",
    ),
    f"{SANDBOX}/Eliseo_Cummings_55c373ad-af55-46ed-8f69-9c7a40a89d46.json": Judged(
        NOT,
        0,
        trials={"sertraline": "not-for-depression"},
        why="Sertraline 100 mg active, prescribed for PTSD (reasonReference): not a depression "
        "trial; no depression diagnosis: not a candidate.",
    ),
    f"{SANDBOX}/Gilberto_Orosco_6ece62f3-283c-4387-aa9b-affba8ebf4c3.json": Judged(
        NOT,
        0,
        frozenset({SUD}),
        deceased=True,
        why="Died 1994; sertraline; opioid abuse.",
    ),
    f"{SANDBOX}/Roberto_Graham_238a58eb-31dc-4054-82ee-0651ee76f391.json": Judged(
        NOT,
        0,
        frozenset({HEART}),
        deceased=True,
        why="Died 1987; sertraline; chronic congestive heart failure active.",
    ),
    f"{SANDBOX}/Donnell_Torphy_9c154119-26ef-45d6-b560-c41380868b5f.json": Judged(
        NOT,
        0,
        deceased=True,
        why="Died 1992; sertraline; Alzheimer's.",
    ),
    f"{SANDBOX}/Gilbert_Wunsch_ab591293-dc94-4290-a29f-f35522273600.json": Judged(
        NOT,
        0,
        deceased=True,
        why="Died 2012; sertraline since 1966 (102 orders: 6 pages).",
    ),
    f"{SANDBOX}/Alexia_Rice_a39449f8-f68c-4fc7-a481-1d0720c45fd8.json": Judged(
        NOT,
        0,
        why="Dextromethorphan cough syrup for bronchitis: no antidepressant trial; past "
        "pregnancies resolved.",
    ),
    f"{SANDBOX}/Angele_Greenfelder_3c9e65ef-e65e-46e7-b69a-60a3457307f0.json": Judged(
        NOT,
        0,
        why="Dextromethorphan cough syrup (2017); an adult today.",
    ),
    f"{SANDBOX}/Margarita_Powlowski_3fadaab7-2f3b-498b-b07a-d5769cbc47cf.json": Judged(
        NOT,
        0,
        why="Dextromethorphan cough syrup (2013).",
    ),
    f"{NDJSON}/Patient/6a4160eb-a793-2f86-2302-378626f46cce": Judged(
        NOT,
        0,
        why="Dextromethorphan cough syrup (2015, stopped).",
    ),
    f"{NDJSON}/Patient/bb6a9034-2f23-2508-d29d-35efee156dc9": Judged(
        NOT,
        0,
        why="Dextromethorphan cough syrup (2021); born 2007-07-11, an adult today.",
    ),
    f"{NDJSON}/Patient/ca15b832-01e4-41dd-6a52-97bd3e5510cb": Judged(
        NOT,
        0,
        why="Dextromethorphan cough syrup (2021, stopped).",
    ),
    f"{INFERNO}/uscore_bundle_patient_85.json": Judged(
        NOT,
        0,
        frozenset({HEART}),
        deceased=True,
        why="Died 1977; dextromethorphan cough syrup (1958); chronic congestive heart failure "
        "active. Deceased: no card.",
    ),
}


LABELS = {
    SANDBOX: "sandbox",
    "synthea-v3-fhir-data-pipes": "pipes",
    INFERNO: "inferno",
    NDJSON: "ndjson",
    "hl7-r4-examples": "hl7",
    "us-core-examples": "us-core",
}


def _short(key: str) -> str:
    folder, _, rest = key.partition("/")
    rest = re.sub(r"_[0-9a-f]{8}-[0-9a-f-]{27}\.json", "", rest).removeprefix("Patient/")
    return f"{LABELS[folder]}/{rest[:48]}"


def _corpus_keys(shared: Path) -> tuple[str, ...]:
    return patient_keys(shared.joinpath(*CORPUS_FHIR_R4))


CORPUS_KEYS = corpus_params(_corpus_keys, ids=_short)
SUBSET_JUDGED = {
    key: judged
    for key, judged in DEPRESSION_OR_ANTIDEPRESSANT.items()
    if key in SUBSET_KEYS and not key.startswith(NDJSON)
}
"""The judged patients whose whole record is in the subset (its NDJSON holds only Patients)."""


def _stored_all(real_data: RealData, keys: tuple[str, ...]) -> None:
    for name in ("synthea", "hl7", "us-core"):
        group = real_data.group(name)
        assert group.server.base_url.startswith("http://127.0.0.1:")
    stored = {k for g in real_data.groups.values() for k in g.patients}
    assert set(keys) <= stored
    assert not set(UNLOADABLE) & stored


def _fire_and_judge(real_data: RealData, key: str, judged: Judged | None) -> None:
    server, patient_id = real_data.locate(key)
    result = fire(server.base_url, patient_id, page_cap=PAGE_CAP)
    assert_sound(result)
    if judged is None:
        return
    assessment = result.assessment
    assert assessment["recommendation"] == judged.recommendation, (judged.why, assessment)
    assert assessment["failed_adequate_trials"] == judged.failed, assessment.get("trials", [])
    assert {c["id"] for c in assessment.get("contraindications", [])} == judged.contraindications
    assert {t["ingredient"]: t["outcome"] for t in assessment.get("trials", [])} == judged.trials
    assert (DECEASED in assessment.get("data_gaps", [])) == judged.deceased
    assert NO_BP in assessment.get("data_gaps", [])
    if judged.recommendation == NOT:
        assert result.cards == []


# ------------------------------------------------------------------------------------------------
# The curated subset (always)


def test_subset_every_patient_is_stored_by_the_server(subset_data: RealData) -> None:
    """Verify that each subset patient listed from the files is stored (none lost loading)."""
    _stored_all(subset_data, SUBSET_KEYS)
    assert len(SUBSET_KEYS) >= 20


def test_subset_holds_judged_depression_patients() -> None:
    """Verify that the subset keeps at least two judged depression/antidepressant patients."""
    assert len(SUBSET_JUDGED) >= 2, sorted(SUBSET_JUDGED)


@pytest.mark.parametrize("key", SUBSET_KEYS, ids=[_short(k) for k in SUBSET_KEYS])
def test_patient_view_on_subset_data_is_conformant_and_the_same_in_both_modes(
    key: str, subset_data: RealData
) -> None:
    """Verify 200, conformant cards, identical prefetch/no-prefetch answers (and judged rows)."""
    _fire_and_judge(subset_data, key, SUBSET_JUDGED.get(key))


# ------------------------------------------------------------------------------------------------
# The whole shared corpus (corpus tests)


@CORPUS
def test_corpus_every_patient_is_stored_by_the_server(corpus_data: RealData) -> None:
    """Verify that each corpus patient listed from the files is stored (none lost loading)."""
    keys = [p.values[0] for p in CORPUS_KEYS]
    _stored_all(corpus_data, tuple(keys))
    assert len(keys) >= 100


@pytest.mark.parametrize("key", CORPUS_KEYS)
def test_patient_view_on_corpus_data_is_conformant_and_the_same_in_both_modes(
    key: str, corpus_data: RealData
) -> None:
    """Verify 200, conformant cards, identical prefetch/no-prefetch answers (and judged rows)."""
    _fire_and_judge(corpus_data, key, DEPRESSION_OR_ANTIDEPRESSANT.get(key))


@CORPUS
def test_depression_table_rows_are_real_corpus_patients() -> None:
    """Verify that every judged row names a patient of the corpus (no stale keys)."""
    assert set(DEPRESSION_OR_ANTIDEPRESSANT) <= {p.values[0] for p in CORPUS_KEYS}


@CORPUS
def test_largest_record_pages_and_default_page_cap_truncation_is_reported(
    corpus_data: RealData,
) -> None:
    """Verify real-data paging: 102 orders take 6 pages; 447 orders pass the default cap (10)."""
    server, patient_id = corpus_data.locate(
        f"{SANDBOX}/Gilbert_Wunsch_ab591293-dc94-4290-a29f-f35522273600.json"
    )
    server.clear_requests()
    result = fire(server.base_url, patient_id, page_cap=PAGE_CAP)
    assert_sound(result)
    pages = [
        r["url"]
        for r in server.requests()
        if r["url"].startswith("/fhir/MedicationRequest?") and "_offset=100" in r["url"]
    ]
    assert len(pages) == 3  # the last page, read by the client and by the service (twice)

    server, patient_id = corpus_data.locate(
        f"{NDJSON}/Patient/129c6ac7-8d06-89de-ad63-0204a93e76c3"
    )
    capped = fire(server.base_url, patient_id)  # the service's default page cap
    gaps = capped.fetch.body["assessment"].get("data_gaps", [])
    assert any(g.startswith("medicationRequests: results truncated after 10 pages") for g in gaps)
    assert capped.prefetch.body["explanation"]["resources_by_key"]["medicationRequests"] == 447
    assert capped.fetch.body["explanation"]["resources_by_key"]["medicationRequests"] == 200
