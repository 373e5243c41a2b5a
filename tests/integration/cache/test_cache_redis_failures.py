"""Redis refusing, hanging, dying and coming back: the cache degrades, sends never fail."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from enhanced_agent_bus.cache import scoped_key
from enhanced_agent_bus.resilience import BreakerSettings, BreakerState

pytestmark = pytest.mark.redis

CacheFactory = Callable[..., Any]
Flush = Callable[[], Awaitable[None]]
LoaderFactory = Callable[..., Any]
ALLOW = {"allow": True, "deny": []}


def key_for(label: str) -> bytes:
    return scoped_key("e" * 64, label.encode())


async def drive_until_open(cache: Any, loader: Any, flush: Flush, label: str) -> int:
    """Send distinct misses until the breaker opens; every one must still be answered."""
    for index in range(20):
        assert await cache.get_or_load(key_for(f"{label} {index}"), loader) == ALLOW
        await flush()
        if cache.breaker.state is BreakerState.OPEN:
            return index + 1
    pytest.fail(f"breaker still {cache.breaker.state.name} after 20 failing calls")


async def test_refused_connections_open_the_breaker_and_calls_never_fail(
    make_cache: CacheFactory,
    flush_writes: Flush,
    make_loader: LoaderFactory,
    refused_redis_url: str,
) -> None:
    cache = make_cache(refused_redis_url)
    loader = make_loader()
    await drive_until_open(cache, loader, flush_writes, "refused")
    errors_when_opened = cache.stats()["l2_errors"]
    assert errors_when_opened >= 3

    for index in range(50):
        key = key_for(f"while open {index}")
        assert await cache.get_or_load(key, loader) == ALLOW
        assert cache.get_local(key) == ALLOW  # degraded to L1: still cached in process
    await flush_writes()
    stats = cache.stats()
    assert stats["l2_errors"] == errors_when_opened  # Redis is not touched while open
    assert stats["l2_skipped_open"] >= 50
    assert stats["breaker_state"] == int(BreakerState.OPEN)
    assert stats["breaker_opened_total"] == 1


async def test_a_failed_half_open_probe_reopens_with_one_attempt(
    make_cache: CacheFactory,
    flush_writes: Flush,
    make_loader: LoaderFactory,
    refused_redis_url: str,
    clock: Any,
) -> None:
    cache = make_cache(refused_redis_url)
    loader = make_loader()
    await drive_until_open(cache, loader, flush_writes, "refused")
    errors = cache.stats()["l2_errors"]
    clock.advance(5.0)
    assert await cache.get_or_load(key_for("probe"), loader) == ALLOW
    await flush_writes()
    assert cache.stats()["l2_errors"] == errors + 1
    assert cache.breaker.state is BreakerState.OPEN
    assert cache.stats()["breaker_opened_total"] == 2


async def test_a_hung_redis_times_out_and_opens_the_breaker(
    make_cache: CacheFactory,
    flush_writes: Flush,
    make_loader: LoaderFactory,
    hung_redis_url: str,
) -> None:
    cache = make_cache(hung_redis_url, socket_timeout_s=0.05, connect_timeout_s=0.05)
    loader = make_loader()
    await drive_until_open(cache, loader, flush_writes, "hung")
    stats = cache.stats()
    assert stats["l2_timeouts"] >= 1
    assert stats["l2_timeouts"] <= stats["l2_errors"]
    errors = stats["l2_errors"]
    assert await cache.get_or_load(key_for("fast path while open"), loader) == ALLOW
    assert cache.stats()["l2_errors"] == errors


async def test_l2_dies_mid_run_degrades_to_l1_and_recovers_after_reset(
    make_cache: CacheFactory,
    flush_writes: Flush,
    make_loader: LoaderFactory,
    clock: Any,
    redis_process: Any,
) -> None:
    cache = make_cache(redis_process.url)
    peer = make_cache(redis_process.url)
    loader = make_loader()
    before = key_for("before the crash")
    await cache.get_or_load(before, loader)
    await flush_writes()
    assert cache.stats()["l2_writes"] == 1

    redis_process.stop()
    calls = await drive_until_open(cache, loader, flush_writes, "outage")
    assert loader.calls == 1 + calls
    # L1 still serves what it holds, synchronously.
    assert cache.get_local(before) == ALLOW

    redis_process.start()  # same port, empty data set
    clock.advance(5.0)
    recovered = key_for("after recovery")
    assert await cache.get_or_load(recovered, loader) == ALLOW  # the probe: one L2 read
    assert cache.breaker.state is BreakerState.CLOSED
    await flush_writes()
    assert cache.stats()["l2_writes"] == 2
    # Another process reads the recovered L2 without evaluating.
    peer_loader = make_loader()
    assert await peer.get_or_load(recovered, peer_loader) == ALLOW
    assert peer_loader.calls == 0
    assert peer.stats()["l2_hits"] == 1


async def test_client_kill_mid_run_costs_at_most_one_miss_and_never_fails(
    make_cache: CacheFactory,
    flush_writes: Flush,
    make_loader: LoaderFactory,
    raw_redis: Redis,
    prefix: str,
) -> None:
    cache = make_cache(pool_size=1)
    loader = make_loader()
    first = key_for("before kill")
    await cache.get_or_load(first, loader)
    await flush_writes()
    clients = await raw_redis.client_list()
    ours = [client for client in clients if client.get("name") == "agentbus-cache"]
    assert ours, "the cache's pooled connection is not visible in CLIENT LIST"
    for client in ours:
        await raw_redis.client_kill_filter(_id=client["id"])

    cache.clear_local()
    assert await cache.get_or_load(first, loader) == ALLOW
    await flush_writes()
    stats = cache.stats()
    # redis-py either notices the dead socket on checkout (0 errors) or fails one command.
    assert stats["l2_errors"] <= 1
    assert stats["breaker_state"] == int(BreakerState.CLOSED)
    reconnected = [c for c in await raw_redis.client_list() if c.get("name") == "agentbus-cache"]
    assert reconnected
    assert {c["id"] for c in reconnected}.isdisjoint({c["id"] for c in ours})
    # After reconnecting, L2 answers again.
    cache.clear_local()
    hits = stats["l2_hits"]
    assert await cache.get_or_load(first, loader) == ALLOW
    assert cache.stats()["l2_hits"] == hits + 1


async def test_burst_of_sends_during_an_outage_never_fails(
    make_cache: CacheFactory,
    flush_writes: Flush,
    make_loader: LoaderFactory,
    redis_process: Any,
) -> None:
    cache = make_cache(redis_process.url, breaker=BreakerSettings(failure_threshold=1))
    loader = make_loader()
    await cache.get_or_load(key_for("warm"), loader)
    await flush_writes()
    redis_process.stop()
    keys = [key_for(f"burst {index % 25}") for index in range(200)]
    results = await asyncio.gather(*(cache.get_or_load(key, loader) for key in keys))
    await flush_writes()
    assert results == [ALLOW] * 200
    assert loader.calls == 1 + 25  # single flight and L1 still coalesce during the outage
    assert cache.breaker.state is BreakerState.OPEN
