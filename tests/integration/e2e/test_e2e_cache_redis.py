"""The policy decision cache's Redis tier, end to end through AgentBus.

Two buses sharing one Redis share decisions (L2 hits); a bus whose Redis is
down keeps delivering every message, and its breaker opens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from enhanced_agent_bus import AgentBus, BusSettings, DeliveryStatus
from enhanced_agent_bus.cache import CacheSettings
from tests.integration.e2e.e2e_helpers import Inbox

pytestmark = pytest.mark.redis

HMAC_KEY = "x" * 32
BREAKER_OPEN = 2  # stats()["cache"]["breaker_state"]: 0 closed, 1 half-open, 2 open


def cached_bus_settings(redis_url: str, key_prefix: str) -> BusSettings:
    return BusSettings(
        drain_timeout_s=2.0,
        cache=CacheSettings(redis_url=redis_url, hmac_key=HMAC_KEY, key_prefix=key_prefix),
    )


@pytest.fixture
def cache_prefix(redis_url: str, redis_prefix: str) -> Iterator[str]:
    """A per-test key prefix; every key under it is deleted afterwards."""
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
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def register(bus: AgentBus) -> None:
    await bus.register_agent("planner-1", Inbox(), tenant_id="acme", role="planner")
    await bus.register_agent("worker-1", Inbox(), tenant_id="acme", role="worker")


async def send_shapes(bus: AgentBus, shapes: int) -> list[DeliveryStatus]:
    """``shapes`` allowed and ``shapes`` denied messages, each of a distinct size, so
    each one is its own policy question (the decision key includes the payload size)."""
    statuses = []
    for n in range(shapes):
        payload = {"task": "t" * n}
        for sender, recipient in (("planner-1", "worker-1"), ("worker-1", "planner-1")):
            result = await bus.send_message(bus.message(sender, recipient, payload))
            statuses.append(result.status)
    return statuses


async def test_decisions_land_in_redis_and_a_second_bus_reuses_them(
    redis_url: str, cache_prefix: str, redis_client: Redis
) -> None:
    settings = cached_bus_settings(redis_url, cache_prefix)
    async with AgentBus(settings) as first:
        await register(first)
        statuses = await send_shapes(first, 5)
        first_stats = first.stats()["cache"]
    assert statuses == [DeliveryStatus.DELIVERED, DeliveryStatus.DENIED] * 5
    assert first_stats["l2_enabled"] == 1
    assert first_stats["l2_hits"] == 0
    assert first_stats["l2_errors"] == 0

    keys = [key async for key in redis_client.scan_iter(match=f"{cache_prefix}*", count=1000)]
    assert len(keys) == 10  # one sealed decision per question
    ttl_ms = await redis_client.pttl(keys[0])
    assert 0 < ttl_ms <= 600_000
    value = await redis_client.get(keys[0])
    assert value is not None
    # Sealed: version byte, 32-byte HMAC-SHA256, then the encoded decision.
    assert value[:1] == b"\x01"
    assert len(value) > 33

    async with AgentBus(settings) as second:
        await register(second)
        assert await send_shapes(second, 5) == statuses
        cache = second.stats()["cache"]
        policy = second.stats()["policy"]
    assert cache["l2_hits"] == 10
    assert cache["l2_tampered"] == 0
    assert policy["evaluations"] == 0  # every decision came from the first bus, via Redis


async def test_a_bus_whose_redis_is_down_still_delivers_every_message() -> None:
    settings = BusSettings(
        drain_timeout_s=2.0,
        cache=CacheSettings(redis_url="redis://127.0.0.1:1/0", hmac_key=HMAC_KEY),
    )
    async with AgentBus(settings) as bus:
        inbox = Inbox()
        await bus.register_agent("planner-1", Inbox(), tenant_id="acme", role="planner")
        await bus.register_agent("worker-1", inbox, tenant_id="acme", role="worker")
        sent = []
        for n in range(12):
            message = bus.message("planner-1", "worker-1", {"task": "t" * n})
            result = await bus.send_message(message)
            assert result.status is DeliveryStatus.DELIVERED, result.reasons
            sent.append(message.message_id)
        denied = await bus.send_message(bus.message("worker-1", "planner-1", {}))
        assert denied.codes == ("policy_denied",)  # still decided, not failed
        for message_id in sent:
            await inbox.wait_for(message_id)
        cache = bus.stats()["cache"]
    assert int(cache["l2_errors"]) >= 1
    assert cache["breaker_state"] == BREAKER_OPEN
    assert int(cache["breaker_opened_total"]) >= 1
    assert int(cache["l2_skipped_open"]) >= 1
    assert bus.stats()["bus"]["delivered_total"] == 12
