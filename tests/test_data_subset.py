"""The curated test data in tests/data: complete, unchanged, licensed, small; and, with the corpus,
still identical to its source (scripts/make_test_data.py --check)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import pytest

from tests.shared_data import CORPUS, DATA, REPO, corpus_dir, read_tsv

MANIFEST = read_tsv(DATA / "MANIFEST.tsv")
BUDGET_BYTES = 3_000_000
"""tests/data must stay well under 3 MB (README and MANIFEST included)."""

LICENCE_FILES = {
    "github.com/HL7/cds-hooks": {"hl7-cds-hooks.LICENSE", "hl7-cds-hooks.NOTICE"},
    "github.com/HL7/cds-hooks-library": {"CC0-1.0.txt"},
    "github.com/FHIR/fhir-test-cases": {"fhir-test-cases.LICENSE.txt"},
    "github.com/FHIR/fhir-tools-ig": {"fhir-tools-ig.LICENSE.txt", "CC0-1.0.txt"},
    "npm hl7.fhir.r4.examples@4.0.1": {"CC0-1.0.txt"},
    "github.com/HL7/US-Core": {"CC0-1.0.txt"},
    "github.com/smart-on-fhir/generated-sample-data": {"synthea-smart-sandbox-r4.LICENSE"},
    "github.com/smart-on-fhir/sample-bulk-fhir-datasets (branch 10-patients)": {
        "synthea-bulk-ndjson-10-patients.LICENSE",
        "CC0-1.0.txt",
    },
    "github.com/inferno-framework/inferno-reference-server-data": {
        "inferno-us-core-reference-data.LICENSE",
        "inferno-us-core-reference-data.NOTICE.md",
    },
}
"""The licence and notice texts in tests/data/licenses that each source of data needs."""


def _data_rows() -> list[dict[str, str]]:
    return [r for r in MANIFEST if not r["path"].startswith("licenses/")]


def test_data_subset_files_are_exactly_the_manifest() -> None:
    """Verify that tests/data holds exactly the MANIFEST.tsv files, with their sizes and hashes."""
    on_disk = {
        p.relative_to(DATA).as_posix()
        for p in DATA.rglob("*")
        if p.is_file() and p.name not in ("README.md", "MANIFEST.tsv")
    }
    assert on_disk == {r["path"] for r in MANIFEST}
    for row in MANIFEST:
        data = (DATA / row["path"]).read_bytes()
        assert len(data) == int(row["bytes"]), row["path"]
        assert hashlib.sha256(data).hexdigest() == row["sha256"], f"{row['path']} was changed"


def test_data_subset_rows_name_origin_licence_and_reason() -> None:
    """Verify that every file has an origin, a path there, a licence and a reason, and every data
    file a pinned commit (git SHA-1 or npm tarball SHA-1)."""
    for row in MANIFEST:
        for column in ("origin", "origin_path", "license", "why"):
            assert row[column].strip() not in ("", "-"), (row["path"], column)
    for row in _data_rows():
        assert re.search(r"\b[0-9a-f]{40}\b", row["origin_commit"]), row["path"]


def test_data_subset_every_source_has_its_licence_texts() -> None:
    """Verify that tests/data/licenses holds exactly the licence texts the data's sources need."""
    origins = {r["origin"] for r in _data_rows()}
    assert origins <= set(LICENCE_FILES), (
        f"no licence texts known for {origins - set(LICENCE_FILES)}"
    )
    needed = set().union(*(LICENCE_FILES[origin] for origin in origins))
    present = {
        r["path"].removeprefix("licenses/") for r in MANIFEST if r["path"].startswith("licenses/")
    }
    assert needed == present
    for name in needed:
        assert (DATA / "licenses" / name).read_text(encoding="utf-8").strip(), name


def test_data_subset_size_stays_under_budget() -> None:
    """Verify that tests/data (README and MANIFEST included) stays under 3 MB."""
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert total < BUDGET_BYTES, f"tests/data is {total:,} bytes"


@CORPUS
def test_make_test_data_check_corpus_copy_is_current() -> None:
    """Verify that tests/data is byte-identical to its corpus sources and its MANIFEST and README
    are what scripts/make_test_data.py writes."""
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "make_test_data.py"),
            "--check",
            "--shared",
            str(corpus_dir()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "folder",
    ["cds-hooks", "fhir-r4", "licenses"],
    ids=["cds-hooks", "fhir-r4", "licenses"],
)
def test_data_subset_folder_is_listed_in_its_readme(folder: str) -> None:
    """Verify that tests/data/README.md describes each folder and lists each of its files."""
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert f"`{folder}/`" in readme
    for row in MANIFEST:
        if row["path"].startswith(folder + "/"):
            name = row["path"].rsplit("/", 1)[1]
            assert f"{name}`" in readme, row["path"]
