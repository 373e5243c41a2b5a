"""The audit log: a bus observer that hash-chains every outcome into a sink.

``on_decision`` / ``on_dead_letter`` / ``record_deliberation`` only enqueue a
small tuple (kind, wall time, message, detail) on the batching worker. The
flush task turns each batch into :class:`AuditRecord` objects — redacting
metadata, digesting the payload, chaining hashes — and appends them to the
sink in one transaction. The chain head lives in this object and in the sink;
on start it is read back from the sink, so a restarted bus continues the same
chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, TypeAlias, cast

import orjson

from ..models import AgentMessage, DeadLetter, DeliveryResult, Reason
from ._audit_sink import AuditSink
from ._errors import AuditChainConflictError
from ._observer import BatchedSinkObserver
from ._record import (
    GENESIS_HASH,
    AuditRecord,
    Redactor,
    SealedBatch,
    stored_from_canonical,
)
from ._settings import AuditSettings
from ._worker import BatchingWorker

if TYPE_CHECKING:
    from ..clock import Clock

logger = logging.getLogger(__name__)

_DECISION: Final = 0
_DEAD_LETTER: Final = 1
_DELIBERATION: Final = 2
_BUILD_SLICE: Final = 128


@dataclass(frozen=True, slots=True)
class _Deliberation:
    outcome: str
    reasons: tuple[Reason, ...]
    decided_by: str | None


#: (kind, wall-clock seconds, message, detail): what the hot path enqueues.
AuditEvent: TypeAlias = tuple[int, float, AgentMessage, DeliveryResult | DeadLetter | _Deliberation]


class _ChainWriter:
    """Builds records from events and appends them to the sink, advancing the head."""

    def __init__(self, sink: AuditSink, redactor: Redactor) -> None:
        self._sink = sink
        self._redactor = redactor
        self.head_seq = 0
        self.head_hash = GENESIS_HASH
        self.conflicts = 0

    def reset(self, head: AuditRecord | None) -> None:
        self.head_seq, self.head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)

    async def write_batch(self, items: Sequence[AuditEvent]) -> None:
        records = self.build(items[:_BUILD_SLICE])
        for start in range(_BUILD_SLICE, len(items), _BUILD_SLICE):
            # Sealing costs a few microseconds a record: give senders a turn between slices.
            await asyncio.sleep(0)
            self.build(items[start : start + _BUILD_SLICE], into=records)
        try:
            await self._sink.write_batch(records)
        except AuditChainConflictError:
            # Another writer moved the head: rebuild on it when the worker retries.
            self.conflicts += 1
            self.reset(await self._sink.last_record())
            raise
        self.head_seq, self.head_hash = records[-1].seq, records[-1].hash

    def build(self, events: Sequence[AuditEvent], into: SealedBatch | None = None) -> SealedBatch:
        """Records for ``events`` chained from the current head, or after ``into``'s last.

        The head is not moved. The flush task runs this for every audited decision,
        so it is written for speed: locals, one encode and one SHA-256 per record
        (:func:`seal_record` is the readable version of the same shape).
        """
        batch = into if into is not None else SealedBatch()
        if batch:
            seq, prev_hash = batch[-1].seq, batch[-1].hash
        else:
            seq, prev_hash = self.head_seq, self.head_hash
        redact = self._redactor.redact
        dumps, option, sha256 = orjson.dumps, orjson.OPT_UTC_Z, hashlib.sha256
        fromtimestamp = datetime.fromtimestamp
        append, store = batch.append, batch.stored.append
        last_message: AgentMessage | None = None
        digest = ""
        size = 0
        for kind, epoch_s, message, detail in events:
            if message is not last_message:
                # A broadcast audits one message per recipient: digest it once.
                encoded = dumps(message.payload, option=option)
                digest, size = sha256(encoded).hexdigest(), len(encoded)
                last_message = message
            seq += 1
            to_agent = message.to_agent
            actor: str | None = None
            if kind == _DECISION:
                result = cast(DeliveryResult, detail)
                kind_name, outcome, reasons = "decision", result.status.value, result.reasons
                to_agent = result.recipient or to_agent
                stage = reasons[0].stage if reasons else None
                codes = tuple([reason.code for reason in reasons]) if reasons else ()
            elif kind == _DEAD_LETTER:
                dead = cast(DeadLetter, detail)
                kind_name, outcome = "dead_letter", "dead_lettered"
                to_agent, stage, codes = dead.recipient, "delivery", (dead.code,)
            else:
                ruling = cast(_Deliberation, detail)
                kind_name, outcome, reasons = "deliberation", ruling.outcome, ruling.reasons
                stage = reasons[0].stage if reasons else "deliberation"
                codes = tuple([reason.code for reason in reasons])
                actor = ruling.decided_by
            values = (
                seq, kind_name, fromtimestamp(epoch_s, UTC), message.message_id,
                message.correlation_id, message.tenant_id, message.from_agent, to_agent,
                message.topic, message.message_type.value, outcome, stage, codes, actor,
                message.constitutional_hash, digest, size, redact(message.metadata), prev_hash,
            )  # fmt: skip
            canonical = dumps(values, option=option)
            prev_hash = sha256(canonical).hexdigest()
            append(AuditRecord(*values, prev_hash))
            store(stored_from_canonical(canonical, prev_hash))
        return batch


class AuditLog(BatchedSinkObserver[AuditSink, AuditEvent]):
    """Records every decision, dead letter and deliberation outcome, hash-chained.

    Implements :class:`~enhanced_agent_bus.observers.BusObserver`. The hot-path
    methods never block and never raise; a full queue drops the event and
    counts it (``stats()["dropped"]``).

    Args:
        sink: where records go (:class:`SQLiteAuditSink`, :class:`RedisStreamAuditSink`,
            or ``enhanced_agent_bus.testing.InMemoryAuditSink``). The log opens and closes it.
        settings: batching, retries and the metadata redaction pattern.

    Example::

        audit = AuditLog(SQLiteAuditSink("audit.sqlite3"))
        await audit.start(supervisor)
        audit.on_decision(message, result)
        await audit.aclose()          # everything accepted is written
    """

    def __init__(
        self,
        sink: AuditSink,
        settings: AuditSettings | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings if settings is not None else AuditSettings()
        self._writer = _ChainWriter(sink, Redactor(self.settings.redact_pattern))
        worker: BatchingWorker[AuditEvent] = BatchingWorker(
            self._writer, self.settings, name="audit", clock=clock
        )
        super().__init__(sink, worker)
        self._now = time.time

    @classmethod
    def from_settings(cls, settings: AuditSettings, *, redis_url: str | None = None) -> AuditLog:
        """An audit log on the sink ``settings`` name (``redis_url`` is the fallback URL).

        Raises:
            ConfigurationError: ``sink="redis"`` without any Redis URL.
        """
        from ._factory import create_audit_sink

        return cls(create_audit_sink(settings, redis_url=redis_url), settings)

    @property
    def head_seq(self) -> int:
        """Sequence number of the last record written (0 for an empty log)."""
        return self._writer.head_seq

    @property
    def head_hash(self) -> str:
        return self._writer.head_hash

    def on_decision(self, message: AgentMessage, result: DeliveryResult) -> None:
        self._submit((_DECISION, self._now(), message, result))

    def on_dead_letter(self, dead_letter: DeadLetter) -> None:
        self._submit((_DEAD_LETTER, self._now(), dead_letter.message, dead_letter))

    def record_deliberation(
        self,
        message: AgentMessage,
        *,
        outcome: str,
        reasons: Sequence[Reason] = (),
        decided_by: str | None = None,
    ) -> bool:
        """Audit how a deliberation ended; False when the event was dropped.

        Args:
            outcome: ``"approved"``, ``"denied"``, ``"timed_out"`` or another stable word.
            reasons: why (stage and code of each are recorded, not the text).
            decided_by: the reviewer or ``"consensus"``; None for a timeout.
        """
        detail = _Deliberation(outcome, tuple(reasons), decided_by)
        return self._submit((_DELIBERATION, self._now(), message, detail))

    def stats(self) -> dict[str, int | float]:
        stats = self._worker.stats()
        stats["chain_conflicts"] = self._writer.conflicts
        stats["head_seq"] = self._writer.head_seq
        return stats

    async def _open(self) -> None:
        # A restarted bus continues the chain the sink already holds.
        await super()._open()
        head = await self.sink.last_record()
        self._writer.reset(head)
        logger.debug("audit log continues the chain at seq %d", self._writer.head_seq)
