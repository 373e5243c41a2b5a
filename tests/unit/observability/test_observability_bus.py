"""The metrics of a real AgentBus: bus.serve_metrics, bus.metrics and bus.stats().

Every test here runs a real bus on the default constitution (Rego policy and
constraints included); the HTTP server binds 127.0.0.1, port 0.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from enhanced_agent_bus import (
    AgentBus,
    AgentMessage,
    BusSettings,
    BusStateError,
    ConfigurationError,
    DeliveryStatus,
)
from enhanced_agent_bus.observability import IGNORED_STATS, STAT_METRICS, ObservabilitySettings
from enhanced_agent_bus.testing import FakeClock

REAL_COMPONENTS = ("bus", "cache", "policy", "constraints", "audit", "metering")
# Same package bug as KNOWN_GAPS in conftest.py: strict, so fixing it flips this test.


async def _ack(message: AgentMessage, context: Any) -> dict[str, Any]:
    return {"ack": True}


def _settings(**observability: Any) -> BusSettings:
    return BusSettings(drain_timeout_s=2.0, observability=ObservabilitySettings(**observability))


async def _register(bus: AgentBus) -> None:
    await bus.register_agent("planner", _ack, tenant_id="acme", role="planner")
    await bus.register_agent("coder", _ack, tenant_id="acme", role="worker")
    await bus.register_agent("reporter", _ack, tenant_id="globex", role="worker")


async def _send(bus: AgentBus, sender: str, recipient: str, times: int = 1) -> DeliveryStatus:
    status = DeliveryStatus.DELIVERED
    for index in range(times):
        result = await bus.send_message(bus.message(sender, recipient, {"task": f"#{index}"}))
        status = result.status
    return status


def _samples(body: bytes | str, name: str) -> list[tuple[dict[str, str], float]]:
    text = body.decode() if isinstance(body, bytes) else body
    return [
        (dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


@pytest.fixture
async def bus(clock: FakeClock) -> AsyncIterator[AgentBus]:
    async with AgentBus(_settings(), clock=clock) as bus:
        await _register(bus)
        yield bus


async def test_serve_metrics_serves_the_real_decisions(
    bus: AgentBus, http: aiohttp.ClientSession
) -> None:
    assert await _send(bus, "planner", "coder", times=2) is DeliveryStatus.DELIVERED
    assert await _send(bus, "planner", "reporter") is DeliveryStatus.DENIED  # cross-tenant
    server = await bus.serve_metrics(0)
    assert server.url.startswith("http://127.0.0.1:")
    async with http.get(f"{server.url}/metrics") as response:
        assert response.status == 200
        body = await response.text()
    decisions = {
        (labels["outcome"], labels["stage"], labels["code"]): value
        for labels, value in _samples(body, "agentbus_messages_total")
    }
    assert decisions == {("delivered", "none", "none"): 2, ("denied", "tenant", "cross_tenant"): 1}
    assert _samples(body, "agentbus_messages_submitted_total") == [({}, 3.0)]
    assert _samples(body, "agentbus_agents_registered") == [({}, 3.0)]


async def test_healthz_and_readyz_report_the_bus_components(
    bus: AgentBus, http: aiohttp.ClientSession
) -> None:
    server = await bus.serve_metrics(0)
    async with http.get(f"{server.url}/healthz") as response:
        assert response.status == 200
        assert await response.text() == "ok"
    async with http.get(f"{server.url}/readyz") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        ready = orjson.loads(await response.read())
    assert ready["status"] == "healthy"
    assert {"policy_engine", "audit_sink"} <= set(ready["components"])


async def test_a_second_serve_metrics_is_refused(bus: AgentBus) -> None:
    server = await bus.serve_metrics(0)
    with pytest.raises(BusStateError, match=str(server.port)):
        await bus.serve_metrics(0)


async def test_the_server_stops_with_the_bus(clock: FakeClock) -> None:
    async with AgentBus(_settings(), clock=clock) as bus:
        server = await bus.serve_metrics(0)
        assert server.stats()["running"] == 1
    assert server.stats()["running"] == 0


async def test_metrics_disabled_means_no_metrics_and_no_server(clock: FakeClock) -> None:
    async with AgentBus(_settings(metrics_enabled=False), clock=clock) as bus:
        assert bus.metrics is None
        await _register(bus)
        assert await _send(bus, "planner", "coder") is DeliveryStatus.DELIVERED
        with pytest.raises(ConfigurationError, match="metrics_enabled"):
            await bus.serve_metrics(0)


async def test_two_buses_in_one_process_keep_their_own_registries(
    clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    async with (
        AgentBus(_settings(), clock=clock) as first,
        AgentBus(_settings(), clock=clock) as second,
    ):
        assert first.metrics is not None
        assert second.metrics is not None
        assert first.metrics.registry is not second.metrics.registry
        await _register(first)
        await _register(second)
        await _send(first, "planner", "coder", times=3)
        await _send(second, "planner", "coder")
        servers = [await first.serve_metrics(0), await second.serve_metrics(0)]
        assert servers[0].port != servers[1].port
        delivered = []
        for server in servers:
            async with http.get(f"{server.url}/metrics") as response:
                body = await response.text()
            delivered.append(
                sum(v for labels, v in _samples(body, "agentbus_messages_total") if labels)
            )
        assert delivered == [3, 1]


async def test_stage_latency_covers_every_pipeline_stage(clock: FakeClock) -> None:
    async with AgentBus(_settings(stage_timing_sample_every=1), clock=clock) as bus:
        await _register(bus)
        await _send(bus, "planner", "coder", times=3)
        assert bus.metrics is not None
        counts = {
            labels["stage"]: value
            for labels, value in _samples(
                bus.metrics.exposition(), "agentbus_pipeline_stage_duration_seconds_count"
            )
        }
    assert {"admission", "constitution", "tenant", "policy"} <= set(bus.pipeline_stages)
    assert counts == dict.fromkeys(bus.pipeline_stages, 3.0)


async def test_stage_timing_is_sampled_one_in_sixteen_by_default(bus: AgentBus) -> None:
    await _send(bus, "planner", "coder", times=17)  # the 1st and the 17th are timed
    assert bus.metrics is not None
    counts = _samples(bus.metrics.exposition(), "agentbus_pipeline_stage_duration_seconds_count")
    assert {labels["stage"] for labels, _ in counts} == set(bus.pipeline_stages)
    assert {value for _, value in counts} == {2.0}


@pytest.mark.parametrize("component", REAL_COMPONENTS)
async def test_bus_stats_have_every_key_the_catalogue_reads(bus: AgentBus, component: str) -> None:
    await _send(bus, "planner", "coder")
    stats = bus.stats()
    assert component in stats
    wanted = {spec.key for spec in STAT_METRICS if spec.component == component}
    wanted |= {key for (name, key) in IGNORED_STATS if name == component}
    assert wanted
    assert wanted <= stats[component].keys(), (
        f"{component} lacks {wanted - stats[component].keys()}"
    )


async def test_bus_stats_feed_health_and_the_cache_breaker(bus: AgentBus) -> None:
    stats = bus.stats()
    assert "health" in stats
    assert "breaker_state" in stats["cache"]
    assert bus.metrics is not None
    body = bus.metrics.exposition()
    assert _samples(body, "agentbus_circuit_breaker_state") == [({"component": "cache"}, 0.0)]
    assert _samples(body, "agentbus_health_state") == [({}, 0.0)]
    components = {
        labels["component"] for labels, _ in _samples(body, "agentbus_health_component_state")
    }
    assert {"policy_engine", "audit_sink"} <= components
