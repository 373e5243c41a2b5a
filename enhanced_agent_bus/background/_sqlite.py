"""One SQLite connection driven from one dedicated thread.

SQLite calls block, so they never run on the event loop. Each database gets
a single-thread executor rather than ``asyncio.to_thread``: the connection is
then only ever touched by its own thread (no ``check_same_thread`` games), a
write abandoned by a timeout finishes before the retry starts (so the retry
sees it and stays idempotent), and a slow disk cannot exhaust the loop's
shared default pool.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ._errors import SinkUnavailableError

logger = logging.getLogger(__name__)

R = TypeVar("R")


class SQLiteDatabase:
    """A SQLite file opened in WAL mode, with every call run on its own thread.

    Args:
        path: the database file (created unless ``read_only``).
        what: names the database in errors (``"SQLite audit log"``).
        read_only: open an existing file without ever writing to it (verification).
        busy_timeout_s: how long a write waits for another process's lock.
    """

    def __init__(
        self, path: str | Path, *, what: str, read_only: bool = False, busy_timeout_s: float = 5.0
    ) -> None:
        self.path = Path(path)
        self.what = what
        self.read_only = read_only
        self._busy_timeout_s = busy_timeout_s
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    async def open(self, schema: str, tables: Mapping[str, tuple[str, ...]]) -> None:
        """Connect, apply ``schema`` (idempotent DDL), and prove the file is writable.

        ``tables`` maps each table this store reads to its columns; a file whose
        tables have other columns (another program, another layout) is refused.

        Raises:
            SinkUnavailableError: the file cannot be created, opened or written.
        """
        if self._executor is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentbus-sqlite")
        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(
                executor, self._connect, schema, tables
            )
        except (sqlite3.Error, OSError) as exc:
            executor.shutdown(wait=False)
            raise self._unavailable(exc) from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor = executor

    async def run(self, call: Callable[[sqlite3.Connection], R]) -> R:
        """Run ``call(connection)`` on the database thread.

        Raises:
            SinkUnavailableError: the database is closed or SQLite failed.
        """
        executor, conn = self._executor, self._conn
        if executor is None or conn is None:
            raise SinkUnavailableError(
                self.what, str(self.path), "it is not open", "Call 'await sink.open()' first."
            )
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, call, conn)
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    async def aclose(self) -> None:
        """Close the connection on its thread; never waits more than ``busy_timeout_s``."""
        executor, conn = self._executor, self._conn
        self._executor = None
        self._conn = None
        if executor is None:
            return
        try:
            if conn is not None:
                closing = asyncio.get_running_loop().run_in_executor(executor, conn.close)
                try:
                    async with asyncio.timeout(self._busy_timeout_s):
                        await asyncio.shield(closing)
                except TimeoutError:
                    # A statement abandoned by a sink timeout still runs; the thread closes
                    # the connection right after it (SQLite bounds it by the busy timeout).
                    logger.warning(
                        "%s %s is still busy; it closes when the running statement ends",
                        self.what,
                        self.path,
                    )
        finally:
            executor.shutdown(wait=False)

    def _connect(self, schema: str, tables: Mapping[str, tuple[str, ...]]) -> sqlite3.Connection:
        if self.read_only:
            if not self.path.is_file():
                raise FileNotFoundError(f"no such file: {str(self.path)!r}")
            uri = self.path.resolve().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=True)
            try:
                self._check_tables(conn, tables)
            except BaseException:
                conn.close()
                raise
            return conn
        conn = sqlite3.connect(
            self.path, isolation_level=None, timeout=self._busy_timeout_s, check_same_thread=True
        )
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning(
                    "%s %s runs in journal mode %s, not WAL (the filesystem may not support it)",
                    self.what,
                    self.path,
                    mode,
                )
            # WAL + NORMAL: a commit is durable against a process crash; only an OS crash
            # can lose the last transactions, and never corrupts the file.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(schema)
            self._check_tables(conn, tables)
            # Taking the write lock proves the file is writable now, not at the first flush.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_tables(
        self, conn: sqlite3.Connection, tables: Mapping[str, tuple[str, ...]]
    ) -> None:
        for table, expected in tables.items():
            columns = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))
            if columns and columns != expected:
                raise sqlite3.DatabaseError(
                    f"table {table!r} has columns {columns}, expected {expected}: the file was "
                    "written by another program or another layout; use a new file"
                )

    def _unavailable(self, exc: BaseException) -> SinkUnavailableError:
        if self.read_only:
            hint = "Check the path (pass --db FILE) and that the file is a SQLite audit database."
        else:
            hint = (
                "Check that the directory exists and is writable by this process, that the path "
                "is not a directory, and that no other program holds the file locked; or set "
                "sqlite_path to a writable location."
            )
        return SinkUnavailableError(self.what, str(self.path), f"{type(exc).__name__}: {exc}", hint)
