"""Background work: one batching worker, and the audit log and metering built on it.

Nothing here runs on the hot path except ``submit`` (an append to a bounded
deque): records are built, hashed and written in batches by a flush task.

Example::

    from enhanced_agent_bus.background import AuditLog, AuditSettings, SQLiteAuditSink

    audit = AuditLog(SQLiteAuditSink("agentbus-audit.sqlite3"), AuditSettings(batch_size=500))
    await audit.start(supervisor)     # the bus does this, and registers it as an observer
"""

from ._audit import AuditLog
from ._audit_sink import AuditSink, should_append
from ._chain import BreakKind, ChainBreak, ChainReport, ChainVerifier, verify_chain
from ._errors import AuditChainConflictError, AuditLogCorruptError, SinkUnavailableError
from ._factory import create_audit_sink, create_metering_sink
from ._metering import Metering, MeteringSink, UsageDelta, UsageKey, UsageTotals
from ._record import GENESIS_HASH, REDACTED, AuditRecord, Redactor, compute_record_hash
from ._redis_audit import RedisStreamAuditSink
from ._redis_metering import RedisHashMeteringSink
from ._settings import AuditSettings, BatchingSettings, MeteringSettings
from ._sqlite_audit import SQLiteAuditSink
from ._sqlite_metering import SQLiteMeteringSink
from ._worker import BatchingWorker, BatchSink, WorkerState

__all__ = [
    "GENESIS_HASH",
    "REDACTED",
    "AuditChainConflictError",
    "AuditLog",
    "AuditLogCorruptError",
    "AuditRecord",
    "AuditSettings",
    "AuditSink",
    "BatchSink",
    "BatchingSettings",
    "BatchingWorker",
    "BreakKind",
    "ChainBreak",
    "ChainReport",
    "ChainVerifier",
    "Metering",
    "MeteringSettings",
    "MeteringSink",
    "Redactor",
    "RedisHashMeteringSink",
    "RedisStreamAuditSink",
    "SQLiteAuditSink",
    "SQLiteMeteringSink",
    "SinkUnavailableError",
    "UsageDelta",
    "UsageKey",
    "UsageTotals",
    "WorkerState",
    "compute_record_hash",
    "create_audit_sink",
    "create_metering_sink",
    "should_append",
    "verify_chain",
]
