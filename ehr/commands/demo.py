"""``ketamine-cds demo [--host 127.0.0.1] [--port 8080] [--no-serve]``: start the service and fire
the three hooks at example patients, as an EHR holding their records would."""

from __future__ import annotations

import argparse
import secrets
import threading
import time
from typing import Any

from pydantic import SecretStr

from ehr.bundles import stored_resources
from ehr.date_roller import today
from ehr.hook_request import CdsClient
from ehr.output import console, errors, print_cards
from ehr.scenarios import EXAMPLES, scenario_bundle, scenario_draft_orders, scenario_index
from ehr.services import pick_service
from service.serving import load_settings

DEMO = (
    "trd-two-switches",
    "trd-with-psychosis-history",
    "unknown-doses",
    "one-failed-trial",
    "order-select-after-trd",
    "order-sign-ketamine-overdose",
    "order-sign-contraindicated",
)
DEMO_EHR = CdsClient(user="Practitioner/demo", fhir_server="http://demo.ehr.invalid/fhir")


def demo_requests(services: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(description, service id, request) for each demo scenario, dated to today."""
    day = today()
    requests = []
    for entry in scenario_index():
        if entry["file"].removesuffix(".json") not in DEMO:
            continue
        service = pick_service(services, entry["service"])
        patient_id = entry["patient_id"]
        chart = stored_resources(scenario_bundle(entry, today=day))
        drafts = scenario_draft_orders(entry, today=day, patient_id=patient_id)
        body = DEMO_EHR.request(service, chart, patient_id, draft_orders=drafts)
        requests.append((entry["description"], service["id"], body))
    return requests


def cmd_demo(args: argparse.Namespace) -> int:
    import httpx
    import uvicorn

    from service.logging_setup import configure_logging
    from service.main import create_app

    settings = load_settings(args.host, True)
    if settings.suppression_secret is None:
        # A key for this run only, so that feedback in the demo withholds the referral card.
        settings = settings.model_copy(
            update={"suppression_secret": SecretStr(secrets.token_hex(32))}
        )
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
        for description, service_id, body in demo_requests(discovery["services"]):
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


def register(sub: Any) -> None:
    demo = sub.add_parser(
        "demo", help="start the service and fire the three hooks at example patients"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--no-serve", action="store_true", help="exit after the demo calls")
    demo.set_defaults(func=cmd_demo)
