"""Where the tests' third-party data is: the curated subset and the optional shared corpus.

- The *subset* is ``tests/data`` (in the repository, always there; see its README): the CDS Hooks
  examples under ``cds-hooks/`` and a slice of the FHIR R4 fixtures under ``fhir-r4/``, with the
  same sub-paths as in the shared folder.
- The *corpus* is the project's shared reference folder: ``../shared`` beside the repository, or
  ``$KETAMINE_CDS_SHARED``. Tests that need it carry the ``corpus`` marker (``@CORPUS``, or
  ``pytestmark = CORPUS`` for a module) and read it through ``corpus_dir()``.

When the corpus is missing, corpus tests are skipped with a message saying how to run them, unless
the corpus is required: ``KETAMINE_CDS_REQUIRE_SHARED=1``, ``CI=true``, or a
``KETAMINE_CDS_SHARED`` naming a folder that does not exist. Then they fail. This module is the one
place that decides; tests/conftest.py only registers its hooks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared"
DATA = Path(__file__).resolve().parent / "data"
SUBSET_CDS_HOOKS = DATA / "cds-hooks"
SUBSET_FHIR_R4 = DATA / "fhir-r4"
CORPUS_CDS_HOOKS = ("reference", "cds-hooks")
CORPUS_FHIR_R4 = ("fixtures", "fhir-r4")

CORPUS = pytest.mark.corpus
"""Marks a test (or, as ``pytestmark``, a module) that needs the shared corpus."""

MISSING_ID = "shared-corpus-missing"
"""Id of the one parameter that stands for a corpus-wide table when the corpus is missing."""


def shared_location() -> Path:
    """Where the corpus should be (it may not exist)."""
    return Path(os.environ.get("KETAMINE_CDS_SHARED") or DEFAULT)


def corpus_available() -> bool:
    return shared_location().is_dir()


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def required_because() -> str | None:
    """Why a missing corpus is an error here, or None when corpus tests may be skipped."""
    if _truthy("KETAMINE_CDS_REQUIRE_SHARED"):
        return f"KETAMINE_CDS_REQUIRE_SHARED={os.environ['KETAMINE_CDS_REQUIRE_SHARED']}"
    if _truthy("CI"):
        return f"CI={os.environ['CI']}"
    if os.environ.get("KETAMINE_CDS_SHARED"):
        return f"KETAMINE_CDS_SHARED={os.environ['KETAMINE_CDS_SHARED']}"
    return None


def missing_message() -> str:
    where = shared_location()
    how = (
        "put the shared reference folder beside the repository (../shared) or set "
        "KETAMINE_CDS_SHARED=/path/to/shared"
    )
    because = required_because()
    if because:
        return (
            f"shared corpus not found at {where}, and it is required ({because}): this corpus "
            f"test cannot run; {how}"
        )
    return (
        f"shared corpus not found at {where}: corpus test skipped; to run the corpus tests, {how}"
    )


def corpus_dir() -> Path:
    """The corpus folder, for a corpus test; skips or fails the test when it is missing."""
    path = shared_location()
    if not path.is_dir():
        if required_because():
            pytest.fail(missing_message(), pytrace=False)
        pytest.skip(missing_message())
    return path


def corpus_subdir(*parts: str) -> Path:
    """A folder of the corpus; a corpus without it is broken, which fails the test."""
    path = corpus_dir().joinpath(*parts)
    if not path.is_dir():
        pytest.fail(f"{path} is missing from the shared corpus", pytrace=False)
    return path


def corpus_params(build: Callable[[Path], Sequence[Any]], ids: Callable[[Any], str]) -> list[Any]:
    """Test parameters built from the corpus at collection time, each marked ``corpus``. When the
    corpus is missing: one placeholder (None) that the marker skips or fails before it is used;
    when it yields nothing: one placeholder that fails (a broken corpus, not an empty table)."""
    if not corpus_available():
        return [pytest.param(None, id=MISSING_ID, marks=CORPUS)]
    values = list(build(shared_location()))
    if not values:
        broken = f"the shared corpus at {shared_location()} holds nothing for this test's table"
        return [
            pytest.param(None, id="shared-corpus-empty", marks=pytest.mark.corpus(broken=broken))
        ]
    return [pytest.param(value, id=ids(value), marks=CORPUS) for value in values]


def read_tsv(path: Path) -> list[dict[str, str]]:
    """The rows of a manifest (tests/data/MANIFEST.tsv, the corpus's fixtures MANIFEST.tsv)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]


# ------------------------------------------------------------------------------------------------
# pytest hooks (registered by tests/conftest.py)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "corpus: needs the shared reference folder (../shared or KETAMINE_CDS_SHARED); skipped "
        "when it is missing, failed instead with KETAMINE_CDS_REQUIRE_SHARED=1 or CI=true",
    )


def pytest_report_header(config: pytest.Config) -> str:
    where = shared_location()
    if corpus_available():
        return f"shared corpus: {where} (corpus tests run)"
    because = required_because()
    if because:
        return f"shared corpus: not found at {where}, required ({because}): corpus tests fail"
    return f"shared corpus: not found at {where}: corpus tests are skipped"


_FAILURE = pytest.StashKey[str]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Corpus tests without a corpus: skipped (a skip marker, reported at the test), or, when the
    corpus is required, left to run into a failure at their call; likewise for a broken corpus."""
    available = corpus_available()
    because = required_because()
    for item in items:
        markers = list(item.iter_markers("corpus"))
        if not markers:
            continue
        if available:
            broken = [m.kwargs["broken"] for m in markers if "broken" in m.kwargs]
            if broken:
                item.stash[_FAILURE] = str(broken[0])
        elif because:
            item.stash[_FAILURE] = missing_message()
        else:
            item.add_marker(pytest.mark.skip(reason=missing_message()))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Fail a corpus test that cannot run (reported as failed, not as a setup error)."""
    message = item.stash.get(_FAILURE, None)
    if message is not None:
        pytest.fail(message, pytrace=False)
