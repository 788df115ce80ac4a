"""What the command line prints: the assessment, the cards, the evidence, the seeded patients."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Column, Table

INDICATOR_STYLE = {"info": "blue", "warning": "yellow", "critical": "bold red"}

console = Console()
errors = Console(stderr=True)


def print_assessment(assessment: dict[str, Any]) -> None:
    """The explain answer's assessment as tables: why a card did or did not fire. Members
    without a value are absent from the answer (never null), so every read has a default."""
    reasons = ", ".join(assessment.get("candidate_reasons", [])) or "-"
    console.print(
        f"[bold]Recommendation:[/bold] {assessment.get('recommendation', '?')}   "
        f"[bold]failed adequate regimens:[/bold] {assessment.get('failed_adequate_trials', 0)}   "
        f"[bold]reasons:[/bold] {reasons}"
    )
    if "esketamine_indication" in assessment:
        console.print(
            f"[bold]esketamine label indication:[/bold] {assessment['esketamine_indication']}"
        )
    episode = assessment.get("episode")
    if episode:
        console.print(
            f"[bold]current episode:[/bold] since {episode['start']} ({episode['basis']})"
        )
    trials = assessment.get("trials", [])
    if trials:
        table = Table(
            "regimen",
            "mg/day",
            "weeks (adequate)",
            "from",
            "to",
            "outcome",
            "why",
            "evidence",
            title="Antidepressant regimens",
            show_lines=False,
        )
        for trial in trials:
            dose = trial.get("max_daily_dose_mg")
            kind = trial.get("kind", "monotherapy")
            name = trial["ingredient"] + ("" if kind == "monotherapy" else f" ({kind})")
            if trial.get("episode") == "previous":
                name += " [previous episode]"
            table.add_row(
                name,
                "?" if dose is None else f"{dose:g}",
                f"{trial['weeks']:g} ({trial.get('adequate_weeks', 0):g})",
                trial["start"],
                trial.get("end") or "now",
                trial["outcome"],
                trial["why"],
                ", ".join(trial["evidence"][:3]) + (" ..." if len(trial["evidence"]) > 3 else ""),
            )
        console.print(table)
    findings = [*assessment.get("contraindications", []), *assessment.get("cautions", [])]
    if findings:
        table = Table("finding", "severity", "what was found", "source", title="Findings")
        for finding in findings:
            table.add_row(
                finding["id"], finding.get("severity", "?"), finding["detail"], finding["source"]
            )
        console.print(table)
    for line in assessment.get("context", []):
        console.print(f"[cyan]context:[/cyan] {line}")
    for progress in assessment.get("in_progress", []):
        until = f" (counts until {progress['until']})" if "until" in progress else ""
        console.print(f"[cyan]in progress:[/cyan] {progress['id']}: {progress['detail']}{until}")
    suppression = assessment.get("suppression")
    if suppression:
        until = f" until {suppression['until']}" if "until" in suppression else ""
        console.print(
            f"[magenta]card withheld[/magenta] ({', '.join(suppression.get('withheld', []))}): "
            f"{suppression['reason']}{until}: {suppression['detail']}"
        )
    if "suppression_lifted" in assessment:
        console.print(f"[magenta]card shown again:[/magenta] {assessment['suppression_lifted']}")
    for gap in assessment.get("data_gaps", []):
        console.print(f"[yellow]data gap:[/yellow] {gap}")


def print_contraindication_evidence(assessment: dict[str, Any]) -> None:
    rows = [c for c in assessment.get("contraindications") or [] if c.get("evidence")]
    if rows:
        table = Table("contraindication", "evidence", title="Contraindication evidence")
        for item in rows:
            table.add_row(item["id"], ", ".join(item["evidence"]))
        console.print(table)
    reasons = assessment.get("candidate_reason_evidence") or {}
    if reasons:
        table = Table("candidate reason", "evidence", title="Candidate reason evidence")
        for reason, evidence in reasons.items():
            table.add_row(reason, ", ".join(dict.fromkeys(evidence)) or "-")
        console.print(table)


def print_cards(cards: list[dict[str, Any]], title: str = "") -> None:
    if not cards:
        console.print(f"[dim]{title}no card (nothing to act on)[/dim]")
        return
    for card in cards:
        style = INDICATOR_STYLE.get(card.get("indicator", ""), "white")
        body = Markdown(card.get("detail", ""))
        suggestions = [s["label"] for s in card.get("suggestions", [])]
        subtitle = ("suggestion: " + "; ".join(suggestions)) if suggestions else None
        console.print(
            Panel(
                body,
                title=f"{title}[{style}]{card['indicator'].upper()}[/{style}] {card['summary']}",
                subtitle=subtitle,
                border_style=style,
                title_align="left",
            )
        )


def print_json_text(text: str) -> None:
    """A JSON body pretty-printed (or as it is, if it is not JSON)."""
    try:
        console.print_json(text)
    except ValueError:
        console.print(text, markup=False, highlight=False)


def _expected_text(entry: dict[str, Any]) -> tuple[str, str, str]:
    """Recommendation, failed count and cards as index.json states them. An empty indicator list
    means "no card" only for not-a-candidate and for the order hooks; for other patient-view
    scenarios the indicator is not pinned (a card is expected: shown as "card")."""
    expected = entry["expected"]
    indicators = expected.get("card_indicators") or []
    recommendation = str(expected.get("recommendation") or "?")
    if indicators:
        cards = ", ".join(indicators)
    elif recommendation == "not-a-candidate" or entry["service"] != "trd-ketamine-screen":
        cards = "none"
    else:
        cards = "card"
    failed = expected.get("failed_adequate_trials")
    return recommendation, "?" if failed is None else str(failed), cards


def print_seeded(rows: list[tuple[str, str, dict[str, Any]]], title: str) -> None:
    """Seeded patients as (patient id, hook, index entry) and what each should produce (a table
    when the terminal is wide)."""
    lines = [(pid, hook, *_expected_text(entry), entry["description"]) for pid, hook, entry in rows]
    if console.width < 120:
        console.print(f"[bold]{title}[/bold]")
        for patient_id, hook, recommendation, failed, cards, description in lines:
            console.print(
                f"[bold]{patient_id}[/bold] ({hook}): {recommendation}, {failed} failed, "
                f"cards: {cards}"
            )
            console.print(f"    [dim]{description}[/dim]")
        return
    table = Table(
        Column("patient id", no_wrap=True),
        Column("hook", no_wrap=True),
        Column("should produce", no_wrap=True),
        Column("failed", justify="right"),
        Column("cards", no_wrap=True),
        Column("scenario", ratio=1),
        box=box.SIMPLE,
        pad_edge=False,
        title=title,
    )
    for line in lines:
        table.add_row(*line)
    console.print(table)
