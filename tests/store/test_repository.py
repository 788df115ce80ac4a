"""The store's repository, the same tests on SQLite and on PostgreSQL (``store_url`` is
parametrised by backend): schema and migrations, JWT token uses, the card log, feedback,
retention, the report's rows, and outages."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from prometheus_client import REGISTRY
from sqlalchemy import text

from service.cds_models import FeedbackItem
from service.errors import StoreUnavailable
from service.store import Store, StoreNotMigrated
from service.store.migrate import head_revision
from service.store.models import Base
from service.store.records import (
    CallRecord,
    CardRecord,
    ReferralCardRecord,
    call_record,
    feedback_record,
)
from tests.factories import NOW
from tests.store.helpers import CLOSED_PORT_URL, table_rows
from tests.store.support import sqlite_url

T = TypeVar("T")
AT = NOW.astimezone(UTC)


def run(url: str, work: Callable[[Store], Awaitable[T]], *, timeout: float | None = None) -> T:
    async def main() -> T:
        store = Store.open(url) if timeout is None else Store.open(url, timeout=timeout)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(main())


def errors(operation: str) -> float:
    value = REGISTRY.get_sample_value("ketamine_cds_store_errors_total", {"operation": operation})
    return value or 0.0


def _call(at: datetime = AT, *cards: tuple[str, str, str], latency: float = 12.5) -> CallRecord:
    return call_record(
        at=at,
        service_id="ketamine-order-safety",
        endpoint="service",
        hook_instance="hi-1",
        client_iss="https://ehr.example",
        tenant="t1",
        ruleset_version="2026.11.1",
        recommendation="not-recommended",
        latency_ms=latency,
        template_keys=("patient", "conditions"),
        prefetch_sent=("patient", "made-up-key"),
        fetched=("conditions",),
        incomplete_sources=1,
        cards=[CardRecord(*card) for card in cards],
    )


def _feedback(card: str, outcome: str = "overridden", **item: Any) -> FeedbackItem:
    body: dict[str, Any] = {
        "card": card,
        "outcome": outcome,
        "outcomeTimestamp": "2026-11-27T06:40:00Z",
    }
    if outcome == "accepted":
        body["acceptedSuggestions"] = [{"id": "s-1"}]
    else:
        body["overrideReason"] = {"reason": {"system": "http://x", "code": "cds-not-applicable"}}
    body.update(item)
    return FeedbackItem.model_validate(body)


# -- schema ---------------------------------------------------------------------------------------


def test_store_migrations_match_models_no_difference(store_url: str) -> None:
    """Verify that the shipped migrations create exactly the tables, columns, types and indexes
    the models declare (no autogenerate difference)."""

    async def compare(store: Store) -> list[Any]:
        async with store.engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )

    assert run(store_url, compare) == []


@contextmanager
def schema_version(url: str, version: str | None) -> Iterator[None]:
    """The store's recorded schema revision set to ``version`` (none: no row), restored after."""

    async def set_version(store: Store, value: str | None) -> None:
        async with store.engine.begin() as connection:
            await connection.execute(text("DELETE FROM alembic_version"))
            if value is not None:
                await connection.execute(
                    text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": value}
                )

    run(url, lambda store: set_version(store, version))
    try:
        yield
    finally:
        run(url, lambda store: set_version(store, head_revision()))


VERSIONS = {
    "current": (head_revision, "current", True),
    "no-schema": (lambda: None, "empty", False),
    "newer-release": (lambda: "9999_from_a_newer_release", "ahead", True),
}


@pytest.mark.parametrize(
    ("version", "status", "usable"), list(VERSIONS.values()), ids=list(VERSIONS)
)
def test_store_readiness_recorded_version_status(
    store_url: str, version: Callable[[], str | None], status: str, usable: bool
) -> None:
    """Verify that the schema state is read from the recorded revision: current, none (the
    upgrade command is named), or unknown (a newer release: still usable)."""
    with schema_version(store_url, version()):
        state = run(store_url, lambda store: store.readiness())
    assert (state.status, state.usable) == (status, usable)
    if not usable:
        assert "ketamine-cds db upgrade" in state.explain()


def test_store_prepare_postgresql_without_schema_refused_naming_command(
    backend: str, store_url: str
) -> None:
    """Verify that start-up on a PostgreSQL store without the schema stops with a message naming
    `ketamine-cds db upgrade`, while a new SQLite store is created and upgraded in place."""
    if backend == "postgresql":
        with schema_version(store_url, None), pytest.raises(StoreNotMigrated) as caught:
            run(store_url, lambda store: store.prepare())
        assert "ketamine-cds db upgrade" in str(caught.value)
        return
    fresh = store_url.replace(".sqlite3", "-fresh.sqlite3")
    state = run(fresh, lambda store: store.prepare())
    assert state.status == "current"
    assert {"token_use", "hook_call", "card_shown", "card_feedback"} <= set(table_rows(fresh))


def test_store_sqlite_created_on_first_start_with_folder(tmp_path: Path) -> None:
    """Verify that an SQLite store that does not exist yet (nor its folder) is created and
    migrated by the first start."""
    path = tmp_path / "new" / "folder" / "cds.sqlite3"
    state = run(sqlite_url(path), lambda store: store.prepare())
    assert state.status == "current" and state.current == (head_revision(),)
    assert path.is_file()


def test_store_upgrade_current_schema_nothing_done(store_url: str) -> None:
    """Verify that `db upgrade` on a current schema changes nothing."""
    before, after = run(store_url, lambda store: store.upgrade())
    assert before == after and after.status == "current"


# -- JWT token uses --------------------------------------------------------------------------------

LIVE = AT + timedelta(minutes=5)
LATER = LIVE + timedelta(hours=1)
AFTER_EXPIRY = LIVE + timedelta(seconds=1)
TOKEN_SEQUENCES: dict[str, tuple[list[tuple[str, str, datetime, datetime]], list[bool]]] = {
    "first-use-accepted": ([("iss-a", "j1", LIVE, AT)], [True]),
    "replay-refused": ([("iss-a", "j1", LIVE, AT), ("iss-a", "j1", LIVE, AT)], [True, False]),
    "replay-refused-until-expiry": (
        [("iss-a", "j1", LIVE, AT), ("iss-a", "j1", LIVE, LIVE - timedelta(seconds=1))],
        [True, False],
    ),
    "same-jti-after-expiry-accepted": (
        [("iss-a", "j1", LIVE, AT), ("iss-a", "j1", LATER, AFTER_EXPIRY)],
        [True, True],
    ),
    "same-jti-other-issuer-accepted": (
        [("iss-a", "j1", LIVE, AT), ("iss-b", "j1", LIVE, AT)],
        [True, True],
    ),
}


@pytest.mark.parametrize(
    ("claims", "expected"), list(TOKEN_SEQUENCES.values()), ids=list(TOKEN_SEQUENCES)
)
def test_store_claim_token_sequence_expected(
    store_url: str, claims: list[tuple[str, str, datetime, datetime]], expected: list[bool]
) -> None:
    """Verify that a jti (per iss) is accepted once and refused until its token expires."""

    async def claim_all(store: Store) -> list[bool]:
        return [await store.claim_token(*claim) for claim in claims]

    assert run(store_url, claim_all) == expected


def test_store_claim_token_concurrent_two_pools_exactly_one(store_url: str) -> None:
    """Verify that the same jti claimed at once 20 times through two separate connection pools
    (as two workers would) is accepted exactly once."""

    async def race() -> list[bool]:
        stores = [Store.open(store_url), Store.open(store_url)]
        try:
            claims = [stores[i % 2].claim_token("iss-a", "raced", LIVE, AT) for i in range(20)]
            return list(await asyncio.gather(*claims))
        finally:
            for store in stores:
                await store.close()

    assert sorted(asyncio.run(race())) == [False] * 19 + [True]


def test_store_token_use_digest_only_stored(store_url: str) -> None:
    """Verify that neither the issuer nor the jti is stored, only a digest of both."""
    run(store_url, lambda store: store.claim_token("https://ehr.example", "jti-visible", LIVE, AT))
    [row] = table_rows(store_url)["token_use"]
    assert set(row) == {"key", "expires_at"}
    assert "jti-visible" not in row["key"] and "ehr" not in row["key"]
    assert len(row["key"]) == 64


# -- card log and feedback -------------------------------------------------------------------------


def test_store_record_calls_rows_written(store_url: str) -> None:
    """Verify that a call and its cards are written with the fields the committee needs, and
    only the service's own prefetch key names."""
    call = _call(
        AT, ("card-1", "sign-contraindicated", "critical"), ("card-2", "sign-safety", "warning")
    )
    run(store_url, lambda store: store.record_calls([call]))
    rows = table_rows(store_url)
    [stored] = rows["hook_call"]
    assert stored["service_id"] == "ketamine-order-safety"
    assert stored["hook_instance"] == "hi-1" and stored["tenant"] == "t1"
    assert stored["prefetch_keys"] == "patient" and stored["fetched_keys"] == "conditions"
    assert stored["data_source"] == "mixed" and stored["card_count"] == 2
    assert stored["incomplete_sources"] == 1 and stored["latency_ms"] == 12.5
    cards = sorted(rows["card_shown"], key=lambda r: r["position"])
    assert [(c["uuid"], c["kind"], c["indicator"]) for c in cards] == [
        ("card-1", "sign-contraindicated", "critical"),
        ("card-2", "sign-safety", "warning"),
    ]
    assert all(c["call_id"] == stored["id"] for c in cards)


def test_store_record_calls_writes_referral_cards_in_the_same_batch(store_url: str) -> None:
    """Verify that a call's referral cards (keyed hash) are written with its card log record, a
    repeated card once, and that a call without them writes none."""
    referral = ReferralCardRecord("card-r", "k" * 64, "trd-ketamine-screen", "fp", AT)
    with_card = dataclasses.replace(
        _call(AT, ("card-r", "screen-referral", "info")), referral_cards=(referral,)
    )
    run(store_url, lambda store: store.record_calls([with_card, _call(AT), with_card]))
    rows = table_rows(store_url)
    assert len(rows["hook_call"]) == 3
    [stored] = rows["referral_card"]
    assert (stored["card_uuid"], stored["subject_key"]) == ("card-r", "k" * 64)


def _record(item: FeedbackItem, received_at: datetime = AT) -> Any:
    return feedback_record(
        service_id="s",
        client_iss="i",
        tenant=None,
        item=item,
        received_at=received_at,
        keep_comment=False,
    )


def test_store_add_feedback_repeated_item_stored_once(store_url: str) -> None:
    """Verify that an item sent again (an EHR retry, also twice within one body) is stored
    once."""
    record = _record(_feedback("card-1"))
    first = run(store_url, lambda store: store.add_feedback([record, record]))
    second = run(store_url, lambda store: store.add_feedback([record]))
    assert (len(first), len(second)) == (1, 0)
    assert len(table_rows(store_url)["card_feedback"]) == 1


def test_store_report_rows_latest_feedback_decides(store_url: str) -> None:
    """Verify that the report rows count each card once, with the outcome of its latest
    feedback, and count feedback for cards not in the log apart."""
    calls = [
        _call(AT, ("c-accepted", "screen-referral", "info"), latency=10),
        _call(AT, ("c-overridden", "screen-referral", "info"), latency=30),
        _call(AT, ("c-silent", "screen-verify", "warning"), latency=20),
    ]
    feedback = [
        _record(_feedback("c-accepted", "overridden", outcomeTimestamp="2026-11-27T06:31:00Z")),
        _record(_feedback("c-accepted", "accepted", outcomeTimestamp="2026-11-27T06:35:00Z")),
        _record(_feedback("c-overridden", "overridden", outcomeTimestamp="2026-11-27T06:32:00Z")),
        _record(_feedback("not-a-logged-card", "accepted")),
    ]

    async def work(store: Store) -> Any:
        await store.record_calls(calls)
        await store.add_feedback(feedback)
        return await store.report_rows(AT - timedelta(days=1), AT + timedelta(days=1))

    rows = run(store_url, work)
    day = AT.date()
    assert sorted(rows.cards, key=lambda r: (r[1], r[2])) == [
        ("ketamine-order-safety", "screen-referral", "accepted", None, day, 1),
        ("ketamine-order-safety", "screen-referral", "overridden", "cds-not-applicable", day, 1),
        ("ketamine-order-safety", "screen-verify", "none", None, day, 1),
    ]
    assert sorted(rows.kind_latency) == [
        ("ketamine-order-safety", "screen-referral", 10, 1),
        ("ketamine-order-safety", "screen-referral", 30, 1),
        ("ketamine-order-safety", "screen-verify", 20, 1),
    ]
    assert sorted(rows.calls) == [
        ("ketamine-order-safety", 10, 1, 0),
        ("ketamine-order-safety", 20, 1, 0),
        ("ketamine-order-safety", 30, 1, 0),
    ]
    assert rows.unmatched_feedback == 1
    assert isinstance(rows.cards[0][4], date)


# -- retention -------------------------------------------------------------------------------------


def test_store_purge_retention_bounded_batches(store_url: str) -> None:
    """Verify that the purge deletes expired token uses and card log and feedback rows older
    than the retention, at most batch x batches rows per table and run, and nothing recent."""
    old = AT - timedelta(days=91)
    calls = [_call(old, (f"old-{i}", "screen-verify", "warning")) for i in range(7)]
    calls.append(_call(AT, ("recent", "screen-verify", "warning")))
    feedback = [_record(_feedback("old-0"), old), _record(_feedback("recent"), AT)]

    async def work(store: Store) -> Any:
        await store.record_calls(calls)
        await store.add_feedback(feedback)
        expired_at, earlier = AT - timedelta(seconds=1), AT - timedelta(minutes=5)
        await store.claim_token("i", "expired", expired_at, earlier)
        await store.claim_token("i", "live", AT + timedelta(minutes=1), AT)
        first = await store.purge(AT, 90, batch=2, max_batches=2)
        second = await store.purge(AT, 90, batch=2, max_batches=2)
        return first, second

    first, second = run(store_url, work)
    assert (first.token_uses, first.cards, first.calls, first.feedback) == (1, 4, 4, 1)
    assert (second.token_uses, second.cards, second.calls, second.feedback) == (0, 3, 3, 0)
    rows = table_rows(store_url)
    assert [c["uuid"] for c in rows["card_shown"]] == ["recent"]
    assert len(rows["hook_call"]) == 1 and len(rows["token_use"]) == 1
    assert [f["card_uuid"] for f in rows["card_feedback"]] == ["recent"]


# -- outages --------------------------------------------------------------------------------------

OPERATIONS: dict[str, Callable[[Store], Awaitable[Any]]] = {
    "token": lambda store: store.claim_token("i", "j", LIVE, AT),
    "card_log": lambda store: store.record_calls([_call()]),
    "feedback": lambda store: store.add_feedback([_record(_feedback("c"))]),
    "readiness": lambda store: store.readiness(),
    "purge": lambda store: store.purge(AT, 90),
}


@pytest.fixture
def broken_store_url(backend: str, tmp_path: Path) -> str:
    """A store that fails: PostgreSQL where nothing listens; an SQLite file that is not a
    database (a damaged disk or a wrong path)."""
    if backend == "postgresql":
        return CLOSED_PORT_URL
    path = tmp_path / "damaged.sqlite3"
    path.write_bytes(b"this is not an SQLite database " * 200)
    return sqlite_url(path)


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_store_failing_operation_unavailable_and_counted(
    broken_store_url: str, operation: str
) -> None:
    """Verify that an operation on a store that cannot be reached or read raises
    StoreUnavailable (never another error, never a silent success), counted by operation, with
    a message that does not name the database."""
    before = errors(operation)
    with pytest.raises(StoreUnavailable) as caught:
        run(broken_store_url, OPERATIONS[operation])
    assert "127.0.0.1" not in caught.value.message and "damaged" not in caught.value.message
    assert errors(operation) == before + 1


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers (a hung database)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


def test_store_hung_server_unavailable_within_deadline(silent_server: int) -> None:
    """Verify that a database that accepts the connection and never answers costs at most the
    store's deadline, then StoreUnavailable."""
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{silent_server}/x"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        run(url, lambda store: store.claim_token("i", "j", LIVE, AT), timeout=0.5)
    assert time.monotonic() - started < 3.0
