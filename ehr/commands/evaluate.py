"""``ketamine-cds evaluate PATH [--patient ID] [--json] [--no-roll]``: assess a Bundle file.

The Bundle is loaded into an in-memory FHIR server, and the patient-view service is called the
way an EHR calls it: the prefetch its discovery templates ask for, sent to the app in this process
(development mode) on its explain endpoint. Prints the trials with their evidence, the
contraindications, the data gaps and the cards.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ehr.bundles import patient_id_of, stored_resources
from ehr.commands.options import add_no_roll
from ehr.commands.run import run
from ehr.date_roller import roll_dates, today
from ehr.errors import EhrError
from ehr.fhir_http import response_problem
from ehr.hook_request import CdsClient
from ehr.output import console, errors, print_assessment, print_cards
from ehr.service_client import call_service, service_client
from ehr.services import local_services, pick_service

OFFLINE = CdsClient(user="Practitioner/offline", fhir_server="http://offline.ehr.invalid/fhir")
"""The EHR: its FHIR server is in memory (the base URL appears only in the entries' fullUrl)."""


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


async def _explain(service_id: str, body: dict[str, Any]) -> dict[str, Any]:
    async with service_client(None) as client:
        response = await call_service(client, service_id, body, explain=True)
    if response.status_code != 200:
        raise EhrError(f"the service answered {response_problem(response)}")
    answer: dict[str, Any] = response.json()
    return answer


async def _print_explained(service_id: str, body: dict[str, Any], as_json: bool) -> int:
    answer = await _explain(service_id, body)
    if as_json:
        console.print_json(
            json.dumps({"cards": answer["cards"], "assessment": answer["assessment"]})
        )
        return 0
    assessment = answer["assessment"]
    console.rule(
        f"Patient {body['context']['patientId']}  (rule set {assessment['ruleset_version']})"
    )
    print_assessment(assessment)
    print_cards(answer["cards"], "patient-view: ")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    bundle = _load_json(Path(args.path))
    if args.roll:
        bundle = roll_dates(bundle, today())
    resources = stored_resources(bundle)
    patient_id = args.patient or patient_id_of(resources)
    if patient_id is None:
        errors.print("[red]error:[/red] the Bundle has no Patient; pass --patient ID")
        return 2
    service = pick_service(local_services(), "patient-view")
    body = OFFLINE.request(service, resources, patient_id)
    return run(_print_explained(service["id"], body, args.json))


def register(sub: Any) -> None:
    evaluate = sub.add_parser("evaluate", help="assess a patient Bundle file offline")
    evaluate.add_argument("path")
    evaluate.add_argument("--patient", help="Patient id when the Bundle holds several")
    evaluate.add_argument("--json", action="store_true", help="print cards and assessment as JSON")
    add_no_roll(evaluate, "do not move dates to today (Bundle.timestamp anchors them)")
    evaluate.set_defaults(func=cmd_evaluate)
