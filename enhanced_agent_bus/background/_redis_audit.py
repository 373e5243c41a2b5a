"""Audit records in a Redis stream, for deployments where several hosts share one log.

Each record is one stream entry with one field, ``record``: its
:meth:`AuditRecord.stored_json` (the canonical array with the hash appended). A
batch is appended with ``XADD`` commands in one ``MULTI``/``EXEC`` pipeline,
guarded by ``WATCH`` on the stream: the head is re-read and checked inside
the guard, so a retried batch is never stored
twice and two writers can never fork the chain (the loser gets
:class:`AuditChainConflictError` and rebuilds on the new head).

The stream is never trimmed here: an audit log that silently loses its start
would fail verification. Archive and trim it deliberately.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from redis.exceptions import RedisError, WatchError

from ._audit_sink import should_append
from ._errors import AuditChainConflictError, AuditLogCorruptError
from ._record import AuditRecord, stored_texts
from ._redis import RedisConnection, decode_text, redact_url, unavailable
from ._settings import DEFAULT_AUDIT_STREAM_KEY

_WHAT: Final = "Redis audit stream"


def _entries(reply: Any) -> list[tuple[str, dict[Any, Any]]]:
    """Stream entries from an XRANGE / XREVRANGE reply, as (entry id, fields)."""
    return [(decode_text(entry_id), dict(fields or {})) for entry_id, fields in reply or ()]


class RedisStreamAuditSink:
    """Audit records appended to the Redis stream ``stream_key``.

    Args:
        url: ``redis://host:port/db`` (a password in it never appears in errors).
        stream_key: the stream holding this log; one log per key.
        connect_timeout_s / socket_timeout_s: how long to wait for Redis.

    Example::

        audit = AuditLog(RedisStreamAuditSink("redis://127.0.0.1:6379/0"))
    """

    def __init__(
        self,
        url: str,
        *,
        stream_key: str = DEFAULT_AUDIT_STREAM_KEY,
        connect_timeout_s: float = 2.0,
        socket_timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.stream_key = stream_key
        self._redis = RedisConnection(
            url,
            what=_WHAT,
            connect_timeout_s=connect_timeout_s,
            socket_timeout_s=socket_timeout_s,
        )

    @property
    def target(self) -> str:
        return f"{redact_url(self.url)} {self.stream_key}"

    async def open(self) -> None:
        await self._redis.open()

    async def last_record(self) -> AuditRecord | None:
        newest = await self.tail(1)
        return newest[0] if newest else None

    async def write_batch(self, items: Sequence[AuditRecord]) -> None:
        if not items:
            return
        client = self._redis.client(self.target)
        key = self.stream_key
        texts = stored_texts(items)
        try:
            async with client.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                newest = _entries(await pipe.xrevrange(key, count=1))
                head = None
                if newest:
                    stored = self._record_of(*newest[0])
                    head = (stored.seq, stored.hash)
                if not should_append(self.target, head, items):
                    return
                pipe.multi()  # type: ignore[no-untyped-call]
                for text in texts:
                    pipe.xadd(key, {"record": text})
                await pipe.execute()
        except WatchError as exc:
            raise AuditChainConflictError(self.target, items[0].prev_hash, "(changed)") from exc
        except (RedisError, OSError) as exc:
            raise unavailable(_WHAT, self.url, exc) from exc

    async def iter_records(self, *, chunk_size: int = 1000) -> AsyncIterator[AuditRecord]:
        client = self._redis.client(self.target)
        start = "-"
        while True:
            try:
                entries = _entries(
                    await client.xrange(self.stream_key, min=start, count=chunk_size)
                )
            except (RedisError, OSError) as exc:
                raise unavailable(_WHAT, self.url, exc) from exc
            for entry_id, fields in entries:
                yield self._record_of(entry_id, fields)
            if len(entries) < chunk_size:
                return
            start = "(" + entries[-1][0]

    async def tail(self, count: int) -> list[AuditRecord]:
        if count <= 0:
            return []
        client = self._redis.client(self.target)
        try:
            entries = _entries(await client.xrevrange(self.stream_key, count=count))
        except (RedisError, OSError) as exc:
            raise unavailable(_WHAT, self.url, exc) from exc
        return [self._record_of(entry_id, fields) for entry_id, fields in reversed(entries)]

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _record_of(self, entry_id: str, fields: dict[Any, Any]) -> AuditRecord:
        try:
            return AuditRecord.from_stored_json(fields[b"record"])
        except (KeyError, ValueError, TypeError) as exc:  # ValidationError is a ValueError
            raise AuditLogCorruptError(
                self.target, f"stream entry {entry_id}", str(exc).splitlines()[0]
            ) from exc
