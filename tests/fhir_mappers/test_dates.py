"""fhir_mappers.dates: FHIR date/dateTime/instant parsing, birth dates, ages and durations.

Policy under test (module docstring of fhir_mappers/dates.py): a date without a time is 00:00 UTC;
a partial date starts at the beginning of the period it names (``parse_start``) and ends at its
last second (``parse_end``); a dateTime without an offset is UTC; anything unparseable is None.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from fhir_mappers.dates import (
    age_in_years,
    latest_possible_birth,
    parse_birth_date,
    parse_end,
    parse_start,
    period_days,
)

PLUS2 = timezone(timedelta(hours=2))
MINUS5 = timezone(timedelta(hours=-5))

JUNK = [
    pytest.param(None, id="none"),
    pytest.param("", id="empty"),
    pytest.param("junk", id="text"),
    pytest.param(2021, id="int"),
    pytest.param(["2021-07-04"], id="list"),
    pytest.param({"value": "2021-07-04"}, id="dict"),
    pytest.param("2021-13", id="month-13"),
    pytest.param("2021-00", id="month-00"),
    pytest.param("2021-07-00", id="day-00"),
    pytest.param("2021-02-30", id="feb-30"),
    pytest.param("2023-02-29", id="feb-29-non-leap"),
    pytest.param("2021-7-4", id="single-digit-month-day"),
    pytest.param(" 2021-07-04", id="leading-space"),
    pytest.param("2021-07-04T25:00:00Z", id="hour-25"),
    pytest.param("2021-07-04T10:30:00+25:00", id="offset-25h"),
    pytest.param("21-07-04", id="two-digit-year"),
    pytest.param("07/04/2021", id="us-format"),
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2021", datetime(2021, 1, 1, tzinfo=UTC), id="year"),
        pytest.param("2021-07", datetime(2021, 7, 1, tzinfo=UTC), id="year-month"),
        pytest.param("2021-07-04", datetime(2021, 7, 4, tzinfo=UTC), id="date"),
        pytest.param("2024-02-29", datetime(2024, 2, 29, tzinfo=UTC), id="leap-day"),
        pytest.param(
            "2021-07-04T10:30:00Z", datetime(2021, 7, 4, 10, 30, tzinfo=UTC), id="datetime-z"
        ),
        pytest.param(
            "2021-07-04T10:30:00+02:00",
            datetime(2021, 7, 4, 10, 30, tzinfo=PLUS2),
            id="datetime-plus2",
        ),
        pytest.param(
            "2021-07-04T10:30:00.123-05:00",
            datetime(2021, 7, 4, 10, 30, 0, 123000, tzinfo=MINUS5),
            id="instant-millis-minus5",
        ),
        pytest.param(
            "2021-07-04T10:30:00", datetime(2021, 7, 4, 10, 30, tzinfo=UTC), id="no-offset-is-utc"
        ),
        pytest.param(
            "2019-06-01T03:28:17+00:00", datetime(2019, 6, 1, 3, 28, 17, tzinfo=UTC), id="synthea"
        ),
    ],
)
def test_parse_start_valid_value_gives_earliest_instant(value: str, expected: datetime) -> None:
    """Verify that parse_start reads a full or partial value at its earliest instant."""
    parsed = parse_start(value)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2021", datetime(2021, 12, 31, 23, 59, 59, tzinfo=UTC), id="year"),
        pytest.param("2021-07", datetime(2021, 7, 31, 23, 59, 59, tzinfo=UTC), id="year-month-31"),
        pytest.param("2021-04", datetime(2021, 4, 30, 23, 59, 59, tzinfo=UTC), id="year-month-30"),
        pytest.param("2024-02", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC), id="february-leap"),
        pytest.param("2023-02", datetime(2023, 2, 28, 23, 59, 59, tzinfo=UTC), id="february"),
        pytest.param("2021-07-04", datetime(2021, 7, 4, 23, 59, 59, tzinfo=UTC), id="date"),
        pytest.param(
            "2021-07-04T10:30:00Z", datetime(2021, 7, 4, 10, 30, tzinfo=UTC), id="datetime-z"
        ),
        pytest.param(
            "2021-07-04T10:30:00+02:00",
            datetime(2021, 7, 4, 10, 30, tzinfo=PLUS2),
            id="datetime-plus2",
        ),
        pytest.param(
            "2021-07-04T10:30:00", datetime(2021, 7, 4, 10, 30, tzinfo=UTC), id="no-offset-is-utc"
        ),
    ],
)
def test_parse_end_valid_value_gives_latest_instant(value: str, expected: datetime) -> None:
    """Verify that parse_end reads a partial value at the last second of its period."""
    parsed = parse_end(value)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("value", JUNK)
def test_parse_start_junk_gives_none(value: Any) -> None:
    """Verify that parse_start gives None for anything that is not a valid FHIR date."""
    assert parse_start(value) is None


@pytest.mark.parametrize("value", JUNK)
def test_parse_end_junk_gives_none(value: Any) -> None:
    """Verify that parse_end gives None for anything that is not a valid FHIR date/dateTime."""
    assert parse_end(value) is None


@pytest.mark.parametrize("value", ["2021", "2021-07", "2021-07-04", "2021-07-04T10:30:00+02:00"])
def test_parse_start_and_end_partial_value_never_inverted(value: str) -> None:
    """Verify that a value's start is never after its end (equal for a full dateTime)."""
    start, end = parse_start(value), parse_end(value)
    assert start is not None and end is not None and start <= end
    if "T" in value:
        assert start == end


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("1980-05-17", (date(1980, 5, 17), "day"), id="full"),
        pytest.param("1980-05", (date(1980, 5, 1), "month"), id="year-month"),
        pytest.param("1980", (date(1980, 1, 1), "year"), id="year"),
        pytest.param("2000-02-29", (date(2000, 2, 29), "day"), id="leap-day"),
        pytest.param(
            "1980-05-17T08:00:00Z", (date(1980, 5, 17), "day"), id="datetime-sent-as-birth"
        ),
        pytest.param("1980-02-30", (None, None), id="feb-30"),
        pytest.param("1980-13", (None, None), id="month-13"),
        pytest.param("1980-00", (None, None), id="month-00"),
        pytest.param("X2002-09-26", (None, None), id="validator-bad-case"),
        pytest.param("junk", (None, None), id="text"),
        pytest.param("", (None, None), id="empty"),
        pytest.param(None, (None, None), id="none"),
        pytest.param(1980, (None, None), id="int"),
    ],
)
def test_parse_birth_date_value_gives_date_and_precision(
    value: Any, expected: tuple[Any, Any]
) -> None:
    """Verify that parse_birth_date gives the first possible day and its precision."""
    assert parse_birth_date(value) == expected


@pytest.mark.parametrize(
    ("birth", "precision", "expected"),
    [
        pytest.param(date(2008, 1, 1), "year", date(2008, 12, 31), id="year"),
        pytest.param(date(2008, 2, 1), "month", date(2008, 2, 29), id="month-leap"),
        pytest.param(date(2009, 2, 1), "month", date(2009, 2, 28), id="month"),
        pytest.param(date(2008, 12, 20), "day", date(2008, 12, 20), id="day"),
    ],
)
def test_latest_possible_birth_partial_date_gives_last_day(
    birth: date, precision: Any, expected: date
) -> None:
    """Verify that a partial birth date is read at its latest possible day."""
    assert latest_possible_birth(birth, precision) == expected


@pytest.mark.parametrize(
    ("birth", "on", "expected"),
    [
        pytest.param(date(1980, 5, 17), date(2026, 11, 27), 46, id="after-birthday"),
        pytest.param(date(1980, 11, 28), date(2026, 11, 27), 45, id="day-before-birthday"),
        pytest.param(date(1980, 11, 27), date(2026, 11, 27), 46, id="on-birthday"),
        pytest.param(date(2008, 12, 20), date(2026, 12, 19), 17, id="turns-18-tomorrow"),
        pytest.param(date(2008, 12, 20), date(2026, 12, 20), 18, id="turns-18-today"),
        pytest.param(date(2000, 2, 29), date(2026, 2, 28), 25, id="leapling-feb-28"),
        pytest.param(date(2000, 2, 29), date(2026, 3, 1), 26, id="leapling-mar-1"),
        pytest.param(date(2000, 2, 29), date(2024, 2, 29), 24, id="leapling-leap-year"),
        pytest.param(date(2026, 11, 27), date(2026, 11, 27), 0, id="newborn"),
    ],
)
def test_age_in_years_birth_and_day_gives_completed_years(
    birth: date, on: date, expected: int
) -> None:
    """Verify that age_in_years counts completed years, including birthdays and 29 February."""
    assert age_in_years(birth, on) == expected


UCUM = "http://unitsofmeasure.org"


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        pytest.param({"value": 30, "unit": "days", "system": UCUM, "code": "d"}, 30.0, id="ucum-d"),
        pytest.param({"value": 30, "unit": "days"}, 30.0, id="unit-text-days"),
        pytest.param({"value": 30, "unit": "Days"}, 30.0, id="unit-text-capitalised"),
        pytest.param({"value": 1, "unit": "day"}, 1.0, id="unit-text-day"),
        pytest.param({"value": 2, "code": "wk"}, 14.0, id="weeks"),
        pytest.param({"value": 3, "unit": "months"}, 90.0, id="months-as-30-days"),
        pytest.param({"value": 1, "code": "mo"}, 30.0, id="ucum-mo"),
        pytest.param({"value": 1, "code": "a"}, 365.0, id="ucum-year"),
        pytest.param({"value": 36, "code": "h"}, 1.5, id="hours"),
        pytest.param({"value": 0.5, "code": "d"}, 0.5, id="fraction"),
        pytest.param({"value": 30}, 30.0, id="no-unit-means-days"),
        pytest.param({"value": 2, "unit": "days", "code": "wk"}, 14.0, id="code-wins-over-unit"),
        pytest.param({"value": 30, "code": "mg"}, None, id="not-a-time-unit"),
        pytest.param({"value": 30, "code": "min"}, None, id="minutes-unsupported"),
        pytest.param({"value": "30", "code": "d"}, None, id="string-value"),
        pytest.param({"code": "d"}, None, id="no-value"),
        pytest.param(None, None, id="none"),
        pytest.param(30, None, id="bare-number"),
        pytest.param([{"value": 30}], None, id="list"),
    ],
)
def test_period_days_duration_gives_days(quantity: Any, expected: float | None) -> None:
    """Verify that period_days converts a Duration to days, None for other units and junk."""
    assert period_days(quantity) == expected
