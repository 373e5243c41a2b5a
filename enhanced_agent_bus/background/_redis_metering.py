"""Usage totals in two Redis hashes, added with ``HINCRBY`` in one transaction per batch.

``{prefix}:messages`` and ``{prefix}:payload_bytes`` map the field
``tenant|agent|message_type|outcome`` to a running total (ids cannot contain
``|``). Each batch also sets ``{prefix}:batch:{id}`` (expiring after a day)
inside the same ``MULTI``/``EXEC``, guarded by ``WATCH``, so a batch retried
after a timeout is applied once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from redis.exceptions import RedisError, WatchError

from ._metering import UsageDelta, UsageKey, UsageTotals
from ._redis import RedisConnection, decode_text, redact_url, unavailable
from ._settings import DEFAULT_METERING_KEY_PREFIX

_WHAT: Final = "Redis metering hashes"
_BATCH_MARKER_TTL_S: Final = 86_400


def _field(key: UsageKey) -> str:
    return "|".join(key)


class RedisHashMeteringSink:
    """Usage totals in Redis hashes under ``key_prefix`` (shared by every process using it).

    Args:
        url: ``redis://host:port/db`` (a password in it never appears in errors).
        key_prefix: namespace of the hashes.
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = DEFAULT_METERING_KEY_PREFIX,
        connect_timeout_s: float = 2.0,
        socket_timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.key_prefix = key_prefix
        self._redis = RedisConnection(
            url,
            what=_WHAT,
            connect_timeout_s=connect_timeout_s,
            socket_timeout_s=socket_timeout_s,
        )

    @property
    def messages_key(self) -> str:
        return f"{self.key_prefix}:messages"

    @property
    def bytes_key(self) -> str:
        return f"{self.key_prefix}:payload_bytes"

    @property
    def _target(self) -> str:
        return f"{redact_url(self.url)} {self.key_prefix}"

    async def open(self) -> None:
        await self._redis.open()

    async def add_usage(self, batch_id: str, deltas: Sequence[UsageDelta]) -> None:
        if not deltas:
            return
        client = self._redis.client(self._target)
        marker = f"{self.key_prefix}:batch:{batch_id}"
        try:
            async with client.pipeline(transaction=True) as pipe:
                await pipe.watch(marker)
                if await pipe.exists(marker):
                    return  # this batch landed on an earlier, timed-out attempt
                pipe.multi()  # type: ignore[no-untyped-call]
                for key, count, size in deltas:
                    field = _field(key)
                    pipe.hincrby(self.messages_key, field, count)
                    pipe.hincrby(self.bytes_key, field, size)
                pipe.set(marker, 1, ex=_BATCH_MARKER_TTL_S)
                await pipe.execute()
        except WatchError:
            return  # the marker appeared meanwhile: the earlier attempt applied this batch
        except (RedisError, OSError) as exc:
            raise unavailable(_WHAT, self.url, exc) from exc

    async def read_totals(self) -> dict[UsageKey, UsageTotals]:
        client = self._redis.client(self._target)
        try:
            counts = await client.hgetall(self.messages_key)
            sizes = await client.hgetall(self.bytes_key)
        except (RedisError, OSError) as exc:
            raise unavailable(_WHAT, self.url, exc) from exc
        totals: dict[UsageKey, UsageTotals] = {}
        for raw_field, raw_count in counts.items():
            parts = decode_text(raw_field).split("|")
            if len(parts) != 4:
                continue  # not written by this sink
            totals[UsageKey(*parts)] = UsageTotals(
                int(raw_count), int(sizes.get(raw_field, 0) or 0)
            )
        return dict(sorted(totals.items()))

    async def aclose(self) -> None:
        await self._redis.aclose()
