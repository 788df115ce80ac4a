"""The command line: evaluate a Bundle offline; the demo against a real uvicorn server."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from ehr import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "patients"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("file", "recommendation", "failed"),
    [
        ("trd-two-switches.json", "refer-for-evaluation", 2),
        ("trd-with-psychosis-history.json", "not-recommended", 2),
        ("unknown-doses.json", "insufficient-data", 0),
        ("no-depression-no-drugs.json", "not-a-candidate", 0),
    ],
)
def test_evaluate_example_bundle_json_output(
    file: str, recommendation: str, failed: int, capsys
) -> None:
    """Verify that `ketamine-cds evaluate --json` assesses an example bundle as expected."""
    assert cli.main(["evaluate", str(EXAMPLES / file), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["assessment"]["recommendation"] == recommendation
    assert body["assessment"]["failed_adequate_trials"] == failed


def test_evaluate_readable_output_lists_trials_and_cards(capsys) -> None:
    """Verify that the readable output shows the trials table and the card."""
    assert cli.main(["evaluate", str(EXAMPLES / "trd-two-switches.json")]) == 0
    out = capsys.readouterr().out
    assert "sertraline" in out and "failed" in out and "Consider ketamine/esketamine" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not JSON"), ('{"a": 1}', "not a FHIR resource")],
    ids=["not-json", "not-fhir"],
)
def test_evaluate_bad_file_says_what_is_wrong(
    tmp_path: Path, content: str, message: str, capsys
) -> None:
    """Verify that a bad input file gives exit code 2 and a message, not a traceback."""
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(SystemExit) as exc:
        cli.main(["evaluate", str(path)])
    assert exc.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_serve_dev_mode_on_public_address_is_refused(capsys) -> None:
    """Verify that `serve --dev --host 0.0.0.0` refuses to start and names the setting."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--dev", "--host", "0.0.0.0"])
    assert exc.value.code == 2
    assert "KETAMINE_CDS_ALLOW_UNAUTHENTICATED" in " ".join(capsys.readouterr().err.split())


def test_demo_fires_three_hooks_over_http(capsys) -> None:
    """Verify that the demo starts a real server, calls all three services and shows cards."""
    assert cli.main(["demo", "--no-serve", "--port", str(_free_port())]) == 0
    out = capsys.readouterr().out
    for service in ("trd-ketamine-screen", "trd-antidepressant-order", "ketamine-order-safety"):
        assert service in out
    assert "CRITICAL" in out and "WARNING" in out and "INFO" in out
