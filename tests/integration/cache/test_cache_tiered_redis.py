"""TieredCache against a real Redis: L2 hits, tampering, garbage, pool bounds, close."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from enhanced_agent_bus.cache import (
    CacheSettings,
    RedisDecisionStore,
    ValueSealer,
    scoped_key,
)

CacheFactory = Callable[..., Any]
Flush = Callable[[], Awaitable[None]]
LoaderFactory = Callable[..., Any]

pytestmark = pytest.mark.redis

CONSTITUTION = "f" * 64


def key_for(label: str) -> bytes:
    return scoped_key(CONSTITUTION, label.encode())


def redis_key(prefix: str, key: bytes) -> str:
    return prefix + key.hex()


async def test_l2_hit_fills_l1_of_another_process(
    make_cache: CacheFactory,
    flush_writes: Flush,
    raw_redis: Redis,
    prefix: str,
    make_loader: LoaderFactory,
) -> None:
    writer, reader = make_cache(l2_ttl_s=30.0), make_cache()
    key = key_for("planner->worker:command")
    loader = make_loader()
    assert await writer.get_or_load(key, loader) == {"allow": True, "deny": []}
    await flush_writes()
    ttl_ms = await raw_redis.pttl(redis_key(prefix, key))
    assert 0 < ttl_ms <= 30_000

    assert reader.get_local(key) is None
    assert await reader.get_or_load(key, loader) == {"allow": True, "deny": []}
    assert loader.calls == 1  # the reader never evaluated
    assert reader.get_local(key) == {"allow": True, "deny": []}
    stats = reader.stats()
    assert (stats["l2_hits"], stats["l2_misses"], stats["loads"]) == (1, 0, 0)
    assert stats["l1_hits"] == 1
    assert writer.stats()["l2_writes"] == 1


async def test_tampered_value_is_rejected_counted_and_reevaluated(
    make_cache: CacheFactory,
    flush_writes: Flush,
    raw_redis: Redis,
    prefix: str,
    make_loader: LoaderFactory,
) -> None:
    writer, reader = make_cache(), make_cache()
    key = key_for("worker->governance:command")
    await writer.get_or_load(key, make_loader(allow=False))
    await flush_writes()
    sealed = await raw_redis.get(redis_key(prefix, key))
    assert isinstance(sealed, bytes)
    # Flip "allow": false -> true in place, leaving the MAC alone.
    forged = sealed.replace(b'"allow":false', b'"allow":true ')
    assert forged != sealed
    await raw_redis.set(redis_key(prefix, key), forged)

    loader = make_loader(allow=False)
    decision = await reader.get_or_load(key, loader)
    assert decision["allow"] is False
    assert loader.calls == 1
    stats = reader.stats()
    assert stats["l2_tampered"] == 1
    assert stats["l2_hits"] == 0
    await flush_writes()
    # The re-evaluated decision replaced the forged bytes with a genuine entry.
    assert await raw_redis.get(redis_key(prefix, key)) == sealed
    assert reader.stats()["breaker_state"] == 0


async def test_store_deletes_a_value_that_fails_verification(
    redis_url: str, raw_redis: Redis, prefix: str, hmac_key: str
) -> None:
    settings = CacheSettings(redis_url=redis_url, hmac_key=hmac_key, key_prefix=prefix)
    store = RedisDecisionStore.from_settings(settings)
    key = key_for("x")
    await store.set(key, b'{"allow":true}')
    assert await store.get(key) == b'{"allow":true}'
    await raw_redis.setrange(redis_key(prefix, key), 40, b"X")
    assert await store.get(key) is None
    assert await raw_redis.exists(redis_key(prefix, key)) == 0
    assert store.stats()["tampered"] == 1
    await store.aclose()


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x00", b"\xff" * 5, b'{"allow": true, "deny": []}', bytes(range(256)) * 4],
    ids=["empty", "one-byte", "binary", "unsealed-json", "long-binary"],
)
async def test_garbage_bytes_in_the_key_are_a_counted_miss(
    make_cache: CacheFactory,
    raw_redis: Redis,
    prefix: str,
    garbage: bytes,
    make_loader: LoaderFactory,
) -> None:
    cache = make_cache()
    key = key_for("garbage")
    await raw_redis.set(redis_key(prefix, key), garbage)
    loader = make_loader(allow=False)
    assert (await cache.get_or_load(key, loader))["allow"] is False
    assert loader.calls == 1
    assert cache.stats()["l2_tampered"] == 1
    assert cache.stats()["l2_errors"] == 0


async def test_a_key_of_another_redis_type_is_a_counted_miss(
    make_cache: CacheFactory, raw_redis: Redis, prefix: str, make_loader: LoaderFactory
) -> None:
    cache = make_cache()
    key = key_for("wrong-type")
    await raw_redis.lpush(redis_key(prefix, key), b"not a string")
    loader = make_loader()
    assert (await cache.get_or_load(key, loader))["allow"] is True
    assert loader.calls == 1
    assert cache.stats()["l2_tampered"] == 1
    assert cache.stats()["breaker_state"] == 0


async def test_a_genuine_allow_copied_onto_another_key_is_rejected(
    make_cache: CacheFactory,
    flush_writes: Flush,
    raw_redis: Redis,
    prefix: str,
    make_loader: LoaderFactory,
) -> None:
    writer, reader = make_cache(), make_cache()
    allowed, denied = key_for("allowed question"), key_for("denied question")
    await writer.get_or_load(allowed, make_loader(allow=True))
    await flush_writes()
    genuine_allow = await raw_redis.get(redis_key(prefix, allowed))
    assert genuine_allow is not None
    await raw_redis.set(redis_key(prefix, denied), genuine_allow)
    decision = await reader.get_or_load(denied, make_loader(allow=False))
    assert decision["allow"] is False
    assert reader.stats()["l2_tampered"] == 1


async def test_a_sealed_value_the_codec_cannot_read_is_reevaluated(
    make_cache: CacheFactory, redis_url: str, prefix: str, make_loader: LoaderFactory, hmac_key: str
) -> None:
    cache = make_cache()
    other_version = RedisDecisionStore(
        Redis.from_url(redis_url),
        sealer=ValueSealer(hmac_key),
        key_prefix=prefix,
        ttl_s=30.0,
        owns_client=True,
    )
    key = key_for("old codec")
    await other_version.set(key, b'["v0 format"]')
    await other_version.aclose()
    loader = make_loader()
    assert (await cache.get_or_load(key, loader))["allow"] is True
    assert loader.calls == 1
    assert cache.stats()["l2_decode_errors"] == 1
    assert cache.stats()["l2_tampered"] == 0


async def test_100_concurrent_identical_misses_read_l2_once_and_evaluate_once(
    make_cache: CacheFactory, make_loader: LoaderFactory
) -> None:
    cache = make_cache()
    loader = make_loader()
    key = key_for("burst")
    results = await asyncio.gather(*(cache.get_or_load(key, loader) for _ in range(100)))
    assert all(result == {"allow": True, "deny": []} for result in results)
    assert loader.calls == 1
    stats = cache.stats()
    assert stats["coalesced"] == 99
    assert stats["l2_misses"] == 1


async def test_concurrent_l2_operations_are_capped_at_the_pool_size(
    make_cache: CacheFactory, flush_writes: Flush, make_loader: LoaderFactory
) -> None:
    cache = make_cache(pool_size=2)
    loader = make_loader()
    keys = [key_for(f"distinct {index}") for index in range(20)]
    results = await asyncio.gather(*(cache.get_or_load(key, loader) for key in keys))
    await flush_writes()
    assert len(results) == 20
    assert loader.calls == 20
    stats = cache.stats()
    assert stats["l2_skipped_busy"] > 0
    assert stats["l2_writes"] + stats["l2_writes_dropped"] + stats["l2_skipped_busy"] >= 20
    assert stats["l2_errors"] == 0
    assert stats["l2_writes_pending"] == 0


async def test_aclose_waits_for_pending_writes(
    make_cache: CacheFactory, raw_redis: Redis, prefix: str, make_loader: LoaderFactory
) -> None:
    cache = make_cache()
    keys = [key_for(f"close {index}") for index in range(5)]
    for key in keys:
        await cache.get_or_load(key, make_loader())
    assert cache.stats()["l2_writes_pending"] > 0
    await cache.aclose()
    assert cache.stats()["l2_writes"] == 5
    assert await raw_redis.exists(*(redis_key(prefix, key) for key in keys)) == 5
    # Closed: still answers from L1 and the loader, without Redis.
    loader = make_loader()
    assert (await cache.get_or_load(key_for("after close"), loader))["allow"] is True
    assert cache.stats()["l2_enabled"] == 0


async def test_stats_expose_the_observability_contract(make_cache: CacheFactory) -> None:
    stats: dict[str, Any] = make_cache().stats()
    for name in (
        "l1_hits", "l1_misses", "l1_evictions", "l1_expirations", "l1_size",
        "l2_hits", "l2_misses", "l2_errors", "l2_tampered", "breaker_state",
    ):  # fmt: skip
        assert isinstance(stats[name], int), name
