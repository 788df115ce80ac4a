"""FHIR date, dateTime and instant values to timezone-aware datetimes.

Policy (one for the whole service):

- A value without a time ("2021-07-04") means 00:00 UTC that day.
- A partial date is read at the start of the period it names when it starts something
  (``parse_start``: "2021" -> 2021-01-01, "2021-07" -> 2021-07-01) and at the end of it when it ends
  something (``parse_end``: "2021" -> 2021-12-31T23:59:59). Start and end are therefore never later
  or earlier than the truth allows, and a partial-date trial never looks longer than it could be on
  the wrong side.
- A dateTime with a time but no offset (not valid FHIR, but seen) is taken as UTC.
- Anything unparseable gives ``None``; the caller records a data gap where the date matters.
- Date arithmetic on values from FHIR goes through ``shift``, which answers ``None`` instead of
  raising when the result would leave the calendar (a supply of 3,000,000 days, year 9999).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta

from fhir_mappers.codes import number
from fhir_mappers.facts import BirthPrecision

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def _partial(value: str) -> tuple[int, int | None, int | None] | None:
    match = _PARTIAL.match(value)
    if not match:
        return None
    year, month, day = match.groups()
    return int(year), int(month) if month else None, int(day) if day else None


def parse_start(value: object) -> datetime | None:
    """The earliest instant a FHIR date/dateTime can mean."""
    if not isinstance(value, str) or not value:
        return None
    parts = _partial(value)
    if parts is not None:
        year, month, day = parts
        try:
            return datetime(
                year,
                1 if month is None else month,
                1 if day is None else day,
                tzinfo=UTC,
            )
        except ValueError:
            return None
    return _parse_datetime(value)


def parse_end(value: object) -> datetime | None:
    """The latest instant a FHIR date/dateTime can mean."""
    if not isinstance(value, str) or not value:
        return None
    parts = _partial(value)
    if parts is not None:
        year, month, day = parts
        try:
            if month is None:
                last = date(year, 12, 31)
            elif day is None:
                last = date(year, month, calendar.monthrange(year, month)[1])
            else:
                last = date(year, month, day)
        except ValueError:
            return None
        return datetime.combine(last, time(23, 59, 59), tzinfo=UTC)
    return _parse_datetime(value)


def _parse_datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_birth_date(value: object) -> tuple[date | None, BirthPrecision | None]:
    """A Patient.birthDate with its precision ("year", "month" or "day")."""
    if not isinstance(value, str):
        return None, None
    parts = _partial(value[:10])
    if parts is None:
        return None, None
    year, month, day = parts
    try:
        if month is None:
            return date(year, 1, 1), "year"
        if day is None:
            return date(year, month, 1), "month"
        return date(year, month, day), "day"
    except ValueError:
        return None, None


def latest_possible_birth(birth: date, precision: BirthPrecision) -> date:
    """The last day a partial birth date can stand for (used to never miss a minor)."""
    if precision == "year":
        return date(birth.year, 12, 31)
    if precision == "month":
        return date(birth.year, birth.month, calendar.monthrange(birth.year, birth.month)[1])
    return birth


def age_in_years(birth: date, on: date) -> int:
    """Completed years of age on a given day."""
    years = on.year - birth.year
    if (on.month, on.day) < (birth.month, birth.day):
        years -= 1
    return years


def shift(moment: datetime, *, days: float = 0.0, weeks: float = 0.0) -> datetime | None:
    """``moment`` moved by the given days and weeks, or None if that leaves the calendar."""
    try:
        return moment + timedelta(days=days, weeks=weeks)
    except (OverflowError, ValueError):
        return None


def period_days(quantity: object) -> float | None:
    """A FHIR Duration (e.g. expectedSupplyDuration) in days, if its unit is a time unit."""
    if not isinstance(quantity, dict):
        return None
    value = number(quantity.get("value"))
    if value is None:
        return None
    unit = str(quantity.get("code") or quantity.get("unit") or "d").lower()
    factor = _DURATION_DAYS.get(unit)
    return None if factor is None else value * factor


_DURATION_DAYS: dict[str, float] = {
    "d": 1,
    "day": 1,
    "days": 1,
    "wk": 7,
    "week": 7,
    "weeks": 7,
    "mo": 30,
    "month": 30,
    "months": 30,
    "a": 365,
    "year": 365,
    "years": 365,
    "h": 1 / 24,
    "hour": 1 / 24,
    "hours": 1 / 24,
}
