"""``ketamine-cds seed | invoke | explain`` against a real FHIR server, as an engineer runs them."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from ehr import cli
from ehr.keys import generate_keys
from ehr.scenarios import find_scenario, scenario_index
from integration.fhir_server import FhirTestServer
from service.main import create_app
from service.settings import Settings
from tests.integration.conftest import TODAY


def _json_out(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_seed_command_prints_each_patient_and_what_it_should_produce(
    fhir_server: FhirTestServer, seeded: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify that `seed --json` loads every scenario patient (again: no duplicates) and lists
    them."""
    assert cli.main(["seed", "--fhir-server", fhir_server.base_url, "--json"]) == 0
    listed = _json_out(capsys)
    assert len(listed) == len(scenario_index())
    first = listed[0]
    assert first["patient_id"] == "trd-two-switches"
    assert first["expected"]["recommendation"] == "refer-for-evaluation"
    assert first["expected"]["failed_adequate_trials"] == 2
    assert cli.main(["seed", "--fhir-server", fhir_server.base_url]) == 0
    out = capsys.readouterr().out
    assert "trd-two-switches" in out and "refer-for-evaluation" in out
    assert f"dates moved to {TODAY.isoformat()}" in out.replace("\n", "")


def test_seed_with_prefix_keeps_scenarios_apart(
    fhir_server: FhirTestServer, seeded: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify that --prefix renames every id and reference, and invoke finds the scenario."""
    args = ["seed", "--fhir-server", fhir_server.base_url, "--prefix", "kcds", "--json"]
    assert cli.main([*args, "--only", "order-sign-contraindicated"]) == 0
    assert [p["patient_id"] for p in _json_out(capsys)] == ["kcds-order-sign-contraindicated"]
    call = ["--fhir-server", fhir_server.base_url, "--patient", "kcds-order-sign-contraindicated"]
    assert cli.main(["explain", "order-sign", *call, "--json"]) == 0
    body = _json_out(capsys)
    assert [c["indicator"] for c in body["cards"]] == ["critical"]
    evidence = body["assessment"].get("contraindications", [])[0]["evidence"]
    assert all(ref.split("/")[1].startswith("kcds-") for ref in evidence), evidence


@pytest.mark.parametrize("mode", ["--prefetch", "--no-prefetch"])
def test_invoke_patient_view_json(
    mode: str, fhir_server: FhirTestServer, seeded: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify that `invoke --json` prints the service's answer: one info card with a referral."""
    argv = [
        "invoke",
        "patient-view",
        "--fhir-server",
        fhir_server.base_url,
        "--patient",
        "trd-two-switches",
        mode,
        "--json",
    ]
    assert cli.main(argv) == 0
    body = _json_out(capsys)
    assert list(body) == ["cards"]
    assert [c["indicator"] for c in body["cards"]] == ["info"]
    assert body["cards"][0]["suggestions"]


def test_explain_readable_output_shows_trials_contraindications_evidence_and_gaps(
    fhir_server: FhirTestServer, seeded: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify that `explain` prints the assessment and the cards readably."""
    argv = [
        "explain",
        "trd-ketamine-screen",
        "--fhir-server",
        fhir_server.base_url,
        "--patient",
        "trd-with-psychosis-history",
        "--no-prefetch",
    ]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    for text in (
        "Recommendation: not-recommended",
        "sertraline",
        "failed",
        "psychosis-history",
        "Contraindication evidence",
        "Condition/trdwithpsychosishistory-",
        "WARNING",
        "queried by the service: patient, conditions",
    ):
        assert text in out, text
    argv = [
        "explain",
        "patient-view",
        "--fhir-server",
        fhir_server.base_url,
        "--patient",
        "no-recent-bp-is-a-gap",
    ]
    assert cli.main(argv) == 0
    assert "data gap: no blood pressure recorded in the last 90 days" in capsys.readouterr().out


def test_invoke_order_sign_uses_the_scenario_draft_orders(
    fhir_server: FhirTestServer, seeded: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify that a scenario patient's draft orders are used when none are given."""
    argv = [
        "invoke",
        "order-sign",
        "--fhir-server",
        fhir_server.base_url,
        "--patient",
        "order-sign-ketamine-overdose",
    ]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "WARNING" in out and "mg/kg" in out


def test_invoke_with_a_draft_order_file(
    tmp_path: Path, fhir_server: FhirTestServer, seeded: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify --draft-order FILE: an antidepressant selected after two failed trials."""
    order = {
        "resourceType": "MedicationRequest",
        "id": "draft-mirtazapine",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "314111",
                    "display": "mirtazapine 30 MG Oral Tablet",
                }
            ],
        },
        "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 1, "unit": "TAB"}}]}],
    }
    path = tmp_path / "order.json"
    path.write_text(json.dumps(order))
    argv = [
        "invoke",
        "order-select",
        "--fhir-server",
        fhir_server.base_url,
        "--patient",
        "trd-two-switches",
        "--draft-order",
        str(path),
        "--json",
    ]
    assert cli.main(argv) == 0
    cards = _json_out(capsys)["cards"]
    assert [c["indicator"] for c in cards] == ["info"]
    assert "before" in cards[0]["summary"]


def test_order_hook_without_draft_orders_says_what_to_pass(
    fhir_server: FhirTestServer, seeded: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify that order-sign for a non-scenario patient asks for --draft-order."""
    seeded_ids = {r.patient_id for r in seeded}
    assert "trd-two-switches" in seeded_ids
    argv = [
        "invoke",
        "order-sign",
        "--fhir-server",
        fhir_server.base_url,
        "--patient",
        "someone-else",
    ]
    assert cli.main(argv) == 2
    assert "--draft-order FILE" in capsys.readouterr().err


def test_unknown_patient_without_prefetch_is_a_clear_412(
    fhir_server: FhirTestServer, seeded: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify that a patient the server does not have gives exit 1 and the service's reason."""
    argv = [
        "invoke",
        "patient-view",
        "--fhir-server",
        fhir_server.base_url,
        "--patient",
        "nobody-here",
        "--no-prefetch",
    ]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "HTTP 412" in err and "patient" in err


def test_unreachable_fhir_server_and_unknown_hook_are_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Verify the messages for an unreachable server and a hook the service does not have."""
    port = _free_port()
    assert cli.main(["seed", "--fhir-server", f"http://127.0.0.1:{port}/fhir"]) == 2
    assert "cannot reach the FHIR server" in capsys.readouterr().err
    argv = [
        "invoke",
        "encounter-start",
        "--fhir-server",
        f"http://127.0.0.1:{port}/fhir",
        "--patient",
        "x",
    ]
    assert cli.main(argv) == 2
    assert "no single CDS service for 'encounter-start'" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _uvicorn(settings: Settings, port: int) -> Iterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def running_service() -> Iterator[str]:
    """The service under uvicorn in development mode (it may call loopback FHIR servers)."""
    port = _free_port()
    with _uvicorn(Settings(allow_unauthenticated=True, bind_host="127.0.0.1"), port) as url:
        yield url


def test_invoke_a_running_service_by_url(
    running_service: str,
    fhir_server: FhirTestServer,
    seeded: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Verify --service-url: the same answer from a service running under uvicorn."""
    for mode in ("--prefetch", "--no-prefetch"):
        argv = [
            "explain",
            "patient-view",
            "--fhir-server",
            fhir_server.base_url,
            "--patient",
            "trd-with-psychosis-history",
            "--service-url",
            running_service,
            mode,
            "--json",
        ]
        assert cli.main(argv) == 0
        body = _json_out(capsys)
        assert body["assessment"]["recommendation"] == "not-recommended"
        assert [c["id"] for c in body["assessment"].get("contraindications", [])] == [
            "psychosis-history"
        ]


def test_invoke_a_service_that_requires_a_jwt(
    tmp_path: Path, fhir_server: FhirTestServer, seeded: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify --jwt-key/--jwt-iss: each call is signed for its endpoint; without them, 401."""
    private_jwk, jwks = generate_keys("integration-test")
    key = tmp_path / "private-jwk.json"
    key.write_text(json.dumps(private_jwk))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        bind_host="127.0.0.1",
        trusted_clients=json.dumps([{"iss": "https://ehr.example.org", "jwks": jwks}]),
        public_base_url=base,
        allowed_fhir_servers=fhir_server.base_url,
    )
    call = [
        "explain",
        "patient-view",
        "--fhir-server",
        fhir_server.base_url,
        "--patient",
        "trd-two-switches",
        "--service-url",
        base,
        "--json",
    ]
    with _uvicorn(settings, port):
        assert cli.main([*call, "--jwt-key", str(key), "--jwt-iss", "https://ehr.example.org"]) == 0
        assert _json_out(capsys)["assessment"]["recommendation"] == "refer-for-evaluation"
        assert cli.main(call) == 1
        assert "HTTP 401" in capsys.readouterr().err


def test_find_scenario_matches_exact_and_prefixed_ids() -> None:
    """Verify the scenario lookup behind the default draft orders."""
    assert find_scenario("order-sign-other-drug")["file"] == ("order-sign-other-drug.json")
    assert find_scenario("kcds-order-sign-other-drug")["file"] == ("order-sign-other-drug.json")
    assert find_scenario("xorder-sign-other-drug") is None
    assert find_scenario("unknown") is None
