"""``ketamine-cds seed --fhir-server URL [--token T] [--prefix P] [--only ID] [--no-roll] [--json]``

Loads the 50 scenario patients (examples/patients) by transaction, dates moved to today, and
prints each patient id with what it should produce.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ehr.commands.options import add_no_roll
from ehr.commands.run import run
from ehr.date_roller import today
from ehr.errors import EhrError
from ehr.fhir_http import fhir_client
from ehr.output import console, errors, print_seeded
from ehr.scenarios import normal_prefix, scenario_index
from ehr.seeding import seed
from ehr.services import local_service


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


async def _seed_command(args: argparse.Namespace) -> int:
    prefix = normal_prefix(args.prefix or "")
    entries = scenario_index()
    if args.only:
        wanted = set(args.only)
        entries = [e for e in entries if e["patient_id"] in wanted]
        if not entries:
            raise EhrError(f"no scenario named {', '.join(sorted(wanted))}")
    day = today() if args.roll else None
    with _progress() as progress:
        task = progress.add_task(
            f"loading {len(entries)} patients into {args.fhir_server}", total=len(entries)
        )
        async with fhir_client(args.token) as fhir:
            results = await seed(
                fhir,
                args.fhir_server,
                entries,
                today=day,
                prefix=prefix,
                on_done=lambda _r: progress.advance(task),
            )
    if args.json:
        console.print_json(
            json.dumps(
                [
                    {
                        "patient_id": r.patient_id,
                        "service": r.entry["service"],
                        "description": r.entry["description"],
                        "draft_orders": len(r.entry.get("draft_orders") or []),
                        "expected": r.entry["expected"],
                    }
                    for r in results
                ]
            )
        )
        return 0
    title = f"{len(results)} scenario patients in {args.fhir_server}" + (
        f" (dates moved to {day.isoformat()})" if day else ""
    )
    rows = [(r.patient_id, local_service(r.entry["service"])["hook"], r.entry) for r in results]
    print_seeded(rows, title)
    first = results[0].patient_id if results else "trd-two-switches"
    console.print(
        f"Try: [bold]ketamine-cds invoke patient-view --fhir-server {args.fhir_server} "
        f"--patient {first}[/bold]  (order hooks use the scenario's draft orders)"
    )
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    return run(_seed_command(args))


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "seed", help="load the scenario patients into a FHIR server (dates moved to today)"
    )
    parser.add_argument("--fhir-server", required=True, help="FHIR R4 base URL")
    parser.add_argument("--token", help="bearer token for the FHIR server")
    parser.add_argument(
        "--prefix", default="", help="put PREFIX- before every id (a shared public server)"
    )
    parser.add_argument(
        "--only", action="append", metavar="PATIENT", help="load only this scenario (repeatable)"
    )
    add_no_roll(parser, "keep the dates as written (relative to Bundle.timestamp)")
    parser.add_argument("--json", action="store_true", help="print the patients as JSON")
    parser.set_defaults(func=cmd_seed)
