"""``ketamine-cds``: run the service, evaluate a Bundle offline, or show a demo.

ketamine-cds serve [--host 127.0.0.1] [--port 8080] [--dev] [--workers N]   (service/serving.py)
ketamine-cds evaluate PATH [--patient ID] [--json]
ketamine-cds demo [--host 127.0.0.1] [--port 8080] [--no-serve]
ketamine-cds db upgrade | db current                                       (service/db_cli.py)
ketamine-cds report [--since 30d] [--format table|json|html]               (service/report.py)
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table

from service import db_cli, report, serving

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = next(
    (
        p
        for p in (ROOT / "examples" / "patients", Path.cwd() / "examples" / "patients")
        if p.is_dir()
    ),
    ROOT / "examples" / "patients",
)
INDICATOR_STYLE = {"info": "blue", "warning": "yellow", "critical": "bold red"}

console = Console()
errors = Console(stderr=True)


def _settings(host: str, dev: bool) -> Any:
    from pydantic import ValidationError

    from service.settings import Settings

    overrides: dict[str, Any] = {"bind_host": host}
    if dev:
        overrides["allow_unauthenticated"] = True
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            errors.print(f"[red]configuration error:[/red] {error['msg']}")
        raise SystemExit(2) from exc


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        errors.print(f"[red]error:[/red] {path} does not exist")
        raise SystemExit(2) from None
    except json.JSONDecodeError as exc:
        errors.print(f"[red]error:[/red] {path} is not JSON ({exc.msg} at line {exc.lineno})")
        raise SystemExit(2) from exc
    if not isinstance(data, dict) or "resourceType" not in data:
        errors.print(f"[red]error:[/red] {path} is not a FHIR resource or Bundle")
        raise SystemExit(2)
    return data


def _today() -> date:
    return datetime.now(UTC).date()


def _hook_input(bundle: dict[str, Any], patient_id: str) -> Any:
    from fhir_mappers.collect import bundle_resources
    from hooks.base import HookInput
    from hooks.rules.knowledge import default_knowledge
    from service.settings import get_settings

    return HookInput(
        context={"patientId": patient_id, "userId": "Practitioner/offline"},
        resources={"bundle": bundle_resources(bundle)},
        gaps=(),
        now=datetime.now(UTC),
        knowledge=default_knowledge(),
        lookback_weeks=get_settings().episode_lookback_weeks,
    )


def print_assessment(assessment: dict[str, Any]) -> None:
    console.print(
        f"[bold]Recommendation:[/bold] {assessment['recommendation']}   "
        f"[bold]failed adequate trials:[/bold] {assessment['failed_adequate_trials']}   "
        f"[bold]reasons:[/bold] {', '.join(assessment['candidate_reasons']) or '-'}"
    )
    if assessment.get("trials", []):
        table = Table(
            "ingredient",
            "mg/day",
            "weeks",
            "from",
            "to",
            "outcome",
            "why",
            "evidence",
            title="Antidepressant trials (current episode)",
            show_lines=False,
        )
        for trial in assessment.get("trials", []):
            dose = trial.get("max_daily_dose_mg")
            table.add_row(
                trial["ingredient"],
                "?" if dose is None else f"{dose:g}",
                f"{trial['weeks']:g}",
                trial["start"],
                trial.get("end") or "now",
                trial["outcome"],
                trial["why"],
                ", ".join(trial["evidence"][:3]) + (" ..." if len(trial["evidence"]) > 3 else ""),
            )
        console.print(table)
    if assessment.get("contraindications", []):
        table = Table("contraindication", "what was found", "source", title="Contraindications")
        for ci in assessment.get("contraindications", []):
            table.add_row(ci["id"], ci["detail"], ci["source"])
        console.print(table)
    for gap in assessment.get("data_gaps", []):
        console.print(f"[yellow]data gap:[/yellow] {gap}")


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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from hooks import trd_ketamine_screen
    from hooks.cards import response_json
    from service.date_roller import roll_dates
    from service.local_ehr import patient_id_of

    bundle = _load_json(Path(args.path))
    if bundle.get("resourceType") != "Bundle":
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": bundle}]}
    if args.roll:
        bundle = roll_dates(bundle, _today())
    patient_id = args.patient or patient_id_of(bundle)
    if patient_id is None:
        errors.print("[red]error:[/red] the Bundle has no Patient; pass --patient ID")
        return 2
    result = trd_ketamine_screen.evaluate(_hook_input(bundle, patient_id))
    body = response_json(result.cards)
    body["assessment"] = result.assessment.as_json()
    if args.json:
        console.print_json(json.dumps(body))
        return 0
    console.rule(f"Patient {patient_id}  (rule set {result.assessment.ruleset_version})")
    print_assessment(body["assessment"])
    print_cards(body["cards"], "patient-view: ")
    return 0


DEMO = (
    "trd-two-switches",
    "trd-with-psychosis-history",
    "unknown-doses",
    "one-failed-trial",
    "order-select-after-trd",
    "order-sign-ketamine-overdose",
    "order-sign-contraindicated",
)


def _build_requests(discovery: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    from service.date_roller import roll_dates
    from service.local_ehr import prefetch_from_bundle

    services = {s["id"]: s for s in discovery["services"]}
    index = json.loads((EXAMPLES / "index.json").read_text(encoding="utf-8"))
    today = _today()
    requests = []
    for entry in index:
        if entry["file"][: -len(".json")] not in DEMO:
            continue
        bundle = roll_dates(_load_json(EXAMPLES / entry["file"]), today)
        service = services[entry["service"]]
        context: dict[str, Any] = {"userId": "Practitioner/demo", "patientId": entry["patient_id"]}
        if service["hook"] in ("order-select", "order-sign"):
            drafts = [
                roll_dates({"timestamp": bundle_stamp(entry), **d}, today)
                for d in entry["draft_orders"]
            ]
            for draft in drafts:
                draft.pop("timestamp", None)
            context["draftOrders"] = {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": d} for d in drafts],
            }
            if service["hook"] == "order-select":
                context["selections"] = [f"MedicationRequest/{d['id']}" for d in drafts]
        body = {
            "hook": service["hook"],
            "hookInstance": str(uuid.uuid4()),
            "context": context,
            "prefetch": prefetch_from_bundle(bundle, service["prefetch"], context),
        }
        requests.append((entry["description"], service["id"], body))
    return requests


def bundle_stamp(entry: dict[str, Any]) -> str:
    bundle = json.loads((EXAMPLES / entry["file"]).read_text(encoding="utf-8"))
    return str(bundle["timestamp"])


def cmd_demo(args: argparse.Namespace) -> int:
    import httpx
    import uvicorn

    from service.logging_setup import configure_logging
    from service.main import create_app

    settings = _settings(args.host, dev=True)
    configure_logging("WARNING")
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host=args.host, port=args.port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://{args.host}:{args.port}"
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            errors.print(
                f"[red]error:[/red] the service could not start on {base} "
                "(is the port in use? try --port 8081)"
            )
            return 1
        time.sleep(0.05)
    with httpx.Client(base_url=base, timeout=10) as client:
        discovery = client.get("/cds-services").json()
        console.rule(f"ketamine-cds demo: {len(discovery['services'])} CDS services at {base}")
        for service in discovery["services"]:
            console.print(
                f"  [bold]{service['id']}[/bold] on [cyan]{service['hook']}[/cyan]: "
                f"{service['title']}"
            )
        for description, service_id, body in _build_requests(discovery):
            console.rule(f"[bold]{service_id}[/bold]: {description}")
            started = time.perf_counter()
            response = client.post(f"/cds-services/{service_id}", json=body)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                errors.print(f"[red]HTTP {response.status_code}[/red] {response.text}")
                continue
            print_cards(response.json()["cards"])
            console.print(f"[dim]answered in {elapsed:.0f} ms over HTTP[/dim]")
    if args.no_serve:
        server.should_exit = True
        thread.join(timeout=5)
        return 0
    console.rule("The service keeps running (development mode, no JWT); Ctrl-C stops it")
    console.print(f"  discovery:  curl {base}/cds-services")
    console.print(f"  explain:    ketamine-cds evaluate {EXAMPLES / 'trd-two-switches.json'}")
    try:
        while thread.is_alive():
            thread.join(timeout=0.5)
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(timeout=5)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ketamine-cds", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serving.register(sub)  # serve [--workers N]
    evaluate = sub.add_parser("evaluate", help="assess a patient Bundle file offline")
    evaluate.add_argument("path")
    evaluate.add_argument("--patient", help="Patient id when the Bundle holds several")
    evaluate.add_argument("--json", action="store_true", help="print cards and assessment as JSON")
    evaluate.add_argument(
        "--no-roll",
        dest="roll",
        action="store_false",
        help="do not move dates to today (Bundle.timestamp anchors them)",
    )
    evaluate.set_defaults(func=cmd_evaluate)
    demo = sub.add_parser(
        "demo", help="start the service and fire the three hooks at example patients"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--no-serve", action="store_true", help="exit after the demo calls")
    demo.set_defaults(func=cmd_demo)
    db_cli.register(sub)  # db upgrade, db current
    report.register(sub)  # report
    for module in _EXTRA_COMMANDS:
        import importlib

        importlib.import_module(module).register(sub)
    return parser


_EXTRA_COMMANDS: tuple[str, ...] = ("service.keys_cli", "service.integration_cli")
"""Modules that add subcommands with ``register(subparsers)``."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
