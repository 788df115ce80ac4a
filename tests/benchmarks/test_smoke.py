"""The benchmark (``python -m benchmarks``) at tiny sizes, so that it never rots.

The real benchmark takes minutes and never runs in the test suite; this runs every stage (in
process, sweep, uvicorn with one and two workers, RSS, no prefetch against the FHIR server, the
stores with a JWT on every call) at tiny sizes in a subprocess and checks what it writes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_smoke_run_writes_report_json_and_plot(tmp_path: Path) -> None:
    """Verify that `python -m benchmarks --smoke` runs every stage and writes the report."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "performance.json").read_text(encoding="utf-8"))
    for stage in ("inprocess", "sweep", "http", "rss", "fhir", "store"):
        assert results.get(stage), f"stage {stage} missing: {sorted(results)}"
    hooks = {"trd-ketamine-screen", "trd-antidepressant-order", "ketamine-order-safety"}
    stores = {entry["store"]: entry for entry in results["store"]["stores"]}
    # PostgreSQL when the machine has it (always under CI=true: .ci/run starts it).
    expected = {"SQLite", "PostgreSQL"} if os.environ.get("CI") == "true" else {"SQLite"}
    assert expected <= set(stores), results["store"].get("postgres_skipped")
    store_runs = [e[k] for e in stores.values() for k in ("inprocess", "inprocess_no_jwt")]
    for entry in stores.values():
        for workers in ("1", "2"):
            runs = entry["http"][workers]
            # Every call carried a new token; a replayed or refused one would be an error.
            assert {r["requests"] > 0 and r["errors"] == 0 for r in runs.values()} == {True}
    for run in store_runs:
        assert set(run["services"]) == {"trd-ketamine-screen"}
        assert run["services"]["trd-ketamine-screen"]["errors"] == 0
    for run in results["inprocess"] + results["sweep"]:
        assert set(run["services"]) == hooks
        for measured in run["services"].values():
            assert measured["errors"] == 0
            assert measured["latency_ms"]["p50"] > 0
            assert measured["cards"] == 1  # every hook has something to say about these charts
    for workers in ("1", "2"):
        runs = results["http"][workers]["tiny"]["trd-ketamine-screen"]
        assert {r["requests"] > 0 and r["errors"] == 0 for r in runs.values()} == {True}
    assert results["rss"]["errors"] == 0 and results["rss"]["points"][-1]["rss_mb"]
    assert len(results["rss_two_workers"]) == 2
    for run in results["fhir"]["runs"]:
        for measured in run["hooks"].values():
            assert measured["requests_per_call"] >= 6
            assert measured["wall_ms"]["p50"] >= measured["slowest_request_ms"]["p50"]
    text = (tmp_path / "performance.md").read_text(encoding="utf-8")
    for heading in (
        "## Machine",
        "## Targets",
        "## Server-side latency",
        "## End-to-end",
        "## Scaling with chart size",
        "## Memory",
        "## No prefetch",
        "## With the store and a JWT on every call",
    ):
        assert heading in text
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "performance.png").stat().st_size > 1000
