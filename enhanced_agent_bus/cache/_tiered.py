"""The tiered decision cache: L1 (in process) -> L2 (Redis) -> loader.

* A hit in L1 is answered synchronously by :meth:`TieredCache.get_local`: no
  await, no I/O, no lock.
* On a miss, :meth:`TieredCache.get_or_load` runs L2 and then the loader under
  single flight, so concurrent identical misses cost one L2 read and at most
  one loader call. An L2 hit fills L1. A loaded value is stored in L1 at once
  and written to L2 in the background (through the bus's TaskSupervisor), so
  the caller never waits for the write.
* Redis failures and timeouts never reach the caller: each one is a miss, is
  counted, and feeds a circuit breaker. While the breaker is open the cache
  runs on L1 and the loader only, without touching Redis; after
  ``reset_timeout_s`` one probe goes through and a success closes it again.
* Concurrent L2 operations are capped at the pool size. Past the cap a read
  skips L2 (the loader is cheaper than a queue for a connection) and a write is
  dropped; both are counted. Nothing waits on the pool, nothing grows.

When L2 pays off: an L2 hit costs a Redis round trip (about 180-210 µs per
sequential GET with redis.asyncio + hiredis on the 2-core reference machine),
while an embedded Rego decision costs 10-30 µs. With the embedded engine a
shared L2 mostly adds latency to misses, so it is off by default; turn it on
(``AGENTBUS_CACHE__REDIS_URL``) for remote OPA (~280 µs per decision) or
policies that cost more than a round trip, or to share warm decisions between
many processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final, Generic, TypeVar

from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..clock import Clock
from ..errors import ConfigurationError
from ..resilience import BreakerState, CircuitBreaker
from ..tasks import TaskSupervisor
from ._codec import Codec
from ._lru import LRUCache
from ._redis import RedisDecisionStore
from ._settings import CacheSettings
from ._single_flight import SingleFlight

logger = logging.getLogger(__name__)

V = TypeVar("V")

#: What a failing or slow Redis raises: the client's errors, socket errors, deadlines.
_L2_FAILURES: Final = (RedisError, OSError, TimeoutError)
_DEFAULT_L2_DEADLINE_S: Final = 0.5


class TieredCache(Generic[V]):
    """A :class:`DecisionCache`: L1 LRU, optional L2 Redis behind a circuit breaker.

    Args:
        l1: the in-process tier.
        l2: the Redis tier, or ``None`` for an in-process cache.
        codec: turns values into bytes for L2 (required with ``l2``).
        breaker: guards L2 (default: a breaker named ``cache-l2`` with default settings).
        supervisor: spawns the background L2 writes; without one, writes are
            awaited (bounded by the L2 deadline).
        max_l2_inflight: cap on concurrent L2 operations (use the pool size).
        l2_deadline_s: overall deadline of one L2 operation.
        close_timeout_s: how long :meth:`aclose` waits for pending writes.

    Raises:
        ConfigurationError: ``l2`` without a ``codec``, or a bound out of range.

    Example::

        cache = TieredCache.from_settings(settings.cache, DecisionCodec(), supervisor=tasks)
        decision = cache.get_local(key)
        if decision is None:
            decision = await cache.get_or_load(key, lambda: engine.evaluate(document))
        await cache.aclose()
    """

    def __init__(
        self,
        l1: LRUCache[bytes, V],
        *,
        l2: RedisDecisionStore | None = None,
        codec: Codec[V] | None = None,
        breaker: CircuitBreaker | None = None,
        supervisor: TaskSupervisor | None = None,
        max_l2_inflight: int = 20,
        l2_deadline_s: float = _DEFAULT_L2_DEADLINE_S,
        close_timeout_s: float = 1.0,
    ) -> None:
        if l2 is not None and codec is None:
            raise ConfigurationError(
                "TieredCache has an L2 store but no codec; pass codec= (a Codec[V] that "
                "turns values into bytes and back)."
            )
        if max_l2_inflight < 1:
            raise ConfigurationError(f"max_l2_inflight={max_l2_inflight!r} must be >= 1.")
        if not l2_deadline_s > 0:
            raise ConfigurationError(f"l2_deadline_s={l2_deadline_s!r} must be > 0 seconds.")
        self._l1 = l1
        self._l2 = l2
        self._codec = codec
        self._breaker = breaker or CircuitBreaker("cache-l2")
        self._supervisor = supervisor
        self._max_l2_inflight = max_l2_inflight
        self._l2_deadline_s = l2_deadline_s
        self._close_timeout_s = close_timeout_s
        self._flights: SingleFlight[bytes, V] = SingleFlight()
        self._pending_writes: set[asyncio.Task[None]] = set()
        self._l2_inflight = 0
        self._closed = False

        self._requests = 0
        self._l1_late_hits = 0
        self._loads = 0
        self._load_errors = 0
        self._l2_hits = 0
        self._l2_misses = 0
        self._l2_errors = 0
        self._l2_timeouts = 0
        self._l2_decode_errors = 0
        self._l2_skipped_open = 0
        self._l2_skipped_busy = 0
        self._l2_writes = 0
        self._l2_writes_dropped = 0

    @classmethod
    def from_settings(
        cls,
        settings: CacheSettings,
        codec: Codec[V],
        *,
        supervisor: TaskSupervisor | None,
        clock: Clock | None = None,
    ) -> TieredCache[V]:
        """The cache ``settings`` describe: L1 only, or L1 + Redis L2 with a breaker.

        Raises:
            ConfigurationError: the L2 HMAC key is missing or too short.
        """
        l1: LRUCache[bytes, V] = LRUCache(settings.l1_maxsize, ttl_s=settings.l1_ttl_s, clock=clock)
        breaker = CircuitBreaker.from_settings("cache-l2", settings.breaker, clock=clock)
        if settings.redis_url is None:
            return cls(l1, breaker=breaker, supervisor=supervisor)
        return cls(
            l1,
            l2=RedisDecisionStore.from_settings(settings),
            codec=codec,
            breaker=breaker,
            supervisor=supervisor,
            max_l2_inflight=settings.pool_size,
            # A connect, a pool wait and a reply, each bounded by its own timeout.
            l2_deadline_s=settings.pool_timeout_s
            + settings.connect_timeout_s
            + settings.socket_timeout_s,
            close_timeout_s=settings.close_timeout_s,
        )

    @property
    def breaker(self) -> CircuitBreaker:
        """The L2 circuit breaker (health listens to its state changes)."""
        return self._breaker

    @property
    def has_l2(self) -> bool:
        return self._l2 is not None and not self._closed

    def get_local(self, key: bytes) -> V | None:
        """The L1 value for ``key`` or ``None``; synchronous, O(1), counted in L1 stats."""
        return self._l1.get(key)

    async def get_or_load(self, key: bytes, loader: Callable[[], Awaitable[V]]) -> V:
        """The value for ``key`` from L1, else L2, else ``await loader()``.

        Meant to follow a :meth:`get_local` miss: L1 is checked again (another task
        may have filled it meanwhile) without counting a second L1 lookup.

        Raises:
            Exception: whatever ``loader`` raised (shared by every coalesced caller,
                never cached). Redis errors are never raised.
        """
        self._requests += 1
        value = self._l1.peek(key)
        if value is not None:
            self._l1_late_hits += 1
            return value
        return await self._flights.do(key, lambda: self._load_through(key, loader))

    def clear_local(self) -> None:
        """Drop every L1 entry (L2 entries expire by TTL)."""
        self._l1.clear()

    async def aclose(self) -> None:
        """Wait up to ``close_timeout_s`` for pending L2 writes, then close the Redis pool.

        The cache keeps answering from L1 and the loader after it is closed.
        """
        if self._closed:
            return
        self._closed = True
        if self._pending_writes:
            _, pending = await asyncio.wait(
                set(self._pending_writes), timeout=self._close_timeout_s
            )
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._l2 is not None:
            await self._l2.aclose()

    def stats(self) -> dict[str, int | float]:
        """Counters for metrics and health, read at scrape time.

        ``l1_*``: lookups by :meth:`get_local` (hits, misses), evictions, expirations,
        size, maxsize; ``l1_late_hits``: :meth:`get_or_load` found L1 filled after a
        miss. ``requests``: calls of :meth:`get_or_load`; ``loads`` / ``load_errors``:
        loader calls that returned / raised; ``coalesced``: callers that shared
        another's flight; ``in_flight``: keys being loaded now. ``l2_hits`` /
        ``l2_misses``: flights answered / not answered by L2 (a skipped or failed
        read is a miss); ``l2_errors`` (of which ``l2_timeouts``): Redis failures;
        ``l2_tampered``: entries that failed the HMAC (deleted); ``l2_decode_errors``:
        verified entries the codec could not read; ``l2_skipped_open`` /
        ``l2_skipped_busy``: operations not attempted because the breaker was open /
        the pool was busy; ``l2_writes`` / ``l2_writes_dropped`` / ``l2_writes_pending``.
        ``breaker_state``: 0 closed, 1 half-open, 2 open; ``breaker_opened_total``.
        """
        l1 = self._l1
        l2_tampered = 0 if self._l2 is None else self._l2.tampered
        return {
            "l1_hits": l1.hits,
            "l1_misses": l1.misses,
            "l1_late_hits": self._l1_late_hits,
            "l1_evictions": l1.evictions,
            "l1_expirations": l1.expirations,
            "l1_size": len(l1),
            "l1_maxsize": l1.maxsize,
            "requests": self._requests,
            "loads": self._loads,
            "load_errors": self._load_errors,
            "coalesced": self._flights.coalesced,
            "in_flight": len(self._flights),
            "l2_enabled": int(self.has_l2),
            "l2_hits": self._l2_hits,
            "l2_misses": self._l2_misses,
            "l2_errors": self._l2_errors,
            "l2_timeouts": self._l2_timeouts,
            "l2_tampered": l2_tampered,
            "l2_decode_errors": self._l2_decode_errors,
            "l2_skipped_open": self._l2_skipped_open,
            "l2_skipped_busy": self._l2_skipped_busy,
            "l2_writes": self._l2_writes,
            "l2_writes_dropped": self._l2_writes_dropped,
            "l2_writes_pending": len(self._pending_writes),
            "breaker_state": int(self._breaker.state),
            "breaker_opened_total": self._breaker.stats()["opened_total"],
        }

    async def _load_through(self, key: bytes, loader: Callable[[], Awaitable[V]]) -> V:
        value = await self._read_l2(key)
        if value is not None:
            self._l2_hits += 1
            self._l1.set(key, value)
            return value
        self._l2_misses += 1
        try:
            value = await loader()
        except Exception:
            self._load_errors += 1
            raise
        self._loads += 1
        # Encode before caching anywhere: a codec bug then fails every caller the same
        # way instead of leaving a value in L1 that the first caller never received.
        raw = None if self._l2 is None or self._codec is None else self._codec.encode(value)
        self._l1.set(key, value)
        if raw is not None:
            await self._write_l2(key, raw)
        return value

    async def _read_l2(self, key: bytes) -> V | None:
        l2 = self._l2
        if l2 is None or self._closed:
            return None
        permit = self._acquire_l2()
        if permit is None:
            return None
        succeeded: bool | None = None
        try:
            async with asyncio.timeout(self._l2_deadline_s):
                raw = await l2.get(key)
            succeeded = True
        except _L2_FAILURES as exc:
            succeeded = False
            self._count_l2_failure("read", exc)
            return None
        finally:
            self._settle_l2(permit, succeeded)
        if raw is None:
            return None
        return self._decode(key, raw)

    def _decode(self, key: bytes, raw: bytes) -> V | None:
        codec = self._codec
        if codec is None:
            return None
        try:
            return codec.decode(raw)
        except Exception as exc:
            # The bytes passed the HMAC, so another codec version wrote them. Treating
            # them as a miss re-evaluates the decision: the safe direction. The fresh
            # value then overwrites the entry.
            self._l2_decode_errors += 1
            logger.warning(
                "could not decode L2 cache entry %s (%s); evaluating again",
                key.hex(),
                type(exc).__name__,
            )
            return None

    async def _write_l2(self, key: bytes, raw: bytes) -> None:
        if self._closed:
            return
        if not self._breaker.would_allow():
            self._l2_skipped_open += 1
            return
        if self._supervisor is None:
            await self._store_l2(key, raw)
            return
        if len(self._pending_writes) >= self._max_l2_inflight:
            self._l2_writes_dropped += 1
            return
        task = self._supervisor.spawn(self._store_l2(key, raw), name="agentbus:cache-l2-write")
        self._pending_writes.add(task)
        task.add_done_callback(self._pending_writes.discard)

    async def _store_l2(self, key: bytes, raw: bytes) -> None:
        # Runs as a supervised background task: it must never raise for a Redis
        # failure, or the bus would report a failed background task.
        # A write spawned before aclose() still runs: aclose waits for it.
        l2 = self._l2
        if l2 is None:
            return
        permit = self._acquire_l2()
        if permit is None:
            return
        succeeded: bool | None = None
        try:
            async with asyncio.timeout(self._l2_deadline_s):
                await l2.set(key, raw)
            succeeded = True
            self._l2_writes += 1
        except _L2_FAILURES as exc:
            succeeded = False
            self._count_l2_failure("write", exc)
        finally:
            self._settle_l2(permit, succeeded)

    def _acquire_l2(self) -> int | None:
        if self._l2_inflight >= self._max_l2_inflight:
            self._l2_skipped_busy += 1
            return None
        permit = self._breaker.acquire()
        if permit is None:
            self._l2_skipped_open += 1
            return None
        self._l2_inflight += 1
        return permit

    def _settle_l2(self, permit: int, succeeded: bool | None) -> None:
        self._l2_inflight -= 1
        if succeeded is None:
            self._breaker.release(permit)
        elif succeeded:
            self._breaker.record_success(permit)
        else:
            self._breaker.record_failure(permit)

    def _count_l2_failure(self, operation: str, exc: BaseException) -> None:
        self._l2_errors += 1
        if isinstance(exc, TimeoutError | RedisTimeoutError):
            self._l2_timeouts += 1
        log = logger.warning if self._breaker.state is BreakerState.CLOSED else logger.debug
        log(
            "decision cache L2 %s failed (%s); carrying on with L1 and the loader",
            operation,
            type(exc).__name__,
        )
