"""Real Redis for the cache tests: ``redis_url`` (tests/conftest.py), a key prefix per test.

Also starts private ``redis-server`` processes (to kill one mid-run) and a TCP
server that accepts connections and never answers (a hung Redis).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from enhanced_agent_bus.cache import CacheSettings, TieredCache
from enhanced_agent_bus.resilience import BreakerSettings
from enhanced_agent_bus.tasks import TaskSupervisor
from enhanced_agent_bus.testing import FakeClock

HMAC_KEY = "integration-test-hmac-key-0123456789abcdef"


class DecisionCodec:
    """A JSON codec shaped like the policy decision: {"allow": bool, "deny": [str]}."""

    def encode(self, value: dict[str, Any], /) -> bytes:
        return orjson.dumps(value)

    def decode(self, data: bytes, /) -> dict[str, Any]:
        value = orjson.loads(data)
        if not isinstance(value, dict) or not isinstance(value.get("allow"), bool):
            raise ValueError(f"not a decision: {data[:40]!r}")
        return value


class Loader:
    """Counts evaluations; what the policy engine would be."""

    def __init__(self, allow: bool = True) -> None:
        self.calls = 0
        self.allow = allow

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(0)
        return {"allow": self.allow, "deny": [] if self.allow else ["role may not send this"]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def prefix(redis_url: str, redis_prefix: str) -> AsyncIterator[str]:
    """The test's key namespace (``redis_url`` skips or fails when Redis is unreachable).

    Every cache of the test depends on this fixture, so the caches are closed
    (their pending writes finished) before the namespace's keys are deleted.
    """
    namespace = f"{redis_prefix}cache:"
    client = Redis.from_url(redis_url)
    yield namespace
    keys = [key async for key in client.scan_iter(match=f"{namespace}*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def raw_redis(redis_url: str, prefix: str) -> AsyncIterator[Redis]:
    """A plain client for the test to inspect and tamper with entries."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def supervisor() -> AsyncIterator[TaskSupervisor]:
    tasks = TaskSupervisor()
    yield tasks
    await tasks.aclose()
    # An L2 failure must never surface as a failed background task.
    assert tasks.failure is None, tasks.failure


CacheFactory = Callable[..., TieredCache[dict[str, Any]]]


@pytest.fixture
async def make_cache(
    redis_url: str, prefix: str, supervisor: TaskSupervisor, clock: FakeClock
) -> AsyncIterator[CacheFactory]:
    caches: list[TieredCache[dict[str, Any]]] = []

    def factory(
        url: str | None = None, *, breaker: BreakerSettings | None = None, **overrides: Any
    ) -> TieredCache[dict[str, Any]]:
        options: dict[str, Any] = {
            "redis_url": url or redis_url,
            "hmac_key": HMAC_KEY,
            "key_prefix": prefix,
            "breaker": breaker or BreakerSettings(failure_threshold=3, reset_timeout_s=5.0),
        }
        options.update(overrides)
        cache: TieredCache[dict[str, Any]] = TieredCache.from_settings(
            CacheSettings(**options), DecisionCodec(), supervisor=supervisor, clock=clock
        )
        caches.append(cache)
        return cache

    yield factory
    for cache in caches:
        await cache.aclose()


class RedisProcess:
    """A private redis-server on its own port that a test can stop and start."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self._proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.01)
        self.stop()
        pytest.fail(f"redis-server did not listen on port {self.port} within 5 s")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=5)
            self._proc = None


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    server = RedisProcess(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def hung_redis_url() -> AsyncIterator[str]:
    """A server that accepts connections and never replies: Redis stuck, not down."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(4096):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


Flush = Callable[[], Awaitable[None]]


@pytest.fixture
def flush_writes(supervisor: TaskSupervisor) -> Flush:
    async def flush() -> None:
        assert await supervisor.wait(2.0), "L2 writes did not finish"

    return flush


@pytest.fixture
def hmac_key() -> str:
    return HMAC_KEY


@pytest.fixture
def make_loader() -> Callable[..., Loader]:
    return Loader


@pytest.fixture
def refused_redis_url() -> Iterator[str]:
    """A port that is bound but not listening, so every connect is refused at once."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"redis://127.0.0.1:{held.getsockname()[1]}/0"
