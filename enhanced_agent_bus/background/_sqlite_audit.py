"""The default audit sink: a SQLite file in WAL mode, one transaction and one row per batch."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

import orjson

from ._audit_sink import should_append
from ._errors import AuditLogCorruptError
from ._record import AuditRecord, stored_texts
from ._sqlite import SQLiteDatabase

_FIELDS: Final = AuditRecord._fields

_SCHEMA: Final = (
    """
CREATE TABLE IF NOT EXISTS audit_batches (
    first_seq INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    records TEXT NOT NULL
);
CREATE VIEW IF NOT EXISTS audit_records AS SELECT
"""
    + ",\n".join(
        f"    json_extract(r.value, '$[{index}]') AS {name}" for index, name in enumerate(_FIELDS)
    )
    + """
FROM audit_batches AS b, json_each(b.records) AS r;
"""
)

_TABLES: Final = {"audit_batches": ("first_seq", "last_seq", "last_hash", "records")}
_HEAD: Final = "SELECT last_seq, last_hash FROM audit_batches ORDER BY first_seq DESC LIMIT 1"
_INSERT: Final = (
    "INSERT INTO audit_batches (first_seq, last_seq, last_hash, records) VALUES (?, ?, ?, ?)"
)


def _read_after(conn: sqlite3.Connection, *, after: int, limit: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT first_seq, records FROM audit_batches WHERE first_seq > ? "
        "ORDER BY first_seq LIMIT ?",
        (after, limit),
    ).fetchall()


def _read_newest(conn: sqlite3.Connection, *, count: int) -> list[tuple[Any, ...]]:
    """The newest batches holding at least ``count`` records, newest first."""
    rows: list[tuple[Any, ...]] = []
    held = 0
    for first_seq, last_seq, records in conn.execute(
        "SELECT first_seq, last_seq, records FROM audit_batches ORDER BY first_seq DESC"
    ):
        rows.append((first_seq, records))
        held += int(last_seq) - int(first_seq) + 1
        if held >= count:
            break
    return rows


class SQLiteAuditSink:
    """Audit records in a SQLite file: table ``audit_batches``, one row per written batch.

    A row holds ``first_seq``, ``last_seq``, ``last_hash`` and ``records``: a
    JSON array of the batch's records, each one :meth:`AuditRecord.stored_json`
    (its canonical array with the hash appended). One row per batch rather
    than per record makes an append one B-tree insert however large the batch,
    which is what lets the log keep up with the bus. For SQL, the view
    ``audit_records`` has one row and one column per record field::

        SELECT seq, outcome, codes FROM audit_records WHERE tenant_id = 'acme';

    Each batch is one ``BEGIN IMMEDIATE`` transaction that re-checks the stored
    head, so a retried batch is never stored twice and a second writer can
    never fork the chain. WAL mode lets ``agent-bus audit verify`` and ``tail``
    read while the bus writes.

    Args:
        path: the database file; created if missing (its directory must exist).
        read_only: open an existing log for reading only (``verify``, ``tail``).

    Example::

        audit = AuditLog(SQLiteAuditSink("agentbus-audit.sqlite3"))
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self._db = SQLiteDatabase(path, what="SQLite audit log", read_only=read_only)

    @property
    def path(self) -> Path:
        return self._db.path

    async def open(self) -> None:
        await self._db.open("" if self._db.read_only else _SCHEMA, _TABLES)

    async def last_record(self) -> AuditRecord | None:
        newest = await self.tail(1)
        return newest[0] if newest else None

    async def write_batch(self, items: Sequence[AuditRecord]) -> None:
        if not items:
            return
        target = str(self._db.path)
        first, last = items[0], items[-1]
        text = b"[" + b",".join(stored_texts(items)) + b"]"
        row = (first.seq, last.seq, last.hash, text.decode())

        def append(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                head = conn.execute(_HEAD).fetchone()
                same_start = conn.execute(
                    "SELECT last_seq, last_hash FROM audit_batches WHERE first_seq = ?",
                    (first.seq,),
                ).fetchone()
                stored = same_start[1] if same_start and same_start[0] == last.seq else None
                if should_append(target, head, items, stored_hash_at_last_seq=stored):
                    conn.execute(_INSERT, row)
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

        await self._db.run(append)

    async def iter_records(self, *, chunk_size: int = 1000) -> AsyncIterator[AuditRecord]:
        after = 0
        # A row is a whole batch; read a few at a time so a chunk is about chunk_size records.
        rows_per_read = max(1, chunk_size // 100)
        while True:
            rows = await self._db.run(partial(_read_after, after=after, limit=rows_per_read))
            for first_seq, text in rows:
                for record in self._records_of(first_seq, text):
                    yield record
            if len(rows) < rows_per_read:
                return
            after = rows[-1][0]

    async def tail(self, count: int) -> list[AuditRecord]:
        if count <= 0:
            return []
        rows = await self._db.run(partial(_read_newest, count=count))
        records = [
            record for first, text in reversed(rows) for record in self._records_of(first, text)
        ]
        return records[-count:]

    async def count(self) -> int:
        """Records stored (for tests and the CLI)."""
        row = await self._db.run(
            lambda conn: conn.execute(
                "SELECT coalesce(sum(last_seq - first_seq + 1), 0) FROM audit_batches"
            ).fetchone()
        )
        return int(row[0])

    async def aclose(self) -> None:
        await self._db.aclose()

    def _records_of(self, first_seq: object, text: str) -> Iterator[AuditRecord]:
        """The batch's records in order; raises at the first one that cannot be decoded."""
        where = f"the batch starting at seq {first_seq!r}"
        try:
            values = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise AuditLogCorruptError(str(self._db.path), where, f"not JSON ({exc})") from exc
        if not isinstance(values, list):
            raise AuditLogCorruptError(str(self._db.path), where, "not a JSON array of records")
        for index, item in enumerate(values):
            try:
                record = AuditRecord.from_values(item)
            except (ValueError, TypeError) as exc:
                raise AuditLogCorruptError(
                    str(self._db.path), f"record #{index + 1} of {where}", str(exc).splitlines()[0]
                ) from exc
            yield record
