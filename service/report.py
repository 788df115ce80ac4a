"""``ketamine-cds report``: what a CDS committee reads each month.

Per CDS service and card template (``kind``), over a period (the last 30 days by default): cards
shown, accepted, overridden (by override reason), shown without any feedback, the acceptance and
override rates, and the latency of the hook calls that showed them (p50, p95, p99); per service,
every hook call (with or without a card); and the weekly counts, drawn as a chart in the HTML
format (one self-contained file: inline CSS and SVG, nothing loaded from the network).

Definitions:

- a card is *shown* when a hook call (not an explain call) returned it;
- a card's outcome is that of its latest feedback item (by the EHR's ``outcomeTimestamp``, then
  arrival): ``accepted``, ``overridden``, or none (*without feedback*); the three add up to shown;
- acceptance rate = accepted / shown; override rate = overridden / shown. EHRs that never send
  feedback show every card "without feedback": read the rates with the feedback rate beside them.

Only counts leave the store: no patient, no clinician, no free text.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import io
import json
import math
import re
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.store import ReportRows

FORMATS = ("table", "json", "html")
PERIOD = re.compile(r"(?P<amount>\d{1,5})(?P<unit>[hdw])")
UNIT_DAYS = {"h": 1 / 24, "d": 1, "w": 7}
TOP_REASONS = 10


def register(sub: Any) -> None:
    report = sub.add_parser(
        "report", help="the CDS committee report: cards, acceptance, overrides, latency"
    )
    report.add_argument(
        "--since",
        default="30d",
        type=parse_since,
        help="start of the period: 30d, 12w, 48h (before now) or a date, 2026-10-01 (default 30d)",
    )
    report.add_argument(
        "--until",
        type=parse_date,
        default=None,
        help="end of the period (exclusive), a date (default: now)",
    )
    report.add_argument("--format", choices=FORMATS, default="table")
    report.add_argument("--output", help="write to this file instead of standard output")
    report.set_defaults(func=cmd_report)


@dataclass(frozen=True)
class Since:
    text: str
    days: float | None = None
    day: date | None = None

    def resolve(self, now: datetime) -> datetime:
        if self.day is not None:
            return datetime.combine(self.day, datetime.min.time(), UTC)
        assert self.days is not None
        return now - timedelta(days=self.days)


def parse_since(text: str) -> Since:
    match = PERIOD.fullmatch(text.strip())
    if match:
        return Since(text, days=int(match["amount"]) * UNIT_DAYS[match["unit"]])
    return Since(text, day=parse_date(text))


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is neither a period (30d, 12w, 48h) nor a date (2026-10-01)"
        ) from None


@dataclass(frozen=True)
class Percentiles:
    p50: int | None
    p95: int | None
    p99: int | None


def percentiles(histogram: Iterable[tuple[int, int]]) -> Percentiles:
    """Nearest-rank percentiles (whole milliseconds) of a histogram of (value, count)."""
    counts: dict[int, int] = defaultdict(int)
    for value, count in histogram:
        counts[value] += count
    total = sum(counts.values())
    if total == 0:
        return Percentiles(None, None, None)
    ordered = sorted(counts.items())

    def rank(p: float) -> int:
        wanted = max(1, math.ceil(p / 100 * total))
        seen = 0
        for value, count in ordered:
            seen += count
            if seen >= wanted:
                return value
        return ordered[-1][0]

    return Percentiles(rank(50), rank(95), rank(99))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class KindSummary:
    service: str
    kind: str
    shown: int = 0
    accepted: int = 0
    overridden: int = 0
    without_feedback: int = 0
    override_reasons: dict[str, int] = field(default_factory=dict)
    latency_ms: Percentiles = field(default_factory=lambda: Percentiles(None, None, None))

    @property
    def acceptance_rate(self) -> float | None:
        return _rate(self.accepted, self.shown)

    @property
    def override_rate(self) -> float | None:
        return _rate(self.overridden, self.shown)

    @property
    def feedback_rate(self) -> float | None:
        return _rate(self.shown - self.without_feedback, self.shown)


@dataclass
class ServiceSummary:
    service: str
    calls: int = 0
    calls_without_card: int = 0
    latency_ms: Percentiles = field(default_factory=lambda: Percentiles(None, None, None))


@dataclass
class WeekCounts:
    week: date
    """The Monday (UTC) the week starts on."""
    shown: int = 0
    accepted: int = 0
    overridden: int = 0
    without_feedback: int = 0


@dataclass
class Report:
    since: datetime
    until: datetime
    generated_at: datetime
    kinds: list[KindSummary]
    services: list[ServiceSummary]
    weeks: list[WeekCounts]
    unmatched_feedback: int
    totals: KindSummary
    suppressed: list[tuple[str, str, int]] = field(default_factory=list)
    """(service, reason, hook calls whose card was withheld), most first."""
    """Every card of the period (latency over all the calls that showed a card)."""

    def as_json(self) -> dict[str, Any]:
        def kind_json(k: KindSummary) -> dict[str, Any]:
            return {
                "service": k.service,
                "kind": k.kind,
                "shown": k.shown,
                "accepted": k.accepted,
                "overridden": k.overridden,
                "override_reasons": k.override_reasons,
                "without_feedback": k.without_feedback,
                "acceptance_rate": k.acceptance_rate,
                "override_rate": k.override_rate,
                "feedback_rate": k.feedback_rate,
                "latency_ms": asdict(k.latency_ms),
            }

        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "generated_at": self.generated_at.isoformat(),
            "kinds": [kind_json(k) for k in self.kinds],
            "totals": {
                key: value
                for key, value in kind_json(self.totals).items()
                if key not in ("service", "kind")
            },
            "services": [
                {
                    "service": s.service,
                    "calls": s.calls,
                    "calls_without_card": s.calls_without_card,
                    "latency_ms": asdict(s.latency_ms),
                }
                for s in self.services
            ],
            "weeks": [
                {
                    "week": w.week.isoformat(),
                    "shown": w.shown,
                    "accepted": w.accepted,
                    "overridden": w.overridden,
                    "without_feedback": w.without_feedback,
                }
                for w in self.weeks
            ],
            "feedback_for_cards_not_in_the_log": self.unmatched_feedback,
            "withheld": [
                {"service": service, "reason": reason, "calls": calls}
                for service, reason, calls in self.suppressed
            ],
        }


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def build_report(
    rows: ReportRows, since: datetime, until: datetime, generated_at: datetime
) -> Report:
    kinds: dict[tuple[str, str], KindSummary] = {}
    weeks: dict[date, WeekCounts] = {}
    for service, kind, outcome, code, day, count in rows.cards:
        summary = kinds.setdefault((service, kind), KindSummary(service, kind))
        week = weeks.setdefault(_monday(day), WeekCounts(_monday(day)))
        summary.shown += count
        week.shown += count
        if outcome == "accepted":
            summary.accepted += count
            week.accepted += count
        elif outcome == "overridden":
            summary.overridden += count
            week.overridden += count
            reason = code or "(comment only)"
            summary.override_reasons[reason] = summary.override_reasons.get(reason, 0) + count
        else:
            summary.without_feedback += count
            week.without_feedback += count
    latency: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for service, kind, ms, count in rows.kind_latency:
        latency[(service, kind)].append((ms, count))
    totals = KindSummary("all", "all")
    for key, summary in kinds.items():
        summary.latency_ms = percentiles(latency.get(key, []))
        totals.shown += summary.shown
        totals.accepted += summary.accepted
        totals.overridden += summary.overridden
        totals.without_feedback += summary.without_feedback
        for code, count in summary.override_reasons.items():
            totals.override_reasons[code] = totals.override_reasons.get(code, 0) + count
        summary.override_reasons = _top(summary.override_reasons)
    totals.override_reasons = _top(totals.override_reasons)
    totals.latency_ms = percentiles((ms, count) for _, _, ms, count in rows.kind_latency)
    services: dict[str, ServiceSummary] = {}
    service_latency: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for service, ms, calls, without in rows.calls:
        summary_s = services.setdefault(service, ServiceSummary(service))
        summary_s.calls += calls
        summary_s.calls_without_card += without
        service_latency[service].append((ms, calls))
    for service, summary_s in services.items():
        summary_s.latency_ms = percentiles(service_latency[service])
    # Every week of the period, empty ones included, so the chart's time axis has no holes.
    first, last = _monday(since.date()), _monday((until - timedelta(microseconds=1)).date())
    monday = first
    while monday <= last:
        weeks.setdefault(monday, WeekCounts(monday))
        monday += timedelta(days=7)
    return Report(
        since=since,
        until=until,
        generated_at=generated_at,
        kinds=[kinds[k] for k in sorted(kinds)],
        services=[services[s] for s in sorted(services)],
        weeks=[weeks[w] for w in sorted(weeks)],
        unmatched_feedback=rows.unmatched_feedback,
        totals=totals,
        suppressed=sorted(rows.suppressed, key=lambda row: (-row[2], row[0], row[1])),
    )


def _top(reasons: dict[str, int]) -> dict[str, int]:
    ordered = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    top = dict(ordered[:TOP_REASONS])
    rest = sum(count for _, count in ordered[TOP_REASONS:])
    if rest:
        top["(other codes)"] = rest
    return top


# -- output -------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _ms(value: int | None) -> str:
    return "-" if value is None else str(value)


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{code} {count}" for code, count in reasons.items()) or "-"


def _period(report: Report) -> str:
    return (
        f"{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC "
        f"(generated {report.generated_at:%Y-%m-%d %H:%M} UTC)"
    )


def render_table(report: Report) -> str:
    from rich.console import Console
    from rich.table import Column, Table

    console = Console(record=True, width=240, file=io.StringIO())
    console.print(f"[bold]ketamine-cds: cards and feedback[/bold], {_period(report)}")
    cards = Table(
        Column("service", no_wrap=True),
        Column("kind", no_wrap=True),
        "shown",
        "accepted",
        "overridden",
        "no feedback",
        "accept %",
        "override %",
        "override reasons",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        title="Cards by service and kind",
    )
    for k in [*report.kinds, report.totals]:
        cards.add_row(
            k.service,
            k.kind,
            str(k.shown),
            str(k.accepted),
            str(k.overridden),
            str(k.without_feedback),
            _pct(k.acceptance_rate),
            _pct(k.override_rate),
            _reasons(k.override_reasons),
            _ms(k.latency_ms.p50),
            _ms(k.latency_ms.p95),
            _ms(k.latency_ms.p99),
        )
    console.print(cards)
    calls = Table(
        Column("service", no_wrap=True),
        "hook calls",
        "without a card",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        title="Hook calls by service",
    )
    for s in report.services:
        calls.add_row(
            s.service,
            str(s.calls),
            str(s.calls_without_card),
            _ms(s.latency_ms.p50),
            _ms(s.latency_ms.p95),
            _ms(s.latency_ms.p99),
        )
    console.print(calls)
    weeks = Table(
        "week of", "shown", "accepted", "overridden", "no feedback", title="Cards by week"
    )
    for w in report.weeks:
        weeks.add_row(
            w.week.isoformat(),
            str(w.shown),
            str(w.accepted),
            str(w.overridden),
            str(w.without_feedback),
        )
    console.print(weeks)
    withheld = Table(
        Column("service", no_wrap=True), "why withheld", "hook calls", title="Cards withheld"
    )
    for service, reason, count in report.suppressed:
        withheld.add_row(service, reason, str(count))
    console.print(withheld)
    console.print(
        f"Feedback received for cards not in the card log: {report.unmatched_feedback}. "
        "Rates are over cards shown; a card's outcome is its latest feedback."
    )
    return console.export_text()


def render_json(report: Report) -> str:
    return json.dumps(report.as_json(), indent=2) + "\n"


COLOURS = {"accepted": "#2e7d32", "overridden": "#e65100", "without_feedback": "#9e9e9e"}
LABELS = {"accepted": "accepted", "overridden": "overridden", "without_feedback": "no feedback"}


def weekly_chart_svg(weeks: list[WeekCounts]) -> str:
    """Stacked bars of the cards shown each week (accepted, overridden, no feedback), with axes
    and a legend, as inline SVG."""
    width, height = 760, 300
    left, right, top, bottom = 56, 16, 40, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((w.shown for w in weeks), default=0)
    scale_max = _nice_ceiling(peak)
    slot = plot_w / max(len(weeks), 1)
    bar = max(min(slot * 0.7, 48), 2)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Cards shown per week">',
        f'<text x="{left}" y="20" class="title">Cards shown per week, by outcome</text>',
    ]
    for i in range(5):
        value = scale_max * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>'
        )
    for index, week in enumerate(weeks):
        x = left + slot * index + (slot - bar) / 2
        y = top + plot_h
        for part in ("accepted", "overridden", "without_feedback"):
            count = getattr(week, part)
            if not count:
                continue
            h = plot_h * count / scale_max
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[part]}"><title>{week.week:%d %b %Y}: {count} '
                f"{LABELS[part]}</title></rect>"
            )
        if len(weeks) <= 16 or index % math.ceil(len(weeks) / 16) == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                f"{week.week:%d %b}</text>"
            )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 24}" text-anchor="middle">'
        "week starting (Monday, UTC)</text>"
    )
    x = left
    for part in ("accepted", "overridden", "without_feedback"):
        parts.append(
            f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{COLOURS[part]}"/>'
            f'<text x="{x + 14}" y="{height - 5}">{LABELS[part]}</text>'
        )
        x += 120
    parts.append("</svg>")
    return "".join(parts)


def _nice_ceiling(value: int) -> int:
    """A round axis maximum (1, 2, 5 x 10^n) at or above ``value`` (4 at least)."""
    if value <= 4:
        return 4
    magnitude = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #212121; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }
th { background: #f5f5f5; } td.text, th.text { text-align: left; }
tr.total td { font-weight: bold; }
svg text { font-size: 11px; fill: #424242; } svg text.title { font-size: 13px; font-weight: bold; }
svg line.grid { stroke: #e0e0e0; } p.note { color: #616161; font-size: 0.85rem; max-width: 60rem; }
"""


def _cells(values: Iterable[object], text_columns: int = 0) -> str:
    cells = []
    for index, value in enumerate(values):
        css = ' class="text"' if index < text_columns else ""
        cells.append(f"<td{css}>{html.escape(str(value))}</td>")
    return "".join(cells)


def render_html(report: Report) -> str:
    e = html.escape
    kind_head = (
        "<tr><th class='text'>service</th><th class='text'>kind</th><th>shown</th>"
        "<th>accepted</th><th>overridden</th><th>no feedback</th><th>acceptance</th>"
        "<th>override</th><th class='text'>override reasons</th><th>p50 ms</th>"
        "<th>p95 ms</th><th>p99 ms</th></tr>"
    )
    kind_rows = []
    for k in [*report.kinds, report.totals]:
        css = ' class="total"' if k.service == "all" else ""
        values = (
            k.service,
            k.kind,
            k.shown,
            k.accepted,
            k.overridden,
            k.without_feedback,
            _pct(k.acceptance_rate),
            _pct(k.override_rate),
        )
        kind_rows.append(
            f"<tr{css}>{_cells(values, 2)}<td class='text'>{e(_reasons(k.override_reasons))}"
            f"</td>{_cells((_ms(k.latency_ms.p50), _ms(k.latency_ms.p95), _ms(k.latency_ms.p99)))}"
            "</tr>"
        )
    service_rows = [
        "<tr>"
        + _cells(
            (
                s.service,
                s.calls,
                s.calls_without_card,
                _ms(s.latency_ms.p50),
                _ms(s.latency_ms.p95),
                _ms(s.latency_ms.p99),
            ),
            1,
        )
        + "</tr>"
        for s in report.services
    ]
    week_rows = [
        "<tr>"
        + _cells((w.week.isoformat(), w.shown, w.accepted, w.overridden, w.without_feedback), 1)
        + "</tr>"
        for w in report.weeks
    ]
    withheld_rows = [
        "<tr>" + _cells((service, reason, count), 2) + "</tr>"
        for service, reason, count in report.suppressed
    ]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>ketamine-cds: cards and feedback</title>
<style>{HTML_STYLE}</style></head>
<body>
<h1>ketamine-cds: cards and feedback</h1>
<p>{e(_period(report))}</p>
{weekly_chart_svg(report.weeks)}
<h2>Cards by service and kind</h2>
<table>{kind_head}{"".join(kind_rows)}</table>
<p class="note">A card is shown when a hook call returned it (explain calls are not counted). Its
outcome is that of its latest feedback: accepted, overridden, or none ("no feedback").
Acceptance and override rates are over cards shown. Latency is the service's time for the hook
calls that showed the card, in milliseconds.</p>
<h2>Hook calls by service</h2>
<table><tr><th class="text">service</th><th>hook calls</th><th>without a card</th>
<th>p50 ms</th><th>p95 ms</th><th>p99 ms</th></tr>{"".join(service_rows)}</table>
<h2>Cards by week</h2>
<table><tr><th class="text">week of</th><th>shown</th><th>accepted</th><th>overridden</th>
<th>no feedback</th></tr>{"".join(week_rows)}</table>
<h2>Cards withheld</h2>
<table><tr><th class="text">service</th><th class="text">why withheld</th><th>hook calls</th>
</tr>{"".join(withheld_rows)}</table>
<p class="note">A card the assessment called for was not shown because treatment or a referral
was already in progress, or a clinician's feedback on an earlier card said so
(<code>feedback:&lt;reason&gt;</code>, <code>referral-accepted</code>).</p>
<p class="note">Feedback received for cards not in the card log (older than the retention, or
never shown by this deployment): {report.unmatched_feedback}.</p>
</body></html>
"""


RENDERERS = {"table": render_table, "json": render_json, "html": render_html}


async def load_report(database_url: str, since: datetime, until: datetime) -> Report:
    from service.store import Store

    store = Store.open(database_url)
    try:
        await store.prepare()
        rows = await store.report_rows(since, until)
    finally:
        await store.close()
    return build_report(rows, since, until, datetime.now(UTC))


def cmd_report(args: argparse.Namespace) -> int:
    from service.errors import StoreUnavailable
    from service.serving import load_settings
    from service.store import StoreNotMigrated
    from service.store.engine import describe

    settings = load_settings()
    now = datetime.now(UTC)
    since = args.since.resolve(now)
    until = (
        datetime.combine(args.until, datetime.min.time(), UTC) if args.until is not None else now
    )
    if since >= until:
        print("error: --since must be before --until", file=sys.stderr)  # noqa: T201
        return 2
    try:
        report = asyncio.run(load_report(settings.database_url, since, until))
    except StoreNotMigrated as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except StoreUnavailable:
        print(  # noqa: T201
            f"error: the store {describe(settings.database_url)} cannot be reached or opened "
            "(KETAMINE_CDS_DATABASE_URL)",
            file=sys.stderr,
        )
        return 1
    text = RENDERERS[args.format](report)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
