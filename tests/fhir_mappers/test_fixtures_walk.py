"""Robustness walk over third-party FHIR R4 fixture files.

The curated subset (``tests/data/fhir-r4``) always; with the ``corpus`` marker, every file of the
shared corpus (``fixtures/fhir-r4/``: about 600 files, 75 MB, a few seconds).

Each *.json file (a Bundle of any type, or a single resource) and each *.ndjson file (one resource
per line) is mapped with ``AcceptAll`` (every Condition, medication, Observation and allergy is
validated and mapped) and with ``KnowledgeRelevance`` (what the hooks really map), and then assessed
in full. Nested Bundles (batch responses, documents holding Bundles) are opened too; contained
resources are the mappers' business. Nothing may raise, facts must keep their documented
invariants, and the relevance-filtered facts must be a subset of the accept-all ones.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from fhir_mappers.collect import AcceptAll, MappingStats, bundle_resources, map_resources
from fhir_mappers.facts import Facts
from hooks.relevance import KnowledgeRelevance
from hooks.rules.assessment import assess
from hooks.rules.knowledge import Knowledge
from tests.factories import NOW
from tests.shared_data import (
    CORPUS,
    CORPUS_FHIR_R4,
    DATA,
    SUBSET_FHIR_R4,
    corpus_params,
    corpus_subdir,
    read_tsv,
)

SKIPPED_DIRS = frozenset({"licenses"})
SKIPPED_FILES = frozenset({"MANIFEST.tsv", "README.md"})
RECOMMENDATIONS = frozenset(
    {"refer-for-evaluation", "not-recommended", "insufficient-data", "not-a-candidate"}
)
CORPUS_FOLDERS = frozenset(
    {
        "hl7-r4-examples",
        "us-core-examples",
        "synthea-smart-sandbox-r4",
        "synthea-v3-fhir-data-pipes",
        "synthea-bulk-ndjson-10-patients",
        "inferno-us-core-reference-data",
    }
)


def data_files(root: Path) -> list[str]:
    """The fixture files under ``root`` (relative paths), without licences and documentation."""
    return [
        p.relative_to(root).as_posix()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and not SKIPPED_DIRS & set(p.relative_to(root).parts)
        and p.name not in SKIPPED_FILES
    ]


SUBSET_FILES = data_files(SUBSET_FHIR_R4)
CORPUS_FILES = corpus_params(lambda shared: data_files(shared.joinpath(*CORPUS_FHIR_R4)), ids=str)


def flatten(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Resources with nested Bundles opened (their entries follow the Bundle itself)."""
    out: list[dict[str, Any]] = []
    for resource in resources:
        out.append(resource)
        if resource.get("resourceType") == "Bundle":
            out += flatten(bundle_resources(resource))
    return out


def read_resources(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ndjson":
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        return flatten([r for r in lines if isinstance(r, dict)])
    return flatten(bundle_resources(json.loads(text)))


def _refs(facts: Facts) -> dict[str, set[str]]:
    return {
        "diagnoses": {d.ref for d in facts.diagnoses},
        "medications": {m.ref for m in facts.medications},
        "observations": {o.ref for o in facts.observations},
        "allergies": {a.ref for a in facts.allergies},
    }


def _datetimes(facts: Facts) -> list[tuple[str, datetime]]:
    found: list[tuple[str, datetime | None]] = []
    for d in facts.diagnoses:
        found += [(d.ref, d.onset), (d.ref, d.abatement), (d.ref, d.recorded)]
    for m in facts.medications:
        found += [(m.ref, m.start), (m.ref, m.end)]
    for o in facts.observations:
        found.append((o.ref, o.effective))
    return [(ref, value) for ref, value in found if value is not None]


def _check_facts(facts: Facts, stats: MappingStats, label: str) -> None:
    assert isinstance(facts, Facts), label
    for ref, value in _datetimes(facts):
        assert value.tzinfo is not None and value.utcoffset() is not None, f"{label}: {ref} naive"
    assert stats.mapped + stats.irrelevant + stats.invalid <= stats.seen, (label, stats)
    assert stats.invalid == sum(
        "is malformed" in u.why or "cannot be read" in u.why for u in facts.unreadable
    ), label
    for m in facts.medications:
        assert m.dose_value is None or m.dose_value >= 0, (label, m.ref)
        assert m.supply_days is None or m.supply_days >= 0, (label, m.ref)
        assert m.doses_per_day is None or m.doses_per_day >= 0, (label, m.ref)


def _check_assessment(facts: Facts, knowledge: Knowledge, label: str) -> None:
    assessment = assess(facts, now=NOW, knowledge=knowledge)
    assert assessment.recommendation in RECOMMENDATIONS, label
    failed = {t.ingredient for t in assessment.trials if t.outcome == "failed"}
    assert assessment.failed_adequate_trials == len(failed), label
    if assessment.recommendation == "not-recommended":
        assert assessment.contraindications and assessment.candidate_reasons, label
    if assessment.recommendation == "refer-for-evaluation":
        assert not assessment.contraindications and assessment.candidate_reasons, label
    json.dumps(assessment.as_json())  # the explain endpoint must be able to serialise it


def walk(path: Path, knowledge: Knowledge, relative: str) -> None:
    """Map one file with both relevances, check the facts, and assess both."""
    assert path.suffix in (".json", ".ndjson"), f"unexpected fixture file type: {relative}"
    resources = read_resources(path)
    # Batch requests of GETs (Bundle-bundle-request-*) and the bulk-export log hold no resource.

    all_stats = MappingStats()
    everything = map_resources(resources, AcceptAll(), stats=all_stats)
    _check_facts(everything, all_stats, f"{relative} [accept-all]")

    relevant_stats = MappingStats()
    relevant = map_resources(resources, KnowledgeRelevance(knowledge), stats=relevant_stats)
    _check_facts(relevant, relevant_stats, f"{relative} [knowledge]")

    assert relevant.patient == everything.patient
    for kind, refs in _refs(relevant).items():
        assert refs <= _refs(everything)[kind], f"{relative}: {kind} mapped only with relevance"
    assert relevant_stats.mapped <= all_stats.mapped

    _check_assessment(everything, knowledge, f"{relative} [accept-all]")
    _check_assessment(relevant, knowledge, f"{relative} [knowledge]")


@pytest.mark.parametrize("relative", SUBSET_FILES, ids=SUBSET_FILES)
def test_map_resources_subset_file_maps_and_assesses_without_error(
    relative: str, knowledge: Knowledge
) -> None:
    """Verify that a subset fixture file maps with both relevances and assesses without error."""
    walk(SUBSET_FHIR_R4 / relative, knowledge, relative)


@pytest.mark.parametrize("relative", CORPUS_FILES)
def test_map_resources_corpus_file_maps_and_assesses_without_error(
    relative: str, knowledge: Knowledge
) -> None:
    """Verify that a corpus fixture file maps with both relevances and assesses without error."""
    walk(corpus_subdir(*CORPUS_FHIR_R4) / relative, knowledge, relative)


def test_fixture_walk_subset_covers_its_manifest() -> None:
    """Verify that the subset walk sees every FHIR file of tests/data/MANIFEST.tsv, in 5 folders."""
    listed = {r["path"] for r in read_tsv(DATA / "MANIFEST.tsv")}
    assert set(SUBSET_FILES) == {
        p.removeprefix("fhir-r4/") for p in listed if p.startswith("fhir-r4/")
    }
    folders = {f.split("/")[0] for f in SUBSET_FILES}
    assert folders == CORPUS_FOLDERS - {"synthea-v3-fhir-data-pipes"}


@CORPUS
def test_fixture_walk_corpus_covers_every_folder() -> None:
    """Verify that the corpus walk sees the six fixture folders and the files of MANIFEST.tsv."""
    root = corpus_subdir(*CORPUS_FHIR_R4)
    walked = [p.values[0] for p in CORPUS_FILES]
    assert {f.split("/")[0] for f in walked} == CORPUS_FOLDERS
    rows = read_tsv(root / "MANIFEST.tsv")
    listed = {f"{r['folder']}/{r['file']}" for r in rows if r["folder"] not in SKIPPED_DIRS}
    assert listed == set(walked)
