"""The card log writer (service/store/cardlog.py): batching, without a database (a recording
stand-in for ``Store.record_calls``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from service.store.cardlog import CardLogWriter
from service.store.records import CallRecord, call_record
from tests.factories import NOW


class RecordingStore:
    def __init__(self) -> None:
        self.batches: list[int] = []

    async def record_calls(self, calls: Sequence[CallRecord]) -> None:
        self.batches.append(len(calls))


def _record() -> CallRecord:
    return call_record(
        at=NOW,
        service_id="trd-ketamine-screen",
        endpoint="service",
        hook_instance="hi-1",
        client_iss=None,
        tenant=None,
        ruleset_version="2026.11.2",
        recommendation="refer-for-evaluation",
        latency_ms=10.0,
        template_keys=("patient",),
        prefetch_sent=("patient",),
        fetched=(),
        incomplete_sources=0,
        cards=[],
    )


async def _batches(linger: float, calls: int, gap: float, batch_size: int = 200) -> list[int]:
    store = RecordingStore()
    writer = CardLogWriter(store, linger=linger, batch_size=batch_size)  # type: ignore[arg-type]
    writer.start()
    for _ in range(calls):
        writer.submit(_record())
        await asyncio.sleep(gap)
    await writer.close()
    return store.batches


@pytest.mark.parametrize(
    ("linger", "calls", "gap", "batch_size", "expected"),
    [
        # calls arriving within the linger share one transaction
        (0.2, 5, 0.001, 200, [5]),
        # without a linger each call that finds the queue empty is written alone
        (0.0, 3, 0.05, 200, [1, 1, 1]),
        # a full batch never waits: batches are capped at batch_size
        (0.2, 5, 0.0, 2, [2, 2, 1]),
    ],
)
def test_card_log_batches_calls_within_the_linger(
    linger: float, calls: int, gap: float, batch_size: int, expected: list[int]
) -> None:
    """Verify that the writer groups the calls of one linger window into one batch."""
    assert asyncio.run(_batches(linger, calls, gap, batch_size)) == expected


def test_card_log_close_writes_what_is_lingering() -> None:
    """Verify that shutdown cuts the linger short and writes what waits (none lost, no delay)."""
    started = asyncio.run(_timed(_batches(60.0, 3, 0.0)))
    assert started[0] == [3]
    assert started[1] < 2.0


async def _timed(work: Any) -> tuple[Any, float]:
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = await work
    return result, loop.time() - began


def test_card_log_writer_defaults_linger() -> None:
    """Verify that the shipped writer lingers a little (batching under load) but briefly."""
    from service.store import cardlog

    assert 0 < cardlog.LINGER_SECONDS <= 0.25
