"""MetricsServer on 127.0.0.1, port 0: /metrics, /healthz, /readyz."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from enhanced_agent_bus.errors import BusStateError, ConfigurationError
from enhanced_agent_bus.models import AgentMessage, DeliveryResult, DeliveryStatus
from enhanced_agent_bus.observability import (
    BusMetrics,
    HealthAggregator,
    HealthState,
    MetricsServer,
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def test_metrics_endpoint_serves_the_bus_registry(http: aiohttp.ClientSession) -> None:
    metrics = BusMetrics()
    message = AgentMessage(from_agent="a", to_agent="b", tenant_id="acme")
    result = DeliveryResult(message.message_id, DeliveryStatus.DELIVERED, (), 25.0, "b")
    metrics.observer.on_decision(message, result)
    metrics.attach_stats(lambda: {"bus": {"agents": 2}})
    async with MetricsServer(metrics, port=0) as server:
        assert server.port > 0
        async with http.get(f"{server.url}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            body = await response.text()
        assert server.stats() == {"scrapes": 1, "running": 1}
    assert server.stats()["running"] == 0
    families = {family.name: family for family in text_string_to_metric_families(body)}
    assert families["agentbus_agents_registered"].samples[0].value == 2
    delivered = [
        s for s in families["agentbus_messages"].samples if s.name == "agentbus_messages_total"
    ]
    assert delivered[0].labels["outcome"] == "delivered"
    assert delivered[0].value == 1


async def test_openmetrics_is_negotiated(http: aiohttp.ClientSession) -> None:
    async with MetricsServer(BusMetrics()) as server:
        headers = {"Accept": "application/openmetrics-text; version=1.0.0"}
        async with http.get(f"{server.url}/metrics", headers=headers) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            assert (await response.text()).rstrip().endswith("# EOF")


async def test_liveness_is_plain_ok(http: aiohttp.ClientSession) -> None:
    health = HealthAggregator()
    health.set("policy_engine", HealthState.UNHEALTHY, "down")
    async with (
        MetricsServer(BusMetrics(), health) as server,
        http.get(f"{server.url}/healthz") as response,
    ):
        # liveness says the process serves HTTP; readiness carries component health
        assert (response.status, await response.text()) == (200, "ok")


async def test_readiness_reports_components_and_fails_only_when_unhealthy(
    http: aiohttp.ClientSession,
) -> None:
    health = HealthAggregator()
    health.set("policy_engine", HealthState.HEALTHY)
    health.set("cache_l2", HealthState.UNHEALTHY, "redis refused", critical=False)
    async with MetricsServer(BusMetrics(), health) as server:
        async with http.get(f"{server.url}/readyz") as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            body = await response.json()
        assert body["status"] == "degraded"
        assert body["reasons"] == ["cache_l2: redis refused"]
        assert body["components"]["policy_engine"]["state"] == "healthy"

        health.set("policy_engine", HealthState.UNHEALTHY, "engine crashed")
        async with http.get(f"{server.url}/readyz") as response:
            assert response.status == 503
            assert (await response.json())["status"] == "unhealthy"


async def test_readiness_without_health_is_healthy(http: aiohttp.ClientSession) -> None:
    async with (
        MetricsServer(BusMetrics()) as server,
        http.get(f"{server.url}/readyz") as response,
    ):
        assert response.status == 200
        assert (await response.json()) == {"status": "healthy", "reasons": [], "components": {}}


async def test_unknown_paths_are_404(http: aiohttp.ClientSession) -> None:
    async with (
        MetricsServer(BusMetrics()) as server,
        http.get(f"{server.url}/nope") as response,
    ):
        assert response.status == 404


async def test_a_busy_port_is_a_clear_configuration_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = MetricsServer(BusMetrics(), port=port)
        with pytest.raises(ConfigurationError, match=f"127.0.0.1:{port}"):
            await server.start()


async def test_lifecycle_misuse_is_reported(http: aiohttp.ClientSession) -> None:
    server = MetricsServer(BusMetrics())
    with pytest.raises(BusStateError, match="not running"):
        _ = server.port
    await server.start()
    try:
        with pytest.raises(BusStateError, match="already running"):
            await server.start()
    finally:
        await server.aclose()
    await server.aclose()  # idempotent
    with pytest.raises(ConfigurationError, match=r"0\.\.65535"):
        MetricsServer(BusMetrics(), port=70_000)


async def test_the_port_is_released_on_close(http: aiohttp.ClientSession) -> None:
    server = MetricsServer(BusMetrics())
    await server.start()
    url = f"{server.url}/healthz"
    await server.aclose()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(url):
            pass
