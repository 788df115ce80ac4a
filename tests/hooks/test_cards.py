"""Card models and response JSON rules (checklist F items 60-69, G, H 82, Q3-Q6)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hooks.cards import (
    MAX_SUMMARY,
    Action,
    Card,
    CdsCoding,
    Link,
    Source,
    Suggestion,
    response_json,
    shorten,
)
from tests.conformance import UUID, assert_conformant_response

SOURCE = Source(label="Ketamine CDS")
REASON = CdsCoding(
    system="http://example.org/override", code="not-relevant", display="Not relevant"
)


def _card(**kw: Any) -> Card:
    values: dict[str, Any] = {
        "kind": "screen-referral",
        "summary": "Consider evaluation.",
        "indicator": "info",
        "source": SOURCE,
    }
    values.update(kw)
    return Card(**values)


@pytest.mark.parametrize(
    ("length", "valid"),
    [(0, False), (1, True), (138, True), (139, True), (140, False), (200, False)],
    ids=["empty", "one", "138", "139", "140", "200"],
)
def test_card_summary_length_limit_enforced(length: int, valid: bool) -> None:
    """Verify that a summary must be 1-139 characters (spec: under 140)."""
    summary = "x" * length
    if valid:
        assert _card(summary=summary).summary == summary
    else:
        with pytest.raises(ValidationError, match="summary"):
            _card(summary=summary)


def test_card_max_summary_constant_under_140() -> None:
    """Verify that the model's limit constant is the spec's '<140 characters'."""
    assert MAX_SUMMARY == 139


INVALID_CARDS: dict[str, tuple[dict[str, Any], str]] = {
    "suggestions-without-selection-behavior": (
        {"suggestions": [Suggestion(label="Refer")]},
        "selectionBehavior",
    ),
    "override-reason-without-display": (
        {"overrideReasons": [CdsCoding(system="http://example.org/override", code="x")]},
        "display",
    ),
    "one-of-two-override-reasons-without-display": (
        {
            "overrideReasons": [
                REASON,
                CdsCoding(system="http://example.org/o", code="y", display=""),
            ]
        },
        "display",
    ),
    "unknown-indicator": ({"indicator": "hard-stop"}, "indicator"),
    "unknown-selection-behavior": (
        {"suggestions": [Suggestion(label="Refer")], "selectionBehavior": "all"},
        "selectionBehavior",
    ),
    "extra-member": ({"severity": "high"}, "severity"),
}


@pytest.mark.parametrize(
    ("fields", "expected"), list(INVALID_CARDS.values()), ids=list(INVALID_CARDS)
)
def test_card_non_conformant_fields_rejected(fields: dict[str, Any], expected: str) -> None:
    """Verify that cards the spec forbids (cds-resp-4/6, enums, extra members) cannot be built."""
    with pytest.raises(ValidationError, match=expected):
        _card(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"suggestions": [Suggestion(label="Refer")], "selectionBehavior": "at-most-one"},
        {"suggestions": [Suggestion(label="Refer")], "selectionBehavior": "any"},
        {"overrideReasons": [REASON]},
        {"selectionBehavior": None, "suggestions": []},
    ],
    ids=["at-most-one", "any", "override-reason-with-display", "empty-suggestions"],
)
def test_card_conformant_fields_accepted(fields: dict[str, Any]) -> None:
    """Verify that conformant suggestion and override-reason combinations are accepted."""
    card = _card(**fields)
    assert_conformant_response(response_json([card]))


def test_card_uuid_fresh_per_instance() -> None:
    """Verify that each card and suggestion instance gets its own uuid (item 62, Q6)."""
    first, second = _card(), _card()
    assert UUID.match(first.uuid) and UUID.match(second.uuid)
    assert first.uuid != second.uuid
    assert Suggestion(label="a").uuid != Suggestion(label="a").uuid


SENTENCES = {
    "long-words": "Consider ketamine/esketamine evaluation: " + "two failed adequate trials " * 10,
    "comma-at-cut": ("word " * 26) + "alpha, beta, gamma, delta, epsilon, zeta, eta, theta, iota",
    "exactly-140": "a" * 135 + " bcde",
    "long-tokens": " ".join(["antidepressant"] * 20),
    "no-spaces": "x" * 300,
}


@pytest.mark.parametrize("text", list(SENTENCES.values()), ids=list(SENTENCES))
def test_shorten_long_text_cut_under_140_on_word_boundary(text: str) -> None:
    """Verify that shorten() gives <140 characters, ending with an ellipsis at a word boundary."""
    assert len(text) >= 140
    short = shorten(text)
    assert len(short) <= MAX_SUMMARY
    assert short.endswith("…")
    kept = short[:-1]
    assert kept and text.startswith(kept)
    if " " in text[:MAX_SUMMARY]:
        assert text[len(kept)] in " ,;:", repr(text[len(kept) - 5 : len(kept) + 5])
        assert not kept.endswith((" ", ",", ";", ":"))
    assert _card(summary=short).summary == short


@pytest.mark.parametrize(
    "text",
    ["Short.", "y" * 139, "Consider evaluation: two failed trials."],
    ids=["short", "139", "sentence"],
)
def test_shorten_short_text_unchanged(text: str) -> None:
    """Verify that text already under the limit is returned as it is."""
    assert shorten(text) == text


def test_response_json_no_cards_keeps_empty_array() -> None:
    """Verify that an answer without cards is exactly {"cards": []} (item 60)."""
    assert response_json([]) == {"cards": []}


def test_response_json_none_and_empty_members_dropped() -> None:
    """Verify that None, "", [] and {} are dropped at every depth, other falsy values kept."""
    card = _card(
        detail=None,
        source=Source(label="Ketamine CDS", url=None, icon=None),
        suggestions=[
            Suggestion(label="Refer", isRecommended=False, actions=[]),
            Suggestion(
                label="Order",
                actions=[
                    Action(
                        type="create",
                        description="Draft order",
                        resource={
                            "resourceType": "ServiceRequest",
                            "id": "sr-1",
                            "note": [],
                            "code": {},
                            "priority": None,
                            "text": "",
                            "quantity": 0,
                        },
                    ),
                ],
            ),
        ],
        selectionBehavior="at-most-one",
        overrideReasons=[],
        links=[],
    )
    body = response_json([card])
    assert list(body) == ["cards"]
    out = body["cards"][0]
    assert set(out) == {
        "uuid",
        "summary",
        "indicator",
        "source",
        "suggestions",
        "selectionBehavior",
    }
    assert out["source"] == {"label": "Ketamine CDS"}
    refer, order = out["suggestions"]
    assert refer == {"label": "Refer", "uuid": refer["uuid"], "isRecommended": False}
    assert order["actions"][0]["resource"] == {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "quantity": 0,
    }
    assert_conformant_response(body)


def test_response_json_link_defaults_serialised() -> None:
    """Verify that links keep their default type and drop an absent appContext (cds-resp-3)."""
    card = _card(links=[Link(label="Label", url="https://example.org/pi")])
    link = response_json([card])["cards"][0]["links"][0]
    assert link == {"label": "Label", "url": "https://example.org/pi", "type": "absolute"}
