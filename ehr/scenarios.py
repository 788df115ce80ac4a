"""The scenario patients of ``examples/patients``: their index, Bundles and draft orders.

Each Bundle is written relative to its ``Bundle.timestamp``; ``today`` moves its dates (and its
draft orders') to the given day (None keeps them as written). A ``prefix`` renames every id (and
every reference to it), for a shared public server.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

from ehr.bundles import rewrite_references
from ehr.date_roller import roll_dates
from ehr.errors import EhrError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = next(
    (
        p
        for p in (ROOT / "examples" / "patients", Path.cwd() / "examples" / "patients")
        if p.is_dir()
    ),
    ROOT / "examples" / "patients",
)


def scenario_index() -> list[dict[str, Any]]:
    """``index.json``: each scenario's file, patient id, service, draft orders and expectation."""
    path = EXAMPLES / "index.json"
    try:
        index: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EhrError(f"the scenario patients are missing: {path} not found") from exc
    return index


def find_scenario(patient_id: str) -> dict[str, Any] | None:
    """The scenario a seeded patient id belongs to (exact, or after a ``seed --prefix``)."""
    matches = [
        e
        for e in scenario_index()
        if patient_id == e["patient_id"]
        or (
            patient_id.endswith(e["patient_id"])
            and patient_id[: -len(e["patient_id"])].endswith("-")
        )
    ]
    return max(matches, key=lambda e: len(e["patient_id"])) if matches else None


def normal_prefix(prefix: str) -> str:
    """``prefix`` ending with '-' (empty stays empty); refused unless short and plain."""
    if prefix and not re.fullmatch(r"[A-Za-z0-9\-.]{1,20}", prefix):
        raise EhrError("--prefix may hold only letters, digits, '-' and '.' (max 20)")
    return prefix if not prefix or prefix.endswith("-") else prefix + "-"


def with_prefix(resources: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The resources with ``prefix`` before every id (and every reference to them)."""
    if not prefix:
        return resources
    renamed = {
        f"{r['resourceType']}/{r['id']}": f"{r['resourceType']}/{(prefix + r['id'])[:64]}"
        for r in resources
        if isinstance(r.get("id"), str)
    }
    out = []
    for resource in resources:
        copy = rewrite_references(resource, renamed)
        if isinstance(resource.get("id"), str):
            copy["id"] = renamed[f"{resource['resourceType']}/{resource['id']}"].split("/", 1)[1]
        out.append(copy)
    return out


def _written(entry: dict[str, Any]) -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads((EXAMPLES / entry["file"]).read_text(encoding="utf-8"))
    return bundle


def scenario_bundle(entry: dict[str, Any], *, today: date | None) -> dict[str, Any]:
    """The scenario's transaction Bundle, dated to ``today``."""
    bundle = _written(entry)
    return roll_dates(bundle, today) if today is not None else bundle


def scenario_draft_orders(
    entry: dict[str, Any], *, today: date | None, patient_id: str
) -> list[dict[str, Any]]:
    """The scenario's draft orders, dated like its (rolled) Bundle, for ``patient_id``."""
    stamp = _written(entry).get("timestamp")
    drafts = []
    for draft in entry.get("draft_orders") or []:
        order = dict(draft)
        if today is not None and isinstance(stamp, str):
            order = roll_dates({**order, "timestamp": stamp}, today)
            order.pop("timestamp", None)
        order["subject"] = {"reference": f"Patient/{patient_id}"}
        drafts.append(order)
    return drafts
