"""Feedback withholds the referral card (issue 12), through HTTP with the store, in both modes.

A clinician overrides the referral card with a reason that has a window, or accepts its referral
suggestion; the next patient-view (and order-select) for that patient shows no referral card and
the explain answer says why; a material change (a new failed regimen) brings the card back;
windows end; other patients, and services without the secret, are not affected; a store that
cannot be read withholds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import respx
from fastapi.testclient import TestClient

from service.main import create_app
from tests.conftest import EHR, FakeEhr, make_settings
from tests.factories import NOW, blood_pressure, draft_order, for_patient, mdd, patient
from tests.hook_requests import hook_request
from tests.scenarios.model import (
    ESCITALOPRAM_20,
    MIRTAZAPINE_30,
    SERTRALINE_100,
    VENLAFAXINE_150,
    drug_course,
    trd_patient,
)

SCREEN = "trd-ketamine-screen"
SELECT = "trd-antidepressant-order"
MODES = ("prefetch", "fetch")


class Clinic:
    """One app (one store) and one EHR: calls hooks for a patient as the EHR would."""

    def __init__(self, client: TestClient, mode: str) -> None:
        self.client = client
        self.mode = mode
        self.resources: dict[str, list[dict[str, Any]]] = {}

    def chart(self, pid: str, resources: list[dict[str, Any]]) -> None:
        self.resources[pid] = resources

    def call(
        self, pid: str, service: str = SCREEN, orders: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        resources = self.resources[pid]
        body = hook_request(service, resources, mode=self.mode, pid=pid, draft_orders=orders)
        ehr = FakeEhr(resources, page_size=5)
        with respx.mock(assert_all_called=False) as mock:
            mock.route(url__startswith=EHR + "/").mock(side_effect=ehr.handler)
            response = self.client.post(f"/cds-services/{service}/explain", json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def feedback(self, card: dict[str, Any], outcome: str, reason: str | None = None) -> None:
        item: dict[str, Any] = {
            "card": card["uuid"],
            "outcome": outcome,
            "outcomeTimestamp": "2026-11-27T06:45:00Z",
        }
        if outcome == "accepted":
            item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
        if reason is not None:
            item["overrideReason"] = {
                "reason": {
                    "code": reason,
                    "system": "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes",
                }
            }
        response = self.client.post(f"/cds-services/{SCREEN}/feedback", json={"feedback": [item]})
        assert response.status_code == 200, response.text


@pytest.fixture
def clinic_at() -> Iterator[Callable[..., Clinic]]:
    clients: list[TestClient] = []
    clock = {"now": NOW}

    def make(mode: str, **settings: Any) -> Clinic:
        app = create_app(make_settings(**settings), clock=lambda: clock["now"])
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        clinic = Clinic(client, mode)
        clinic.clock = clock  # type: ignore[attr-defined]
        return clinic

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _referral(answer: dict[str, Any]) -> dict[str, Any]:
    [card] = [c for c in answer["cards"] if c["summary"].startswith("Consider ketamine")]
    return card


def _three_failures() -> list[dict[str, Any]]:
    """The same patient later: venlafaxine (24 adequate weeks) switched to mirtazapine, a third
    failed regimen (a material change)."""
    return [
        patient(),
        mdd(),
        *drug_course(SERTRALINE_100, start_weeks_ago=60, weeks=12),
        *drug_course(ESCITALOPRAM_20, start_weeks_ago=47, weeks=10),
        *drug_course(VENLAFAXINE_150, start_weeks_ago=36, weeks=24),
        *drug_course(MIRTAZAPINE_30, start_weeks_ago=12, weeks=12, last_status="active"),
        blood_pressure(128, 80, days_ago=10),
    ]


@pytest.mark.parametrize("mode", MODES)
def test_suppression_patient_declined_withholds_until_a_new_failed_regimen(
    mode: str, clinic_at: Callable[..., Clinic]
) -> None:
    """Verify that "patient declined" withholds the referral card, says why in explain, and a
    new failed regimen brings it back with the reason the earlier feedback no longer holds."""
    clinic = clinic_at(mode)
    history = trd_patient()
    clinic.chart("p1", history)
    first = clinic.call("p1")
    card = _referral(first)
    codes = {r["code"] for r in card["overrideReasons"]}
    assert "does-not-align-preferences" in codes and "snooze-1-month" in codes
    clinic.feedback(card, "overridden", "does-not-align-preferences")

    second = clinic.call("p1")
    assert second["cards"] == []
    suppression = second["assessment"]["suppression"]
    assert suppression["reason"] == "feedback:does-not-align-preferences"
    assert suppression["withheld"] == ["screen-referral"]
    assert suppression["evidence"] == [f"feedback on card {card['uuid']}"]
    assert suppression["until"] == (NOW + timedelta(days=90)).date().isoformat()
    assert second["assessment"]["recommendation"] == "refer-for-evaluation"

    clinic.chart("p1", _three_failures())
    third = clinic.call("p1")
    assert third["assessment"]["failed_adequate_trials"] == 3
    assert _referral(third)
    assert "suppression" not in third["assessment"]
    assert (
        "no longer holds: failed adequate regimens 2 -> 3"
        in third["assessment"]["suppression_lifted"]
    )


@pytest.mark.parametrize("mode", MODES)
def test_suppression_accepted_referral_withholds_patient_view_and_order_select(
    mode: str, clinic_at: Callable[..., Clinic]
) -> None:
    """Verify that an accepted referral suggestion withholds the referral card at patient-view
    and at order-select (for 180 days), for that patient only."""
    clinic = clinic_at(mode)
    clinic.chart("p1", trd_patient())
    clinic.chart("p2", for_patient(trd_patient(), "p2"))
    card = _referral(clinic.call("p1"))
    clinic.feedback(card, "accepted")
    again = clinic.call("p1")
    assert again["cards"] == []
    assert again["assessment"]["suppression"]["reason"] == "referral-accepted"
    mirtazapine = [draft_order("mirtazapine 30 MG Oral Tablet", rxcui="314111", dose=1, unit="TAB")]
    select = clinic.call("p1", SELECT, mirtazapine)
    assert select["cards"] == []
    assert select["assessment"]["suppression"]["withheld"] == ["select-referral"]
    other = clinic.call("p2")
    assert _referral(other) and "suppression" not in other["assessment"]


@pytest.mark.parametrize(
    ("reason", "days"),
    [("snooze-1-month", 30), ("action-not-priority", 30), ("action-completed", 180)],
    ids=["snooze", "not-now", "already-evaluated"],
)
def test_suppression_window_ends(reason: str, days: int, clinic_at: Callable[..., Clinic]) -> None:
    """Verify that each reason withholds the card for its window, and not a day longer."""
    clinic = clinic_at("prefetch")
    clinic.chart("p1", trd_patient())
    clinic.feedback(_referral(clinic.call("p1")), "overridden", reason)
    clinic.clock["now"] = NOW + timedelta(days=days - 1)  # type: ignore[attr-defined]
    assert clinic.call("p1")["cards"] == []
    clinic.clock["now"] = NOW + timedelta(days=days, hours=1)  # type: ignore[attr-defined]
    assert _referral(clinic.call("p1"))


@pytest.mark.parametrize(
    "reason",
    ["recipient-disagrees-evidence", "made-up-code", None],
    ids=["reason-without-window", "unknown-code", "no-reason"],
)
def test_suppression_other_feedback_withholds_nothing(
    reason: str | None, clinic_at: Callable[..., Clinic]
) -> None:
    """Verify that an override without a windowed reason withholds nothing."""
    clinic = clinic_at("prefetch")
    clinic.chart("p1", trd_patient())
    clinic.feedback(_referral(clinic.call("p1")), "overridden", reason)
    assert _referral(clinic.call("p1"))


def test_suppression_without_secret_feedback_withholds_nothing(
    clinic_at: Callable[..., Clinic],
) -> None:
    """Verify that without KETAMINE_CDS_SUPPRESSION_SECRET nothing is kept and nothing withheld."""
    clinic = clinic_at("prefetch", suppression_secret=None)
    clinic.chart("p1", trd_patient())
    clinic.feedback(_referral(clinic.call("p1")), "overridden", "does-not-align-preferences")
    assert _referral(clinic.call("p1"))


def test_suppression_operator_turns_a_reason_off(clinic_at: Callable[..., Clinic]) -> None:
    """Verify that KETAMINE_CDS_SUPPRESSION_DAYS can turn a reason off (0 days)."""
    clinic = clinic_at("prefetch", suppression_days={"does-not-align-preferences": 0})
    clinic.chart("p1", trd_patient())
    clinic.feedback(_referral(clinic.call("p1")), "overridden", "does-not-align-preferences")
    assert _referral(clinic.call("p1"))


def test_suppression_store_unreachable_withholds_nothing(
    clinic_at: Callable[..., Clinic],
) -> None:
    """Verify that when earlier feedback cannot be read the card shows, and the explanation
    says so (not the card: it is not clinical)."""
    clinic = clinic_at("prefetch")
    clinic.chart("p1", trd_patient())
    clinic.feedback(_referral(clinic.call("p1")), "overridden", "does-not-align-preferences")

    async def unreachable(*args: Any, **kwargs: Any) -> None:
        from service.errors import StoreUnavailable

        raise StoreUnavailable("test: the store is down")

    operations = clinic.client.app.state.cds.operations  # type: ignore[attr-defined]
    operations.store.suppression_for = unreachable
    answer = clinic.call("p1")
    assert _referral(answer)
    assert "could not be read" in answer["explanation"]["earlier_feedback"]
    assert not any("feedback" in g for g in answer["assessment"].get("data_gaps", []))


def test_suppression_subject_key_is_keyed_and_per_server() -> None:
    """Verify that the stored key depends on the secret, the FHIR server and the patient, and
    never contains the patient id."""
    from service.operations import subject_key

    one = make_settings(suppression_secret="s" * 40)
    two = make_settings(suppression_secret="t" * 40)
    key = subject_key(one, EHR, "p1")
    assert key is not None and len(key) == 64 and "p1" not in key
    assert key == subject_key(one, EHR + "/", "p1")
    assert key != subject_key(two, EHR, "p1")
    assert key != subject_key(one, "https://other.example/fhir", "p1")
    assert key != subject_key(one, EHR, "p2")
    assert subject_key(make_settings(suppression_secret=None), EHR, "p1") is None


def test_suppression_window_setting_rejects_unknown_reasons() -> None:
    """Verify that a suppression window for an unknown reason stops start-up naming it."""
    with pytest.raises(ValueError, match="unknown suppression reason 'made-up'"):
        make_settings(suppression_days={"made-up": 10})
