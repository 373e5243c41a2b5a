"""The contract every audit sink implements, and the append rule they share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from ._errors import AuditChainConflictError
from ._record import GENESIS_HASH, AuditRecord


@runtime_checkable
class AuditSink(Protocol):
    """Stores audit records in chain order and reads them back.

    ``write_batch`` is atomic and conditional: it appends only when
    ``records[0].prev_hash`` is the hash of the stored head (or the genesis
    hash for an empty log). When the records are already stored (a retry of a
    write that landed after its timeout) it does nothing; otherwise it raises
    :class:`AuditChainConflictError`. That rule makes retries safe and keeps
    the chain linear even if two writers share one log.
    """

    async def open(self) -> None:
        """Connect, create the schema, and prove the log is writable.

        Raises:
            SinkUnavailableError: naming the path or URL and what to do.
        """

    async def last_record(self) -> AuditRecord | None:
        """The stored head, from which a restarted writer continues the chain."""

    async def write_batch(self, items: Sequence[AuditRecord]) -> None:
        """Append ``items`` (consecutive records) in one transaction."""

    def iter_records(self, *, chunk_size: int = 1000) -> AsyncIterator[AuditRecord]:
        """Every record, oldest first, read ``chunk_size`` at a time.

        Raises:
            AuditLogCorruptError: a stored record cannot be decoded.
        """

    async def tail(self, count: int) -> list[AuditRecord]:
        """The newest ``count`` records, oldest first."""

    async def aclose(self) -> None:
        """Release connections and threads. Safe to call more than once."""


def should_append(
    target: str,
    head: tuple[int, str] | None,
    records: Sequence[AuditRecord],
    *,
    stored_hash_at_last_seq: str | None = None,
) -> bool:
    """Apply the append rule: True to append, False when the records are already stored.

    Args:
        target: names the log in the conflict error.
        head: ``(seq, hash)`` of the stored head, None for an empty log.
        records: the batch, already chained from what the writer believes is the head.
        stored_hash_at_last_seq: the stored hash at ``records[-1].seq`` when the sink
            can look it up cheaply; None means only the head is compared.

    Raises:
        AuditChainConflictError: the batch chains from a record that is not the head.
    """
    head_hash = head[1] if head is not None else GENESIS_HASH
    if records[0].prev_hash == head_hash:
        return True
    if head_hash == records[-1].hash or stored_hash_at_last_seq == records[-1].hash:
        return False
    raise AuditChainConflictError(target, records[0].prev_hash, head_hash)
