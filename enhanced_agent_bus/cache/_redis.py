"""L2: sealed cache values in Redis, under a key prefix, with a TTL.

Each value is stored at ``<key_prefix><hex(key)>`` with ``SET ... PX <ttl>``
and sealed with HMAC-SHA256 (see :mod:`._integrity`). A value that fails
verification, or a key holding another Redis type, is counted as tampered,
deleted, and reported as a miss so the caller evaluates again.

This class does not hide Redis failures: ``get``/``set`` raise the Redis,
timeout or OS error. The tiered cache decides what a failure means (a miss, a
count and a circuit-breaker failure); this keeps the store simple to test
against a real server.
"""

from __future__ import annotations

import logging
from typing import Final, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from ..errors import ConfigurationError
from ._integrity import ValueSealer
from ._redis_client import create_redis_client
from ._settings import CacheSettings

logger = logging.getLogger(__name__)

_WRONG_TYPE: Final = "WRONGTYPE"


class RedisDecisionStore:
    """Sealed bytes in Redis.

    Args:
        client: a ``redis.asyncio.Redis`` (``decode_responses`` must be off).
        sealer: the HMAC sealer holding the shared secret.
        key_prefix: namespace of this cache's keys.
        ttl_s: lifetime of each entry (a memory bound; keys already change
            with the constitution).
        owns_client: close ``client`` (and its pool) in :meth:`aclose`.

    Raises:
        ConfigurationError: empty prefix or a TTL under one millisecond.

    Example::

        store = RedisDecisionStore.from_settings(settings)
        await store.set(key, b"...")
        await store.get(key)   # b"..." (or None: missing, expired, or tampered)
        await store.aclose()
    """

    def __init__(
        self,
        client: Redis,
        *,
        sealer: ValueSealer,
        key_prefix: str,
        ttl_s: float,
        owns_client: bool = False,
    ) -> None:
        if not key_prefix:
            raise ConfigurationError(
                "RedisDecisionStore key_prefix is empty; give every cache its own namespace, "
                "e.g. 'agentbus:decision:'."
            )
        ttl_ms = round(ttl_s * 1000)
        if ttl_ms < 1:
            raise ConfigurationError(
                f"RedisDecisionStore ttl_s={ttl_s!r} is under one millisecond; use >= 0.001."
            )
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ConfigurationError(
                "RedisDecisionStore needs a Redis client with decode_responses=False: "
                "cache values are binary."
            )
        self._client = client
        self._sealer = sealer
        self._prefix = key_prefix.encode()
        self._ttl_ms = ttl_ms
        self._owns_client = owns_client
        self.gets = 0
        self.sets = 0
        self.hits = 0
        self.misses = 0
        self.tampered = 0

    @classmethod
    def from_settings(
        cls, settings: CacheSettings, *, client_name: str | None = "agentbus-cache"
    ) -> RedisDecisionStore:
        """A store on a new pooled client built from ``settings`` (which it owns).

        Raises:
            ConfigurationError: ``settings.redis_url`` is unset, or the HMAC key is
                missing or too short (names ``AGENTBUS_CACHE__HMAC_KEY``).
        """
        if settings.redis_url is None:
            raise ConfigurationError(
                "RedisDecisionStore needs a Redis URL; set AGENTBUS_CACHE__REDIS_URL "
                "(or leave it unset to run the cache in-process only)."
            )
        sealer = ValueSealer(settings.hmac_key.get_secret_value())
        client = create_redis_client(
            settings.redis_url,
            pool_size=settings.pool_size,
            pool_timeout_s=settings.pool_timeout_s,
            socket_timeout_s=settings.socket_timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            client_name=client_name,
        )
        return cls(
            client,
            sealer=sealer,
            key_prefix=settings.key_prefix,
            ttl_s=settings.l2_ttl_s,
            owns_client=True,
        )

    def redis_key(self, key: bytes) -> bytes:
        """The Redis key an entry for ``key`` is stored under."""
        return self._prefix + key.hex().encode()

    async def get(self, key: bytes) -> bytes | None:
        """The verified payload for ``key``, or ``None`` (missing, expired or tampered).

        Raises:
            redis.exceptions.RedisError, OSError, TimeoutError: Redis failed.
        """
        rkey = self.redis_key(key)
        self.gets += 1
        try:
            sealed = cast("bytes | None", await self._client.get(rkey))
        except ResponseError as exc:
            if not str(exc).startswith(_WRONG_TYPE):
                raise
            await self._reject(rkey, "holds a non-string Redis type")
            return None
        if sealed is None:
            self.misses += 1
            return None
        payload = self._sealer.unseal(rkey, sealed)
        if payload is None:
            await self._reject(rkey, f"failed its integrity check ({len(sealed)} bytes)")
            return None
        self.hits += 1
        return payload

    async def set(self, key: bytes, payload: bytes) -> None:
        """Store ``payload`` for ``key`` with the TTL.

        Raises:
            redis.exceptions.RedisError, OSError, TimeoutError: Redis failed.
        """
        rkey = self.redis_key(key)
        await self._client.set(rkey, self._sealer.seal(rkey, payload), px=self._ttl_ms)
        self.sets += 1

    async def delete(self, key: bytes) -> None:
        """Remove the entry for ``key`` if there is one."""
        await self._client.delete(self.redis_key(key))

    async def aclose(self) -> None:
        """Close the client and its connection pool if this store owns them."""
        if self._owns_client:
            await self._client.aclose()

    def stats(self) -> dict[str, int | float]:
        """Counters: gets, sets, hits, misses, tampered."""
        return {
            "gets": self.gets,
            "sets": self.sets,
            "hits": self.hits,
            "misses": self.misses,
            "tampered": self.tampered,
        }

    async def _reject(self, rkey: bytes, why: str) -> None:
        self.tampered += 1
        logger.warning(
            "rejected L2 cache entry %s: it %s; deleted, the decision is evaluated again",
            rkey.decode(),
            why,
            extra={"cache_key": rkey.decode()},
        )
        await self._client.delete(rkey)
