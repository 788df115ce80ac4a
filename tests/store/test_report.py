"""`ketamine-cds report`: the committee's figures from the card log and feedback (on each
backend), percentiles, periods, and the three formats (the HTML one self-contained)."""

from __future__ import annotations

import argparse
import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ehr import cli
from service.report import (
    Percentiles,
    build_report,
    parse_since,
    percentiles,
    render_html,
    weekly_chart_svg,
)
from service.store import ReportRows
from tests.factories import NOW
from tests.store.helpers import app_on, flush_card_log
from tests.store.test_app_store import SAFETY, SCREEN, feedback_body, request_for

PERCENTILE_CASES = {
    "empty": ([], Percentiles(None, None, None)),
    "one-value": ([(7, 1)], Percentiles(7, 7, 7)),
    "hundred-values": ([(v, 1) for v in range(1, 101)], Percentiles(50, 95, 99)),
    "weighted": ([(10, 98), (500, 2)], Percentiles(10, 10, 500)),
    "unsorted-duplicates": ([(30, 1), (10, 1), (30, 1), (20, 1)], Percentiles(20, 30, 30)),
}


@pytest.mark.parametrize(
    ("histogram", "expected"), list(PERCENTILE_CASES.values()), ids=list(PERCENTILE_CASES)
)
def test_report_percentiles_nearest_rank(
    histogram: list[tuple[int, int]], expected: Percentiles
) -> None:
    """Verify the nearest-rank percentiles of a latency histogram."""
    assert percentiles(histogram) == expected


SINCE_CASES = {
    "days": ("30d", datetime(2026, 10, 28, 6, 30, tzinfo=UTC)),
    "weeks": ("2w", datetime(2026, 11, 13, 6, 30, tzinfo=UTC)),
    "hours": ("48h", datetime(2026, 11, 25, 6, 30, tzinfo=UTC)),
    "date": ("2026-10-01", datetime(2026, 10, 1, tzinfo=UTC)),
}


@pytest.mark.parametrize(("text", "expected"), list(SINCE_CASES.values()), ids=list(SINCE_CASES))
def test_report_since_parsed(text: str, expected: datetime) -> None:
    """Verify that --since takes a period before now or a date."""
    assert parse_since(text).resolve(NOW.astimezone(UTC)) == expected


@pytest.mark.parametrize("text", ["30", "thirty days", "2026-13-01", "5y"])
def test_report_since_invalid_refused(text: str) -> None:
    """Verify that an unreadable --since is refused with a message."""
    with pytest.raises(argparse.ArgumentTypeError, match="neither a period"):
        parse_since(text)


def _rows() -> ReportRows:
    monday, later = date(2026, 11, 16), date(2026, 11, 25)
    return ReportRows(
        cards=[
            (SAFETY, "sign-contraindicated", "accepted", None, monday, 3),
            (SAFETY, "sign-contraindicated", "overridden", "cds-not-applicable", later, 4),
            (SAFETY, "sign-contraindicated", "overridden", None, later, 1),
            (SAFETY, "sign-contraindicated", "none", None, later, 2),
            (SCREEN, "screen-referral", "none", None, monday, 5),
        ],
        kind_latency=[
            (SAFETY, "sign-contraindicated", 12, 9),
            (SAFETY, "sign-contraindicated", 80, 1),
        ],
        calls=[(SCREEN, 9, 20, 15), (SCREEN, 40, 1, 1)],
        unmatched_feedback=2,
    )


def test_report_build_counts_rates_reasons_weeks() -> None:
    """Verify the report's figures: shown = accepted + overridden + without feedback, rates over
    shown, overrides by reason, latency percentiles, every week of the period."""
    since = datetime(2026, 11, 1, tzinfo=UTC)
    until = datetime(2026, 11, 28, tzinfo=UTC)
    report = build_report(_rows(), since, until, until)
    safety = next(k for k in report.kinds if k.kind == "sign-contraindicated")
    assert (safety.shown, safety.accepted, safety.overridden, safety.without_feedback) == (
        10,
        3,
        5,
        2,
    )
    assert safety.override_reasons == {"cds-not-applicable": 4, "(comment only)": 1}
    assert (safety.acceptance_rate, safety.override_rate, safety.feedback_rate) == (0.3, 0.5, 0.8)
    assert safety.latency_ms == Percentiles(12, 80, 80)
    [screen_calls] = report.services
    assert (screen_calls.calls, screen_calls.calls_without_card) == (21, 16)
    assert screen_calls.latency_ms == Percentiles(9, 9, 40)
    assert [w.week for w in report.weeks] == [
        date(2026, 10, 26),
        date(2026, 11, 2),
        date(2026, 11, 9),
        date(2026, 11, 16),
        date(2026, 11, 23),
    ]
    by_week = {
        w.week: (w.shown, w.accepted, w.overridden, w.without_feedback) for w in report.weeks
    }
    assert by_week[date(2026, 11, 16)] == (8, 3, 0, 5)
    assert by_week[date(2026, 11, 23)] == (7, 0, 5, 2)
    assert report.totals.shown == 15
    assert report.unmatched_feedback == 2


def test_report_html_self_contained_with_weekly_chart() -> None:
    """Verify that the HTML report is one file that loads nothing (no script, link, image or
    external URL), escapes what the EHR sent, and draws one bar segment per non-zero count."""
    rows = _rows()
    rows.cards.append(
        (SAFETY, "sign-safety", "overridden", "<script>x</script>", date(2026, 11, 25), 1)
    )
    until = datetime(2026, 11, 28, tzinfo=UTC)
    page = render_html(build_report(rows, datetime(2026, 11, 1, tzinfo=UTC), until, until))
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page and "</svg>" in page
    assert "<script" not in page and "&lt;script&gt;" in page
    for banned in ("<link", "<img", "src=", "@import", "url("):
        assert banned not in page
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls == {"http://www.w3.org/2000/svg"}
    chart = weekly_chart_svg(
        build_report(_rows(), datetime(2026, 11, 1, tzinfo=UTC), until, until).weeks
    )
    assert chart.count("<rect") == 4 + 3  # the non-zero segments of two weeks, and the legend


def _populate(store_url: str) -> dict[str, Any]:
    """Three hook calls with cards, feedback on two of them, and a fourth call whose referral
    card the accepted referral withheld."""
    with app_on(store_url) as app:
        # A patient of its own: an accepted referral withholds that patient's next referral card,
        # and the PostgreSQL store outlives one test.
        patient = f"p-{uuid.uuid4().hex[:12]}"
        referral = app.post(
            f"/cds-services/{SCREEN}", json=request_for("trd-two-switches", patient=patient)
        )
        critical = app.post(
            f"/cds-services/{SAFETY}", json=request_for("order-sign-contraindicated")
        )
        silent = app.post(
            f"/cds-services/{SAFETY}", json=request_for("order-sign-ketamine-overdose")
        )
        [referral_card] = referral.json()["cards"]
        [critical_card] = critical.json()["cards"]
        assert len(silent.json()["cards"]) == 1
        accepted = app.post(
            f"/cds-services/{SCREEN}/feedback", json=feedback_body(referral_card, "accepted")
        )
        overridden = app.post(
            f"/cds-services/{SAFETY}/feedback",
            json=feedback_body(
                critical_card,
                "overridden",
                overrideReason={"reason": {"code": "recipient-disagrees-evidence"}},
            ),
        )
        assert accepted.status_code == overridden.status_code == 200
        # The accepted referral withholds the patient's next referral card.
        withheld = app.post(
            f"/cds-services/{SCREEN}", json=request_for("trd-two-switches", patient=patient)
        )
        assert withheld.json()["cards"] == []
        flush_card_log(app)
    return {"referral": referral_card, "critical": critical_card}


def test_report_command_json_counts_from_store(
    store_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify `ketamine-cds report --format json` on a store filled through the API: cards per
    service and kind, accepted, overridden by reason, without feedback, rates."""
    _populate(store_url)
    monkeypatch.setenv("KETAMINE_CDS_DATABASE_URL", store_url)
    capsys.readouterr()
    assert cli.main(["report", "--since", "7d", "--until", "2026-11-28", "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    kinds = {(k["service"], k["kind"]): k for k in body["kinds"]}
    referral = kinds[(SCREEN, "screen-referral")]
    assert (referral["shown"], referral["accepted"], referral["acceptance_rate"]) == (1, 1, 1.0)
    critical = kinds[(SAFETY, "sign-contraindicated")]
    assert critical["overridden"] == 1 and critical["override_rate"] == 1.0
    assert critical["override_reasons"] == {"recipient-disagrees-evidence": 1}
    safety = kinds[(SAFETY, "sign-safety")]
    assert (safety["shown"], safety["without_feedback"], safety["acceptance_rate"]) == (1, 1, 0.0)
    assert body["totals"]["shown"] == 3
    assert {s["service"]: s["calls"] for s in body["services"]} == {SCREEN: 2, SAFETY: 2}
    assert body["withheld"] == [{"service": SCREEN, "reason": "referral-accepted", "calls": 1}]
    assert all(k["latency_ms"]["p50"] is not None for k in body["kinds"])
    assert body["weeks"][-1]["week"] == "2026-11-23" and body["weeks"][-1]["shown"] == 3


@pytest.mark.parametrize("fmt", ["table", "html"])
def test_report_command_table_and_html_written(
    fmt: str, store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Verify that the table and HTML formats name every service and kind shown, and the cards
    withheld and why, to a file."""
    _populate(store_url)
    monkeypatch.setenv("KETAMINE_CDS_DATABASE_URL", store_url)
    output = tmp_path / f"report.{fmt}"
    argv = ["report", "--until", "2026-11-28", "--format", fmt, "--output", str(output)]
    assert cli.main(argv) == 0
    text = output.read_text(encoding="utf-8")
    for name in (SCREEN, SAFETY, "screen-referral", "sign-contraindicated", "sign-safety"):
        assert name in text
    assert "recipient-disagrees-evidence 1" in text
    assert "Cards withheld" in text and "referral-accepted" in text


def test_report_command_since_after_until_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Verify that an empty period is refused (exit 2) with a message."""
    assert cli.main(["report", "--since", "2026-11-20", "--until", "2026-11-01"]) == 2
    assert "--since must be before --until" in capsys.readouterr().err


def test_report_period_excludes_older_cards(
    store_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify that cards shown before the period are not counted."""
    _populate(store_url)
    monkeypatch.setenv("KETAMINE_CDS_DATABASE_URL", store_url)
    capsys.readouterr()
    until = (NOW - timedelta(days=1)).date().isoformat()
    assert cli.main(["report", "--since", "2026-10-01", "--until", until, "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["kinds"] == [] and body["totals"]["shown"] == 0
