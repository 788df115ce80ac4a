"""Keep example data current: shift every date in a Bundle by (today - Bundle.timestamp).

Example patients are written relative to the day in their ``Bundle.timestamp``; rolling them to
today keeps every "within the last N weeks" rule true for them, whenever they are loaded (the
"date roller" of cqframework's opioid CDS tests). Ages stay as written, because birth dates move
too. Year-only and year-month partial dates are not shifted (they carry no day to move).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")


def _shift(value: str, delta: timedelta) -> str:
    if _DATE.match(value):
        return (date.fromisoformat(value) + delta).isoformat()
    if _DATETIME.match(value):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        shifted = (parsed + delta).isoformat()
        return shifted.replace("+00:00", "Z") if value.endswith("Z") else shifted
    return value


def _walk(value: Any, delta: timedelta) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, delta) for v in value]
    if isinstance(value, str):
        return _shift(value, delta)
    return value


def roll_dates(bundle: dict[str, Any], today: date) -> dict[str, Any]:
    """A copy of the bundle with its dates moved so that its timestamp falls on ``today``."""
    stamp = bundle.get("timestamp")
    if not isinstance(stamp, str) or len(stamp) < 10:
        return bundle
    anchor = date.fromisoformat(stamp[:10])
    delta = today - anchor
    if delta.days == 0:
        return bundle
    rolled: dict[str, Any] = _walk(bundle, delta)
    return rolled


def today() -> date:
    """The day example data are rolled to: today in UTC."""
    return datetime.now(UTC).date()
