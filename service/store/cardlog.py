"""The card log is written in the background, never on the hook call's path.

Decision: a hook answer is clinical; the card log is bookkeeping. ``submit`` puts a record on a
bounded in-memory queue without waiting (microseconds) and the answer goes out; one task per
process drains the queue in batches (one transaction per batch): after the first record of a
batch it waits ``LINGER_SECONDS`` for more, so that under load one transaction carries many
calls instead of one each (measured in docs/performance.md). So:

- the store's latency never adds to the hook's (a slow or absent database costs the hook call
  nothing);
- a store outage never turns a clinical answer into an error: the batch is retried a few times,
  then dropped and counted (``ketamine_cds_card_log_records_total{result="failed"}``);
- memory is bounded: when the queue is full (store down for a long time under load), new records
  are dropped and counted (``result="dropped"``);
- at shutdown (SIGTERM) the queue is drained, within a deadline.

What can be lost: the records still queued when a process is killed (SIGKILL, out of memory: at
most the last ``LINGER_SECONDS`` of calls plus any backlog) or the store stays down longer than
the retries. The card log is a statistic; feedback, which the
EHR sends once and expects to be kept, is written synchronously instead (``Store.add_feedback``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from service import metrics
from service.errors import StoreUnavailable
from service.store.records import CallRecord
from service.store.repository import Store

logger = logging.getLogger(__name__)

QUEUE_CAPACITY = 10_000
BATCH_SIZE = 200
LINGER_SECONDS = 0.1
RETRY_DELAYS_SECONDS = (0.5, 2.0)
DRAIN_TIMEOUT_SECONDS = 5.0


class CardLogWriter:
    def __init__(
        self,
        store: Store,
        *,
        capacity: int = QUEUE_CAPACITY,
        batch_size: int = BATCH_SIZE,
        retry_delays: tuple[float, ...] = RETRY_DELAYS_SECONDS,
        linger: float = LINGER_SECONDS,
    ) -> None:
        self._store = store
        self._queue: asyncio.Queue[CallRecord] = asyncio.Queue(maxsize=capacity)
        self._batch_size = batch_size
        self.retry_delays = retry_delays
        self._linger = linger
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_drop_warning = 0.0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="card-log-writer")

    def submit(self, record: CallRecord) -> bool:
        """Queue a record; False (counted, never raised) when the queue is full."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            metrics.card_log("dropped")
            now = asyncio.get_running_loop().time()
            if now - self._last_drop_warning > 60:
                self._last_drop_warning = now
                logger.warning("card log queue full: records are being dropped")
            return False
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def flush(self) -> None:
        """Wait until every record submitted so far has been written or given up."""
        await self._queue.join()

    async def close(self, timeout: float = DRAIN_TIMEOUT_SECONDS) -> None:
        """Drain the queue (within ``timeout``), then stop the task."""
        if self._task is None:
            return
        self._closing.set()  # no more lingering: write what is queued now
        try:
            async with asyncio.timeout(timeout):
                await self._queue.join()
        except TimeoutError:
            left = self._queue.qsize()
            metrics.card_log("dropped", left)
            logger.warning("card log not drained at shutdown dropped=%d", left)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self._linger > 0 and self._queue.qsize() < self._batch_size - 1:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self._linger)
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception:
                # Never let one bad batch stop the writer (the queue would fill up for good).
                metrics.card_log("failed", len(batch))
                logger.exception("card log batch failed records=%d", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[CallRecord]) -> None:
        for delay in (*self.retry_delays, None):
            try:
                await self._store.record_calls(batch)
            except StoreUnavailable:
                if delay is None:
                    metrics.card_log("failed", len(batch))
                    logger.warning("card log batch not written records=%d", len(batch))
                    return
                await asyncio.sleep(delay)
                continue
            metrics.card_log("written", len(batch))
            return
