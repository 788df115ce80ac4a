"""``ketamine-cds invoke | explain HOOK-OR-SERVICE --fhir-server URL --patient ID``

    [--draft-order FILE] [--prefetch | --no-prefetch] [--service-url URL] [--token T] [--json]

Acts as a CDS client (an EHR): reads discovery, fills the prefetch from the FHIR server (or sends
only fhirServer), calls the service and prints the cards; ``explain`` prints the assessment as
well. Without ``--service-url`` the service runs in this process, in development mode, allowed to
call the given FHIR server; with it, a running service is called (add ``--jwt-key``/``--jwt-iss``
unless it runs in development mode).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.markup import escape

from ehr.commands.options import add_no_roll
from ehr.commands.run import run
from ehr.date_roller import today
from ehr.errors import EhrError
from ehr.fhir_http import response_problem
from ehr.output import (
    console,
    errors,
    print_assessment,
    print_cards,
    print_contraindication_evidence,
    print_json_text,
)
from ehr.scenarios import find_scenario, scenario_draft_orders
from ehr.service_client import Invocation, Jwt, invoke, service_client


def _draft_orders_from(paths: list[str]) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    for name in paths:
        path = Path(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise EhrError(f"cannot read draft order {path}: {exc}") from exc
        items = data if isinstance(data, list) else [data]
        for item in items:
            if isinstance(item, dict) and item.get("resourceType") == "Bundle":
                orders.extend(e["resource"] for e in item.get("entry") or [] if "resource" in e)
            elif isinstance(item, dict) and "resourceType" in item:
                orders.append(item)
            else:
                raise EhrError(f"{path} holds no FHIR resource or Bundle")
    return orders


def _jwt_from(args: argparse.Namespace) -> Jwt | None:
    if not args.jwt_key:
        return None
    if not args.jwt_iss:
        raise EhrError("--jwt-key needs --jwt-iss (the issuer the service trusts)")
    try:
        key = json.loads(Path(args.jwt_key).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EhrError(f"cannot read the private key {args.jwt_key}: {exc}") from exc
    return Jwt(key, args.jwt_iss)


def _print_invocation(invocation: Invocation, args: argparse.Namespace, explain: bool) -> None:
    body = invocation.response.json()
    service = invocation.service
    mode = (
        "prefetch filled from the FHIR server"
        if invocation.read
        else "no prefetch (the service queries the FHIR server)"
    )
    where = args.service_url or "in-process service (development mode)"
    console.rule(f"[bold]{service['id']}[/bold] ({service['hook']}) for Patient/{args.patient}")
    console.print(f"[dim]{where}; {mode}[/dim]")
    if invocation.read:
        pages = ", ".join(f"{k} {n}p" for k, n in invocation.read.pages.items())
        console.print(f"[dim]prefetch: {invocation.read.requests} FHIR requests ({pages})[/dim]")
        for problem in invocation.read.problems:
            console.print(f"[yellow]prefetch problem:[/yellow] {escape(problem)}")
    if explain:
        print_assessment(body["assessment"])
        print_contraindication_evidence(body["assessment"])
        explanation = body.get("explanation") or {}
        fetched = explanation.get("fetched_by_service") or []
        counts = explanation.get("resources_by_key") or {}
        console.print(
            f"[dim]queried by the service: {', '.join(fetched) or 'nothing'}; resources: "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
            + "[/dim]"
        )
    print_cards(body["cards"], f"{service['hook']}: ")
    console.print(f"[dim]answered HTTP 200 in {invocation.elapsed_ms:.0f} ms[/dim]")


async def _invoke_command(args: argparse.Namespace, explain: bool) -> int:
    drafts = _draft_orders_from(args.draft_order or [])
    if not drafts:
        scenario = find_scenario(args.patient)
        if scenario is not None:
            drafts = scenario_draft_orders(
                scenario, today=today() if args.roll else None, patient_id=args.patient
            )
    jwt = _jwt_from(args)
    with errors.status("starting") as status:
        async with service_client(
            args.service_url, fhir_server=args.fhir_server, fhir_timeout=args.fhir_timeout
        ) as client:
            invocation = await invoke(
                client,
                args.hook_or_service,
                fhir_server=args.fhir_server,
                patient_id=args.patient,
                token=args.token,
                draft_orders=drafts,
                prefetch=args.prefetch,
                explain=explain,
                jwt=jwt,
                status=lambda text: status.update(text),
            )
    response = invocation.response
    if response.status_code != 200:
        problem = escape(response_problem(response))
        errors.print(f"[red]the service answered {problem}[/red]", soft_wrap=True)
        if args.json:
            print_json_text(response.text)
        return 1
    if args.json:
        print_json_text(response.text)
        return 0
    _print_invocation(invocation, args, explain)
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    return run(_invoke_command(args, explain=False))


def cmd_explain(args: argparse.Namespace) -> int:
    return run(_invoke_command(args, explain=True))


def _call_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "hook_or_service",
        metavar="HOOK-OR-SERVICE",
        help="patient-view, order-select, order-sign, or a service id",
    )
    parser.add_argument("--fhir-server", required=True, help="FHIR R4 base URL")
    parser.add_argument("--patient", required=True, help="Patient id on that server")
    parser.add_argument(
        "--token", help="bearer token for the FHIR server (sent as fhirAuthorization)"
    )
    parser.add_argument(
        "--draft-order",
        action="append",
        metavar="FILE",
        help="draft order(s) for order-select/order-sign: a resource, list or Bundle "
        "(default for scenario patients: the scenario's draft orders)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--prefetch",
        dest="prefetch",
        action="store_true",
        default=True,
        help="fill the prefetch from the FHIR server, as an EHR would (default)",
    )
    mode.add_argument(
        "--no-prefetch",
        dest="prefetch",
        action="store_false",
        help="send no prefetch: the service queries the FHIR server itself",
    )
    parser.add_argument("--service-url", help="a running service (default: run it in this process)")
    parser.add_argument(
        "--jwt-key", help="private JWK (from `keys generate`) to sign calls to --service-url"
    )
    parser.add_argument("--jwt-iss", help="issuer for --jwt-key, as the service trusts it")
    parser.add_argument(
        "--fhir-timeout",
        type=float,
        default=15.0,
        help="in-process service: seconds allowed per FHIR request (default 15)",
    )
    add_no_roll(parser, "scenario draft orders keep their written dates")
    parser.add_argument("--json", action="store_true", help="print the service's JSON answer")


def register(sub: Any) -> None:
    invoke_parser = sub.add_parser(
        "invoke", help="call a CDS service for a patient on a FHIR server, as an EHR would"
    )
    _call_options(invoke_parser)
    invoke_parser.set_defaults(func=cmd_invoke)
    explain_parser = sub.add_parser(
        "explain", help="like invoke, and print the assessment: trials, contraindications, gaps"
    )
    _call_options(explain_parser)
    explain_parser.set_defaults(func=cmd_explain)
