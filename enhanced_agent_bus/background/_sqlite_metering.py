"""The default metering sink: usage totals in a SQLite table, added with UPSERT."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from ._metering import UsageDelta, UsageKey, UsageTotals
from ._sqlite import SQLiteDatabase

#: Applied batch ids kept for idempotency (a retry comes seconds later, never 10k batches later).
_BATCH_IDS_KEPT: Final = 10_000

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS metering_usage (
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    message_type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    messages INTEGER NOT NULL,
    payload_bytes INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant_id, agent_id, message_type, outcome)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metering_batches (
    batch_id TEXT NOT NULL UNIQUE,
    applied_at REAL NOT NULL
);
"""

_TABLES: Final = {
    "metering_usage": (
        "tenant_id", "agent_id", "message_type", "outcome", "messages", "payload_bytes",
        "updated_at",
    ),
    "metering_batches": ("batch_id", "applied_at"),
}  # fmt: skip

_UPSERT: Final = """
INSERT INTO metering_usage
    (tenant_id, agent_id, message_type, outcome, messages, payload_bytes, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant_id, agent_id, message_type, outcome) DO UPDATE SET
    messages = messages + excluded.messages,
    payload_bytes = payload_bytes + excluded.payload_bytes,
    updated_at = excluded.updated_at
"""

_PRUNE: Final = (
    "DELETE FROM metering_batches WHERE rowid <= (SELECT max(rowid) FROM metering_batches) - ?"
)


class SQLiteMeteringSink:
    """Usage totals in a SQLite file (table ``metering_usage``), one transaction per batch.

    It can share a file with :class:`SQLiteAuditSink` (the default: one file
    holds both tables); WAL mode and a busy timeout let the two writers take
    turns.

    Args:
        path: the database file; created if missing (its directory must exist).
        read_only: open an existing file for reading totals only (the CLI).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self._db = SQLiteDatabase(path, what="SQLite metering store", read_only=read_only)

    @property
    def path(self) -> Path:
        return self._db.path

    async def open(self) -> None:
        await self._db.open("" if self._db.read_only else _SCHEMA, _TABLES)

    async def add_usage(self, batch_id: str, deltas: Sequence[UsageDelta]) -> None:
        if not deltas:
            return
        now = time.time()
        rows = [(*key, count, size, now) for key, count, size in deltas]

        def add(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                applied = conn.execute(
                    "INSERT OR IGNORE INTO metering_batches (batch_id, applied_at) VALUES (?, ?)",
                    (batch_id, now),
                ).rowcount
                if applied:
                    conn.executemany(_UPSERT, rows)
                    conn.execute(_PRUNE, (_BATCH_IDS_KEPT,))
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

        await self._db.run(add)

    async def read_totals(self) -> dict[UsageKey, UsageTotals]:
        def read(conn: sqlite3.Connection) -> list[tuple[str, str, str, str, int, int]]:
            try:
                return conn.execute(
                    "SELECT tenant_id, agent_id, message_type, outcome, messages, payload_bytes "
                    "FROM metering_usage ORDER BY tenant_id, agent_id, message_type, outcome"
                ).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []  # a file that has an audit log but never had metering
                raise

        rows = await self._db.run(read)
        return {
            UsageKey(tenant, agent, mtype, outcome): UsageTotals(int(count), int(size))
            for tenant, agent, mtype, outcome, count, size in rows
        }

    async def aclose(self) -> None:
        await self._db.aclose()
