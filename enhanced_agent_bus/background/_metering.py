"""Metering: message counts and payload bytes per (tenant, agent, message type, outcome).

``on_decision`` enqueues one small tuple. The flush task adds a whole batch
up in memory and hands the sink one delta per distinct key, which the sink
adds to its stored totals (SQLite UPSERT, Redis ``HINCRBY``). ``agent_id`` is
the *sending* agent: the one whose work is being paid for.

Each aggregated batch carries an id that stays the same across the worker's
retries of that batch, and sinks apply a batch id at most once, so a write
that lands after its timeout is not counted twice when it is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeAlias, runtime_checkable

from ..models import (
    AgentMessage,
    DeadLetter,
    DeliveryResult,
    DeliveryStatus,
    MessageType,
    new_message_id,
)
from ._observer import BatchedSinkObserver
from ._settings import MeteringSettings
from ._worker import BatchingWorker

if TYPE_CHECKING:
    from ..clock import Clock

logger = logging.getLogger(__name__)


class UsageKey(NamedTuple):
    tenant_id: str
    agent_id: str
    message_type: str
    outcome: str


class UsageTotals(NamedTuple):
    messages: int
    payload_bytes: int


class UsageDelta(NamedTuple):
    """What one batch adds to one key's totals."""

    key: UsageKey
    messages: int
    payload_bytes: int


@runtime_checkable
class MeteringSink(Protocol):
    """Adds usage deltas to stored totals."""

    async def open(self) -> None:
        """Connect and create the schema.

        Raises:
            SinkUnavailableError: naming the path or URL and what to do.
        """

    async def add_usage(self, batch_id: str, deltas: Sequence[UsageDelta]) -> None:
        """Atomically add ``deltas``; a ``batch_id`` already applied is ignored."""

    async def read_totals(self) -> dict[UsageKey, UsageTotals]:
        """Every stored total."""

    async def aclose(self) -> None:
        """Release connections and threads. Safe to call more than once."""


#: (message, outcome): what the hot path enqueues; the flush task reads the rest.
UsageEvent: TypeAlias = tuple[AgentMessage, DeliveryStatus]


def aggregate(events: Sequence[UsageEvent]) -> list[UsageDelta]:
    """One delta per distinct key in ``events``, in first-seen order."""
    sums: dict[tuple[str, str, MessageType, DeliveryStatus], list[int]] = {}
    for message, outcome in events:
        key = (message.tenant_id, message.from_agent, message.message_type, outcome)
        size = message.payload_size_bytes
        total = sums.get(key)
        if total is None:
            sums[key] = [1, size]
        else:
            total[0] += 1
            total[1] += size
    return [
        UsageDelta(UsageKey(tenant, agent, mtype.value, outcome.value), count, size)
        for (tenant, agent, mtype, outcome), (count, size) in sums.items()
    ]


class _UsageAggregator:
    """The worker's sink: sums a batch, adds it to the metering sink, updates the snapshot."""

    def __init__(self, sink: MeteringSink, max_keys: int) -> None:
        self._sink = sink
        self._max_keys = max_keys
        self._pending: Sequence[UsageEvent] | None = None
        self._pending_id = ""
        self.totals: dict[UsageKey, UsageTotals] = {}
        self.snapshot_overflow = 0

    async def write_batch(self, items: Sequence[UsageEvent]) -> None:
        if items is not self._pending:
            # A new batch (not a retry of the same list): new idempotency id.
            self._pending, self._pending_id = items, new_message_id()
        deltas = aggregate(items)
        await self._sink.add_usage(self._pending_id, deltas)
        self._pending = None
        totals = self.totals
        for key, count, size in deltas:
            current = totals.get(key)
            if current is not None:
                totals[key] = UsageTotals(current.messages + count, current.payload_bytes + size)
            elif len(totals) < self._max_keys:
                totals[key] = UsageTotals(count, size)
            else:
                self.snapshot_overflow += 1


class Metering(BatchedSinkObserver[MeteringSink, UsageEvent]):
    """Counts messages and payload bytes per (tenant, agent, message type, outcome).

    Implements :class:`~enhanced_agent_bus.observers.BusObserver`; the hot-path
    methods never block and never raise (a full queue drops and counts).

    Args:
        sink: :class:`SQLiteMeteringSink` or :class:`RedisHashMeteringSink`. Metering
            opens and closes it.
        settings: batching and retries.

    Example::

        metering = Metering(SQLiteMeteringSink("agentbus-audit.sqlite3"))
        await metering.start(supervisor)
        ...
        await metering.flush()
        metering.snapshot()[UsageKey("acme", "planner", "command", "delivered")].messages
    """

    def __init__(
        self,
        sink: MeteringSink,
        settings: MeteringSettings | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings if settings is not None else MeteringSettings()
        self._aggregator = _UsageAggregator(sink, self.settings.max_snapshot_keys)
        worker: BatchingWorker[UsageEvent] = BatchingWorker(
            self._aggregator, self.settings, name="metering", clock=clock
        )
        super().__init__(sink, worker)

    @classmethod
    def from_settings(cls, settings: MeteringSettings, *, redis_url: str | None = None) -> Metering:
        """Metering on the sink ``settings`` name (``redis_url`` is the fallback URL).

        Raises:
            ConfigurationError: ``sink="redis"`` without any Redis URL.
        """
        from ._factory import create_metering_sink

        return cls(create_metering_sink(settings, redis_url=redis_url), settings)

    def on_decision(self, message: AgentMessage, result: DeliveryResult) -> None:
        self._submit((message, result.status))

    def on_dead_letter(self, dead_letter: DeadLetter) -> None:
        self._submit((dead_letter.message, DeliveryStatus.DEAD_LETTERED))

    def snapshot(self) -> dict[UsageKey, UsageTotals]:
        """Totals this bus has written so far (call ``await flush()`` first for the latest).

        Totals stored by earlier runs or other processes: ``await sink.read_totals()``.
        """
        return dict(self._aggregator.totals)

    def stats(self) -> dict[str, int | float]:
        stats = self._worker.stats()
        stats["snapshot_keys"] = len(self._aggregator.totals)
        stats["snapshot_overflow"] = self._aggregator.snapshot_overflow
        return stats
