"""The knowledge files: they load, they cite, and they are what the build script makes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hooks.rules.knowledge import KnowledgeFileError, load_knowledge
from tests.shared_data import CORPUS, corpus_dir

KNOWLEDGE = Path(__file__).resolve().parents[3] / "hooks" / "rules" / "knowledge"
ROOT = Path(__file__).resolve().parents[3]


def test_knowledge_files_load_with_version(knowledge) -> None:
    """Verify that the packaged knowledge loads and carries a rule-set version."""
    assert knowledge.ruleset_version
    assert knowledge.thresholds.min_adequate_weeks.value == 6
    assert knowledge.ingredients["venlafaxine"].min_daily_dose_mg == 150


@CORPUS
def test_knowledge_files_match_build_script() -> None:
    """Verify that the committed knowledge files are what scripts/build_knowledge.py makes from the
    VSAC value sets and clinical tables of the shared corpus."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "build_knowledge.py"),
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
    ("file", "mutate", "message"),
    [
        ("policy.json", lambda d: d["thresholds"].pop("min_adequate_weeks"), "min_adequate_weeks"),
        ("codes.json", lambda d: d["lists"].pop("psychosis"), "lacks code lists"),
        (
            "drugs.json",
            lambda d: d["ingredients"][0].update(dose_source="NOPE"),
            "undefined source tags",
        ),
        ("policy.json", lambda d: d.update(version="x"), "policy.json is invalid"),
    ],
    ids=["missing-threshold", "missing-code-list", "undefined-source-tag", "bad-schema"],
)
def test_load_knowledge_bad_file_names_the_problem(
    tmp_path: Path, file: str, mutate, message: str
) -> None:
    """Verify that a broken knowledge file stops start-up with a message naming the problem."""
    for name in ("drugs.json", "codes.json", "policy.json"):
        data = json.loads((KNOWLEDGE / name).read_text())
        if name == file:
            mutate(data)
        (tmp_path / name).write_text(json.dumps(data))
    with pytest.raises(KnowledgeFileError, match=message):
        load_knowledge(tmp_path)


def test_load_knowledge_missing_file_is_an_error(tmp_path: Path) -> None:
    """Verify that a missing knowledge file is reported by name."""
    with pytest.raises(KnowledgeFileError, match="missing"):
        load_knowledge(tmp_path)


def test_required_code_lists_name_every_list_the_code_reads() -> None:
    """Verify that every code list named in hooks/ is required at start-up and exists, so a
    knowledge file without it stops the service instead of failing a hook call."""
    import re

    from hooks.rules.knowledge import REQUIRED_CODE_LISTS

    lists = set(json.loads((KNOWLEDGE / "codes.json").read_text(encoding="utf-8"))["lists"])
    named: set[str] = set()
    for path in (ROOT / "hooks").rglob("*.py"):
        named |= {m for m in re.findall(r'"([a-z0-9-]+)"', path.read_text()) if m in lists}
    assert named <= set(REQUIRED_CODE_LISTS), sorted(named - set(REQUIRED_CODE_LISTS))
    assert set(REQUIRED_CODE_LISTS) <= lists, sorted(set(REQUIRED_CODE_LISTS) - lists)
