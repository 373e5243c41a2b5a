"""Fixtures for the background integration tests: Redis key cleanup and a cuttable Redis proxy."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
from bg_redis_proxy import RedisProxy


@pytest.fixture
def redis_keys(redis_url: str, redis_prefix: str) -> Iterator[str]:
    """The per-test key prefix; every key under it is deleted afterwards."""
    import redis

    yield redis_prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{redis_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def redis_proxy(redis_url: str) -> AsyncIterator[RedisProxy]:
    parts = urlsplit(redis_url)
    proxy = RedisProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    await proxy.start()
    yield proxy
    with contextlib.suppress(Exception):
        await proxy.cut()
