"""TieredCache without Redis: L1, the loader, single flight and the stats."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from enhanced_agent_bus.cache import (
    BytesCodec,
    CacheSettings,
    DecisionCache,
    LRUCache,
    RedisDecisionStore,
    TieredCache,
    ValueSealer,
    create_redis_client,
    scoped_key,
)
from enhanced_agent_bus.errors import ConfigurationError

KEY = scoped_key("c" * 64, b'{"message":{"type":"command"}}')


def make(clock: Any, maxsize: int = 100) -> TieredCache[bytes]:
    return TieredCache(LRUCache(maxsize, ttl_s=10.0, clock=clock))


class CountingLoader:
    def __init__(self, value: bytes = b"allow", *, pause: asyncio.Event | None = None) -> None:
        self.value = value
        self.calls = 0
        self.pause = pause

    async def __call__(self) -> bytes:
        self.calls += 1
        if self.pause is not None:
            await self.pause.wait()
        return self.value


async def test_miss_loads_once_then_get_local_hits(clock: Any) -> None:
    cache = make(clock)
    as_protocol: DecisionCache[bytes] = cache
    loader = CountingLoader()
    assert as_protocol.get_local(KEY) is None
    assert await as_protocol.get_or_load(KEY, loader) == b"allow"
    assert as_protocol.get_local(KEY) == b"allow"
    assert loader.calls == 1
    stats = cache.stats()
    assert (stats["l1_hits"], stats["l1_misses"], stats["loads"]) == (1, 1, 1)
    assert stats["l2_enabled"] == 0
    assert stats["breaker_state"] == 0


async def test_100_concurrent_identical_misses_evaluate_once(clock: Any) -> None:
    cache = make(clock)
    release = asyncio.Event()
    loader = CountingLoader(pause=release)
    tasks = [asyncio.ensure_future(cache.get_or_load(KEY, loader)) for _ in range(100)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*tasks) == [b"allow"] * 100
    assert loader.calls == 1
    assert cache.stats()["coalesced"] == 99
    assert cache.stats()["loads"] == 1


async def test_loader_errors_reach_the_caller_and_are_not_cached(clock: Any) -> None:
    cache = make(clock)

    async def broken() -> bytes:
        raise RuntimeError("engine crashed")

    with pytest.raises(RuntimeError, match="engine crashed"):
        await cache.get_or_load(KEY, broken)
    assert cache.get_local(KEY) is None
    assert cache.stats()["load_errors"] == 1
    assert await cache.get_or_load(KEY, CountingLoader(b"deny")) == b"deny"


async def test_an_expired_decision_is_evaluated_again(clock: Any) -> None:
    cache = make(clock)
    loader = CountingLoader()
    await cache.get_or_load(KEY, loader)
    clock.advance(10.0)
    assert cache.get_local(KEY) is None
    await cache.get_or_load(KEY, loader)
    assert loader.calls == 2
    assert cache.stats()["l1_expirations"] == 1


async def test_a_value_filled_after_a_local_miss_is_a_late_hit(clock: Any) -> None:
    cache = make(clock)
    first = CountingLoader()
    assert cache.get_local(KEY) is None
    await cache.get_or_load(KEY, first)  # another task filled L1 in between
    late = CountingLoader(b"other")
    assert await cache.get_or_load(KEY, late) == b"allow"
    assert late.calls == 0
    stats = cache.stats()
    assert stats["l1_late_hits"] == 1
    assert stats["l1_misses"] == 1  # the recheck is not a second counted lookup


async def test_the_l1_bound_holds(clock: Any) -> None:
    cache = make(clock, maxsize=3)
    for index in range(10):
        key = scoped_key("c" * 64, str(index).encode())
        await cache.get_or_load(key, CountingLoader(str(index).encode()))
    stats = cache.stats()
    assert stats["l1_size"] == 3
    assert stats["l1_evictions"] == 7


async def test_closed_l1_only_cache_keeps_answering(clock: Any) -> None:
    cache = make(clock)
    await cache.aclose()
    await cache.aclose()
    assert await cache.get_or_load(KEY, CountingLoader()) == b"allow"
    cache.clear_local()
    assert cache.get_local(KEY) is None


async def test_l2_without_codec_is_a_configuration_error(clock: Any) -> None:
    client = create_redis_client("redis://127.0.0.1:1/0")
    store = RedisDecisionStore(
        client, sealer=ValueSealer("s" * 32), key_prefix="p:", ttl_s=1.0, owns_client=True
    )
    with pytest.raises(ConfigurationError, match="no codec"):
        TieredCache(LRUCache(1, ttl_s=1.0, clock=clock), l2=store)
    await store.aclose()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"max_l2_inflight": 0}, "max_l2_inflight=0"), ({"l2_deadline_s": 0.0}, "l2_deadline_s")],
)
def test_invalid_bounds_name_the_value(clock: Any, kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        TieredCache(LRUCache(1, ttl_s=1.0, clock=clock), codec=BytesCodec(), **kwargs)


def test_store_rejects_a_decoding_client() -> None:
    client = create_redis_client("redis://127.0.0.1:1/0")
    client.connection_pool.connection_kwargs["decode_responses"] = True
    with pytest.raises(ConfigurationError, match="decode_responses=False"):
        RedisDecisionStore(client, sealer=ValueSealer("s" * 32), key_prefix="p:", ttl_s=1.0)


def test_store_rejects_an_empty_prefix_and_a_sub_millisecond_ttl() -> None:
    client = create_redis_client("redis://127.0.0.1:1/0")
    sealer = ValueSealer("s" * 32)
    with pytest.raises(ConfigurationError, match="key_prefix is empty"):
        RedisDecisionStore(client, sealer=sealer, key_prefix="", ttl_s=1.0)
    with pytest.raises(ConfigurationError, match=r"ttl_s=0\.0001"):
        RedisDecisionStore(client, sealer=sealer, key_prefix="p:", ttl_s=0.0001)


def test_create_redis_client_refuses_other_schemes() -> None:
    with pytest.raises(ConfigurationError, match="'http'"):
        create_redis_client("http://127.0.0.1:6379")


async def test_from_settings_builds_l2_with_the_pool_bound(clock: Any) -> None:
    settings = CacheSettings(
        redis_url="redis://127.0.0.1:1/0",
        hmac_key="k" * 32,
        pool_size=7,
    )
    cache: TieredCache[bytes] = TieredCache.from_settings(
        settings, BytesCodec(), supervisor=None, clock=clock
    )
    assert cache.has_l2
    assert cache.stats()["l2_enabled"] == 1
    await cache.aclose()
    assert cache.stats()["l2_enabled"] == 0
