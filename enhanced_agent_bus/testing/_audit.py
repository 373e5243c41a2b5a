"""An in-memory audit sink: a real :class:`~enhanced_agent_bus.background.AuditSink` for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Final

from ..background import AuditRecord, SinkUnavailableError, should_append

_DEFAULT_CAPACITY: Final = 1_000_000


class InMemoryAuditSink:
    """Keeps audit records in a list, following the same append rule as the real sinks.

    ``records`` is the stored log, oldest first. Tests may edit it to simulate
    tampering and then run :func:`~enhanced_agent_bus.background.verify_chain`
    on it. The sink refuses to grow past ``capacity`` records (a write then
    fails like a full disk would, and the worker retries and counts it).

    Example::

        sink = InMemoryAuditSink()
        async with AgentBus(settings, audit_sink=sink) as bus:
            ...
        assert verify_chain(sink.records).is_intact
    """

    def __init__(self, *, capacity: int = _DEFAULT_CAPACITY) -> None:
        self.records: list[AuditRecord] = []
        self.capacity = capacity
        self.is_open = False
        self.batches_written = 0

    async def open(self) -> None:
        self.is_open = True

    async def last_record(self) -> AuditRecord | None:
        return self.records[-1] if self.records else None

    async def write_batch(self, items: Sequence[AuditRecord]) -> None:
        if not items:
            return
        if not self.is_open:
            raise SinkUnavailableError(
                "in-memory audit sink", "memory", "it is not open", "Call 'await sink.open()'."
            )
        head = (self.records[-1].seq, self.records[-1].hash) if self.records else None
        last_seq = items[-1].seq
        stored = self.records[last_seq - 1].hash if 0 < last_seq <= len(self.records) else None
        if not should_append("memory", head, items, stored_hash_at_last_seq=stored):
            return
        if len(self.records) + len(items) > self.capacity:
            raise SinkUnavailableError(
                "in-memory audit sink",
                "memory",
                f"it is full ({self.capacity} records)",
                "Create it with a larger capacity.",
            )
        self.records.extend(items)
        self.batches_written += 1

    async def iter_records(self, *, chunk_size: int = 1000) -> AsyncIterator[AuditRecord]:
        for record in list(self.records):
            yield record

    async def tail(self, count: int) -> list[AuditRecord]:
        return self.records[-count:] if count > 0 else []

    async def aclose(self) -> None:
        self.is_open = False
