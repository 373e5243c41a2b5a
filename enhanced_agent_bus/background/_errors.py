"""Errors raised by the background subsystem (audit and metering sinks).

::

    AgentBusError
      ├─ BackendUnavailableError
      │    └─ SinkUnavailableError          a sink cannot be opened, read or written
      ├─ AuditChainConflictError            another writer appended to the same audit log
      └─ AuditLogCorruptError (ValueError)  a stored audit record cannot be read back

They subclass the package tree so a caller can catch ``AgentBusError`` for
anything from the bus. Messages name the sink, the target (a path or a
redacted URL, never a password) and what to do.
"""

from __future__ import annotations

from ..errors import AgentBusError, BackendUnavailableError


class SinkUnavailableError(BackendUnavailableError):
    """An audit or metering sink cannot be opened, read or written."""

    def __init__(self, sink: str, target: str, problem: str, hint: str) -> None:
        super().__init__(f"{sink} at {target!r} is unavailable: {problem}. {hint}")
        self.sink = sink
        self.target = target


class AuditChainConflictError(AgentBusError):
    """The audit log's last record is not the one this writer chained from.

    Raised by a sink's ``write_batch`` when ``records[0].prev_hash`` does not
    match the stored head: another process appended to the same log. The
    writer re-reads the head and retries; a conflict is never a lost record.
    """

    def __init__(self, target: str, expected_prev_hash: str, stored_head_hash: str) -> None:
        super().__init__(
            f"audit log {target!r} moved on: this batch chains from {expected_prev_hash[:16]!r}... "
            f"but the stored head is {stored_head_hash[:16]!r}.... Another writer appended to the "
            "same log; the batch is rebuilt on the new head. Give each bus its own log (SQLite "
            "file or stream key) if this repeats."
        )
        self.target = target
        self.expected_prev_hash = expected_prev_hash
        self.stored_head_hash = stored_head_hash


class AuditLogCorruptError(AgentBusError, ValueError):
    """A stored audit record cannot be decoded into an :class:`AuditRecord`."""

    def __init__(self, target: str, position: str, problem: str) -> None:
        super().__init__(
            f"audit log {target!r} holds an unreadable record at {position}: {problem}. "
            "The log was changed outside the bus: restore it from a backup or keep it as evidence."
        )
        self.target = target
        self.position = position
