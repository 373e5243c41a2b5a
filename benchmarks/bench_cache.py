"""Decision cache micro-benchmarks (pytest-benchmark; not collected by the test suite).

Run: .venv/bin/python -m pytest benchmarks/bench_cache.py --benchmark-only
The Redis case uses AGENTBUS_TEST_REDIS_URL (default redis://127.0.0.1:6379/15)
and is skipped when Redis does not answer.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from enhanced_agent_bus.cache import (
    BytesCodec,
    CacheSettings,
    KeyScope,
    LRUCache,
    TieredCache,
    ValueSealer,
    scoped_key,
)
from enhanced_agent_bus.tasks import TaskSupervisor

CONSTITUTION = "3f1c" * 16
N_KEYS = 10_000
BATCH = 1_000
DECISION = b'{"allow":true,"deny":[]}'

#: A policy input shaped like the documented contract (what the policy stage hashes).
POLICY_INPUT: dict[str, Any] = {
    "sender": {
        "id": "planner-1",
        "tenant_id": "acme",
        "role": "planner",
        "capabilities": ["plan", "propose"],
    },
    "recipient": {
        "id": "worker-7",
        "tenant_id": "acme",
        "role": "worker",
        "capabilities": ["execute"],
    },
    "message": {
        "type": "command",
        "priority": "normal",
        "tenant_id": "acme",
        "size_bytes": 412,
        "topic": None,
        "metadata": {"action": "propose"},
    },
}

KEYS = [scoped_key(CONSTITUTION, str(index).encode()) for index in range(N_KEYS)]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def _per_op(benchmark: Any, ops: int) -> None:
    benchmark.extra_info["ops_per_round"] = ops


def test_l1_get_hit(benchmark: Any) -> None:
    cache: LRUCache[bytes, bytes] = LRUCache(N_KEYS, ttl_s=60.0)
    for key in KEYS:
        cache.set(key, DECISION)
    key = KEYS[N_KEYS // 2]
    assert benchmark(cache.get, key) == DECISION


def test_tiered_get_local_hit(benchmark: Any) -> None:
    l1: LRUCache[bytes, bytes] = LRUCache(N_KEYS, ttl_s=60.0)
    l1.set(KEYS[0], DECISION)
    cache: TieredCache[bytes] = TieredCache(l1)
    assert benchmark(cache.get_local, KEYS[0]) == DECISION


def test_l1_miss_then_set_at_capacity(benchmark: Any) -> None:
    cache: LRUCache[bytes, bytes] = LRUCache(N_KEYS // 2, ttl_s=60.0)
    cursor = iter(range(10**9))

    def miss_then_set() -> None:
        key = KEYS[next(cursor) % N_KEYS]
        if cache.get(key) is None:
            cache.set(key, DECISION)

    benchmark(miss_then_set)
    assert cache.evictions > 0


def test_tiered_get_or_load_l1_hit(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    """get_or_load answered from L1 (a coroutine per call), per round of BATCH calls."""
    cache: TieredCache[bytes] = TieredCache(LRUCache(N_KEYS, ttl_s=60.0))

    async def loader() -> bytes:
        return DECISION

    loop.run_until_complete(cache.get_or_load(KEYS[0], loader))

    async def batch() -> None:
        for _ in range(BATCH):
            await cache.get_or_load(KEYS[0], loader)

    _per_op(benchmark, BATCH)
    benchmark(lambda: loop.run_until_complete(batch()))


def test_tiered_miss_with_inline_loader(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    """A miss through single flight to a loader that answers at once (L1 only), BATCH per round."""
    cache: TieredCache[bytes] = TieredCache(LRUCache(N_KEYS, ttl_s=60.0))

    async def loader() -> bytes:
        return DECISION

    async def batch() -> None:
        cache.clear_local()
        for key in KEYS[:BATCH]:
            await cache.get_or_load(key, loader)

    _per_op(benchmark, BATCH)
    benchmark(lambda: loop.run_until_complete(batch()))


def test_tiered_l2_hit_redis(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    """An L1 miss answered by Redis (GET + HMAC verify + L1 fill), 100 per round."""
    url = os.environ.get("AGENTBUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    prefix = f"agentbus-bench:{uuid.uuid4().hex}:"
    settings = CacheSettings(
        redis_url=url,
        hmac_key="bench-hmac-key-0123456789abcdef0123",
        key_prefix=prefix,
    )
    supervisor = TaskSupervisor()
    cache: TieredCache[bytes] = TieredCache.from_settings(
        settings, BytesCodec(), supervisor=supervisor
    )
    keys = KEYS[:100]

    async def loader() -> bytes:
        return DECISION

    async def fill() -> bool:
        for key in keys:
            await cache.get_or_load(key, loader)
        return await supervisor.wait(5.0)

    async def batch() -> None:
        cache.clear_local()
        for key in keys:
            await cache.get_or_load(key, loader)

    async def cleanup() -> None:
        from redis.asyncio import Redis

        client = Redis.from_url(url)
        stale = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if stale:
            await client.delete(*stale)
        await client.aclose()
        await cache.aclose()
        await supervisor.aclose()

    try:
        loop.run_until_complete(fill())
        if cache.stats()["l2_writes"] != len(keys):
            pytest.skip(f"Redis at {url} is not answering")
        _per_op(benchmark, len(keys))
        benchmark(lambda: loop.run_until_complete(batch()))
        assert cache.stats()["loads"] == len(keys)  # every benchmarked lookup was an L2 hit
    finally:
        loop.run_until_complete(cleanup())


def test_key_hashing(benchmark: Any) -> None:
    """Canonical JSON of the policy input (sorted keys) + xxh3_128 under the constitution hash."""

    def key() -> bytes:
        return scoped_key(CONSTITUTION, orjson.dumps(POLICY_INPUT, option=orjson.OPT_SORT_KEYS))

    assert len(benchmark(key)) == 16


def test_key_hashing_digest_only(benchmark: Any) -> None:
    body = orjson.dumps(POLICY_INPUT, option=orjson.OPT_SORT_KEYS)
    assert len(benchmark(scoped_key, CONSTITUTION, body)) == 16


def test_key_hashing_prepared_scope(benchmark: Any) -> None:
    """The per-message cost when the policy stage keeps a KeyScope per constitution."""
    scope = KeyScope(CONSTITUTION)

    def key() -> bytes:
        return scope.key(orjson.dumps(POLICY_INPUT, option=orjson.OPT_SORT_KEYS))

    assert len(benchmark(key)) == 16


def test_hmac_unseal(benchmark: Any) -> None:
    sealer = ValueSealer("bench-hmac-key-0123456789abcdef0123")
    context = b"agentbus:decision:" + KEYS[0].hex().encode()
    sealed = sealer.seal(context, DECISION)
    assert benchmark(sealer.unseal, context, sealed) == DECISION
