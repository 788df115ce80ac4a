"""Checks of CDS Hooks 2.0.1 responses against the checklist (shared/docs/cds-hooks-checklist.md).

Each assertion names the checklist item it enforces. Used by every test that gets a response.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _no_null_or_empty(value: Any, path: str) -> None:
    """Items 2-4: no null, "", [] or {} anywhere (the top-level cards array excepted)."""
    if isinstance(value, dict):
        assert value != {}, f"{path}: empty object"
        for key, item in value.items():
            assert item is not None, f"{path}.{key}: null"
            _no_null_or_empty(item, f"{path}.{key}")
    elif isinstance(value, list):
        assert value != [], f"{path}: empty array"
        for index, item in enumerate(value):
            _no_null_or_empty(item, f"{path}[{index}]")
    elif isinstance(value, str):
        assert value != "", f"{path}: empty string"


def assert_conformant_response(body: Any) -> None:
    assert isinstance(body, dict), "item 60: response is an object"
    assert "cards" in body and isinstance(body["cards"], list), "item 60: cards is required"
    allowed_top = {"cards", "systemActions"}
    assert set(body) <= allowed_top, f"item 116: no custom top-level members ({set(body)})"
    seen_uuids: set[str] = set()
    for index, card in enumerate(body["cards"]):
        path = f"cards[{index}]"
        _no_null_or_empty(card, path)
        summary = card.get("summary")
        assert isinstance(summary, str) and 1 <= len(summary) < 140, f"item 63: {path}.summary"
        assert card.get("indicator") in ("info", "warning", "critical"), f"item 65: {path}"
        source = card.get("source")
        assert isinstance(source, dict) and source.get("label"), f"item 66: {path}.source.label"
        if "url" in source:
            assert source["url"].startswith("https://"), f"item 66: {path}.source.url absolute"
        assert UUID.match(card.get("uuid", "")), f"item 62: {path}.uuid"
        assert card["uuid"] not in seen_uuids, "item 62: uuid per card instance"
        seen_uuids.add(card["uuid"])
        if "detail" in card:
            assert "<" not in card["detail"] or "<140" in card["detail"], (
                f"item 64: raw HTML in {path}"
            )
        suggestions = card.get("suggestions")
        if suggestions:
            assert card.get("selectionBehavior") in ("at-most-one", "any"), f"item 67-68: {path}"
            recommended = [s for s in suggestions if s.get("isRecommended")]
            if card["selectionBehavior"] == "at-most-one":
                assert len(recommended) <= 1, f"cds-resp-1: {path}"
            for s_index, suggestion in enumerate(suggestions):
                s_path = f"{path}.suggestions[{s_index}]"
                assert suggestion.get("label"), f"item 73: {s_path}.label"
                assert UUID.match(suggestion.get("uuid", "")), f"item 73: {s_path}.uuid"
                for action in suggestion.get("actions", []):
                    assert action.get("type") in ("create", "update", "delete"), (
                        f"item 75: {s_path}"
                    )
                    assert action.get("description"), f"item 76 / cds-resp-5: {s_path}"
                    if action["type"] == "create":
                        resource = action.get("resource")
                        assert isinstance(resource, dict) and resource.get("id"), (
                            f"item 77/79: {s_path}"
                        )
                    if action["type"] == "delete":
                        assert action.get("resourceId") and "resource" not in action, (
                            f"cds-resp-2: {s_path}"
                        )
        else:
            assert "selectionBehavior" not in card, f"{path}: selectionBehavior without suggestions"
        for reason in card.get("overrideReasons", []):
            assert reason.get("code") and reason.get("system") and reason.get("display"), (
                f"item 69 / cds-resp-4: {path}.overrideReasons"
            )
        for link in card.get("links", []):
            assert link.get("label") and link.get("url"), f"item 82: {path}.links"
            assert link.get("type") in ("absolute", "smart"), f"item 82: {path}.links.type"
            if link["type"] != "smart":
                assert "appContext" not in link, f"cds-resp-3: {path}"


def strip_volatile(body: Any) -> Any:
    """The response with uuids (and ids and identifier values of created resources) blanked,
    for comparisons."""
    if isinstance(body, dict):
        return {
            k: (
                "<uuid>"
                if k in ("uuid", "id", "value") and isinstance(v, str) and _is_uuid(v)
                else strip_volatile(v)
            )
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [strip_volatile(v) for v in body]
    return body


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
