"""One batching worker: a bounded queue drained in batches into a pluggable async sink.

Audit and metering are both built on :class:`BatchingWorker`. The hot path
only calls :meth:`BatchingWorker.submit`, which appends to a bounded deque
and returns; everything that costs anything (building records, hashing,
JSON, I/O) happens in the flush task.

Drop policy: when the queue holds ``queue_size`` items, ``submit`` rejects the
*new* item, counts it in ``dropped`` and returns False. Already-accepted items
are never evicted, because accepting an item is a promise: every accepted item
is written before ``aclose()`` returns unless the sink keeps failing, and then
every item given up on is counted in ``discarded`` and logged. So at rest::

    accepted == written + discarded + queue_depth + retry_buffer_depth + in_flight

Retry policy: a failed or timed-out ``write_batch`` is retried ``max_retries``
times with exponential backoff (``backoff_initial_s * multiplier**n``, capped at
``backoff_max_s``). A batch whose retries all fail moves to the retry buffer
and is tried first at the next flush (one flush interval later), so order is
kept. The retry buffer holds at most ``retry_buffer_size`` items; beyond that
the oldest are discarded and counted (a buffer smaller than ``batch_size``
keeps only the newest part of a failed batch; 0 discards it). While the sink
stays down, new items wait in the queue and, once it is full, are dropped at
``submit``: memory is bounded by ``queue_size + retry_buffer_size`` items.

A sink may see the same ``items`` list object again after a failure or
timeout (the earlier call may still have landed), so sinks that are not
naturally idempotent can recognise a repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Generic, Protocol, TypeVar

from ..clock import Clock, SystemClock
from ..errors import BusStateError
from ._settings import BatchingSettings

if TYPE_CHECKING:
    from ..tasks import TaskSupervisor

logger = logging.getLogger(__name__)

_WARNING_INTERVAL_S: Final = 30.0

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class BatchSink(Protocol[T_contra]):
    """Where a :class:`BatchingWorker` writes its batches.

    ``write_batch`` writes all of ``items`` or raises; the worker bounds each
    call with a timeout and retries failures. It must not keep a reference to
    ``items`` after returning.
    """

    async def write_batch(self, items: Sequence[T_contra]) -> None: ...


class WorkerState(StrEnum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


class BatchingWorker(Generic[T]):
    """Queues items without blocking and writes them to ``sink`` in batches.

    Args:
        sink: the :class:`BatchSink` batches are written to.
        settings: batch size, flush interval, queue bound, timeout, retries.
        name: names the flush task and the log lines (``"audit"``, ``"metering"``).
        clock: times each flush for ``stats()``.

    Example::

        worker = BatchingWorker(sink, BatchingSettings(batch_size=500), name="audit")
        worker.start(supervisor)
        worker.submit(item)          # never blocks, never raises; False when dropped
        await worker.aclose()        # final flush
    """

    def __init__(
        self,
        sink: BatchSink[T],
        settings: BatchingSettings | None = None,
        *,
        name: str,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self._sink = sink
        self._settings = settings if settings is not None else BatchingSettings()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._batch_size = self._settings.batch_size
        self._write_limit = self._settings.write_limit
        self._queue_size = self._settings.queue_size
        self._queue: deque[T] = deque()
        self._retry: deque[T] = deque()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._state = WorkerState.NEW
        self._is_closed = False
        self._is_failing = False
        self._last_warning_at = 0.0
        self._accepted = 0
        self._dropped = 0
        self._written = 0
        self._discarded = 0
        self._in_flight = 0
        self._batches = 0
        self._last_batch_size = 0
        self._flush_seconds_sum = 0.0
        self._flush_seconds_count = 0
        self._last_flush_seconds = 0.0
        self._sink_errors = 0
        self._sink_timeouts = 0
        self._retries = 0

    @property
    def state(self) -> WorkerState:
        return self._state

    def submit(self, item: T) -> bool:
        """Queue ``item`` for the next batch; False (and counted) when it is dropped.

        Never blocks and never raises. Drops happen when the queue is full or
        the worker is closed. Call it from the event loop's thread.
        """
        queue = self._queue
        depth = len(queue)
        if depth >= self._queue_size or self._is_closed:
            self._dropped += 1
            return False
        queue.append(item)
        self._accepted += 1
        if depth + 1 == self._batch_size:
            # Wake the flush task once, when a full batch is first waiting; it drains
            # everything it finds, so later items need no further wake-up.
            self._wake.set()
        return True

    def start(self, supervisor: TaskSupervisor) -> None:
        """Start the flush task under ``supervisor``.

        Raises:
            BusStateError: the worker was already started or closed.
        """
        if self._state is not WorkerState.NEW:
            raise BusStateError(
                f"{self.name} worker is {self._state.value}; it can be started once. "
                "Create a new worker instead of restarting a closed one."
            )
        self._task = supervisor.spawn(self._run(), name=f"agentbus:{self.name}-flush")
        self._state = WorkerState.RUNNING

    async def flush(self) -> bool:
        """Write what is queued now; True when nothing is left waiting afterwards.

        Useful before reading a sink back (tests, the CLI, ``snapshot()``).
        Items submitted while the flush runs may be written too.
        """
        pending = len(self._retry) + len(self._queue)
        for _ in range(-(-pending // self._write_limit)):
            if not await self._write_next():
                break
        return not (self._retry or self._queue)

    async def aclose(self) -> None:
        """Stop accepting, write everything accepted, and stop the flush task.

        Bounded: a sink that keeps failing costs at most ``1 + max_retries``
        attempts of ``sink_timeout_s`` plus backoff, after which the rest is
        discarded, counted and logged. Safe to call more than once.
        """
        if self._state is WorkerState.CLOSED:
            return
        task = self._task
        if task is not None and not task.done():
            self._state = WorkerState.CLOSING
            self._wake.set()
            self._stopping.set()
            await asyncio.wait({task})
        # Never started, or the flush task was cancelled or crashed: drain here.
        if self._state is not WorkerState.CLOSED and (self._retry or self._queue):
            self._state = WorkerState.CLOSING
            await self._drain(final=True)
        self._close()

    def stats(self) -> dict[str, int | float]:
        """Cheap counters for metrics export (read at scrape time)."""
        return {
            "queue_depth": len(self._queue),
            "queue_capacity": self._queue_size,
            "submitted": self._accepted + self._dropped,
            "accepted": self._accepted,
            "dropped": self._dropped,
            "written": self._written,
            "discarded": self._discarded,
            "in_flight": self._in_flight,
            "batches": self._batches,
            "last_batch_size": self._last_batch_size,
            "avg_batch_size": self._written / self._batches if self._batches else 0.0,
            "flush_seconds_sum": self._flush_seconds_sum,
            "flush_seconds_count": self._flush_seconds_count,
            "last_flush_seconds": self._last_flush_seconds,
            "sink_errors": self._sink_errors,
            "sink_timeouts": self._sink_timeouts,
            "retries": self._retries,
            "retry_buffer_depth": len(self._retry),
        }

    async def _run(self) -> None:
        interval_s = self._settings.flush_interval_s
        is_sink_failing = False
        while self._state is WorkerState.RUNNING:
            if is_sink_failing:
                # The sink just failed every retry: wait a full interval (or for close)
                # before the next try, however full the queue is.
                try:
                    async with asyncio.timeout(interval_s):
                        await self._stopping.wait()
                except TimeoutError:
                    pass
            elif len(self._queue) < self._batch_size:
                try:
                    async with asyncio.timeout(interval_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._wake.clear()
            is_sink_failing = not await self._drain(final=False)
        await self._drain(final=True)
        self._close()

    async def _drain(self, *, final: bool) -> bool:
        """Write batches until empty; False at the first batch whose retries all fail."""
        while self._retry or self._queue:
            if not await self._write_next():
                if final:
                    self._discard_rest()
                return False
            # Give senders a turn between batches when a backlog is drained.
            await asyncio.sleep(0)
        return True

    def _close(self) -> None:
        self._state = WorkerState.CLOSED
        self._is_closed = True

    async def _write_next(self) -> bool:
        async with self._write_lock:
            batch = self._take_batch()
            if not batch:
                return True
            self._in_flight = len(batch)
            is_settled = False
            try:
                is_written = await self._write_with_retries(batch)
                if not is_written:
                    self._park(batch)
                is_settled = True
            finally:
                self._in_flight = 0
                if not is_settled:
                    # Cancelled mid-write (not a clean stop): keep the batch so that a
                    # later aclose() can still write it.
                    self._retry.extendleft(reversed(batch))
            return is_written

    def _take_batch(self) -> list[T]:
        size = self._write_limit
        retry, queue = self._retry, self._queue
        batch: list[T] = []
        while retry and len(batch) < size:
            batch.append(retry.popleft())
        for _ in range(min(size - len(batch), len(queue))):
            batch.append(queue.popleft())
        return batch

    async def _write_with_retries(self, batch: list[T]) -> bool:
        settings = self._settings
        attempts = 1 + settings.max_retries
        problem = ""
        for attempt in range(1, attempts + 1):
            started = self._clock.monotonic()
            try:
                async with asyncio.timeout(settings.sink_timeout_s):
                    await self._sink.write_batch(batch)
            except TimeoutError:
                self._sink_timeouts += 1
                problem = f"no answer within sink_timeout_s={settings.sink_timeout_s:g}"
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                self._record_success(len(batch), self._clock.monotonic() - started)
                return True
            self._sink_errors += 1
            logger.debug(
                "%s sink write failed (attempt %d/%d, %d items): %s",
                self.name,
                attempt,
                attempts,
                len(batch),
                problem,
            )
            if attempt < attempts:
                self._retries += 1
                await asyncio.sleep(settings.backoff_s(attempt))
        now = self._clock.monotonic()
        # One warning when the sink starts failing, then at most one per interval.
        if not self._is_failing or now - self._last_warning_at >= _WARNING_INTERVAL_S:
            self._last_warning_at = now
            log = logger.warning
        else:
            log = logger.debug
        self._is_failing = True
        log(
            "%s sink write of %d items failed after %d attempt(s); keeping up to %d for the "
            "next flush (%d queued, %d sink errors so far): %s",
            self.name,
            len(batch),
            attempts,
            settings.retry_buffer_size,
            len(self._queue),
            self._sink_errors,
            problem,
        )
        return False

    def _record_success(self, size: int, elapsed_s: float) -> None:
        self._written += size
        self._batches += 1
        self._last_batch_size = size
        self._flush_seconds_sum += elapsed_s
        self._flush_seconds_count += 1
        self._last_flush_seconds = elapsed_s
        if self._is_failing:
            self._is_failing = False
            logger.warning("%s sink recovered; %d items still queued", self.name, len(self._queue))

    def _park(self, batch: list[T]) -> None:
        retry = self._retry
        retry.extendleft(reversed(batch))
        overflow = len(retry) - self._settings.retry_buffer_size
        if overflow > 0:
            for _ in range(overflow):
                retry.popleft()
            self._discarded += overflow
            logger.error(
                "%s retry buffer is full (%d items): discarded the %d oldest items",
                self.name,
                self._settings.retry_buffer_size,
                overflow,
            )

    def _discard_rest(self) -> None:
        lost = len(self._retry) + len(self._queue)
        self._retry.clear()
        self._queue.clear()
        self._discarded += lost
        logger.error(
            "%s sink still failing at close: discarded %d accepted items that could not be written",
            self.name,
            lost,
        )
