"""Cost of metrics on the hot path, and of one scrape.

Run: .venv/bin/pytest benchmarks/bench_metrics.py --benchmark-only -q -s
(``-s`` shows the send_message overhead line; it is also in the JSON's extra_info.)

``on_decision`` runs once per (message, recipient) decision inside
``send_message``; ``observe_stage`` once per pipeline stage. The scrape runs on
the event loop once per Prometheus scrape interval.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from enhanced_agent_bus.models import (
    AgentMessage,
    DeliveryResult,
    DeliveryStatus,
    MessageType,
    Reason,
)
from enhanced_agent_bus.observability import (
    BusMetrics,
    HealthAggregator,
    HealthState,
    StatValue,
)


def _timed(benchmark: BenchmarkFixture, fn: Callable[..., object], *args: object) -> object:
    # Sub-microsecond calls: time 1,000 calls per round so timer overhead does not dominate.
    return benchmark.pedantic(fn, args=args, iterations=1_000, rounds=200, warmup_rounds=5)


@pytest.fixture
def message() -> AgentMessage:
    return AgentMessage(
        from_agent="planner",
        to_agent="coder",
        tenant_id="acme",
        message_type=MessageType.COMMAND,
        payload={"task": "write tests", "files": ["a.py", "b.py"]},
    )


def test_on_decision_delivered(benchmark: BenchmarkFixture, message: AgentMessage) -> None:
    metrics = BusMetrics()
    result = DeliveryResult(message.message_id, DeliveryStatus.DELIVERED, (), 42.0, "coder")
    _timed(benchmark, metrics.observer.on_decision, message, result)
    assert metrics.stats()["decision_series"] == 1


def test_on_decision_denied(benchmark: BenchmarkFixture, message: AgentMessage) -> None:
    metrics = BusMetrics()
    reason = Reason("policy", "role_not_allowed", "role may not send commands")
    result = DeliveryResult(message.message_id, DeliveryStatus.DENIED, (reason,), 18.0, "coder")
    _timed(benchmark, metrics.observer.on_decision, message, result)


def test_on_decision_tenant_labels_all(benchmark: BenchmarkFixture, message: AgentMessage) -> None:
    metrics = BusMetrics(tenant_labels="all")
    result = DeliveryResult(message.message_id, DeliveryStatus.DELIVERED, (), 42.0, "coder")
    _timed(benchmark, metrics.observer.on_decision, message, result)


def test_observe_stage(benchmark: BenchmarkFixture) -> None:
    metrics = BusMetrics()
    _timed(benchmark, metrics.observe_stage, "policy", 12e-6)


def test_should_time_stages(benchmark: BenchmarkFixture) -> None:
    metrics = BusMetrics()
    _timed(benchmark, metrics.should_time_stages)


def test_noop_observer_reference(benchmark: BenchmarkFixture, message: AgentMessage) -> None:
    """What calling any observer costs: subtract it to get the metrics' own share."""

    class Noop:
        def on_decision(self, message: AgentMessage, result: DeliveryResult) -> None:
            return None

    result = DeliveryResult(message.message_id, DeliveryStatus.DELIVERED, (), 42.0, "coder")
    _timed(benchmark, Noop().on_decision, message, result)


def _stats() -> dict[str, Mapping[str, StatValue]]:
    background = {
        "queue_depth": 3, "submitted": 1000, "written": 990, "dropped": 1, "batches": 10,
        "sink_errors": 0, "retries": 0, "retry_buffer_depth": 0,
        "flush_seconds_sum": 0.04, "flush_seconds_count": 10,
    }  # fmt: skip
    return {
        "bus": {"sent_total": 1000, "mailbox_depth": 4, "agents": 12, "constitutional_hash": "ab"},
        "cache": {"l1_hits": 900, "l1_misses": 100, "l1_size": 100, "l2_hits": 50,
                  "l2_misses": 50, "l2_errors": 0, "l2_tampered": 0, "breaker_state": 0},
        "policy": {"evaluations": 100, "errors": 0, "denials": 10, "timeouts": 0},
        "constraints": {"checks": 300, "violations": 3, "errors": 0},
        "audit": background,
        "metering": background,
        "deliberation": {"pending": 1, "approved": 2, "denied": 0, "timed_out": 0},
    }  # fmt: skip


def test_scrape_after_traffic(benchmark: BenchmarkFixture, message: AgentMessage) -> None:
    """One /metrics render with every family populated (5 stages, 3 tenants, 4 outcomes)."""
    metrics = BusMetrics(tenant_labels="all")
    health = HealthAggregator()
    for component in ("policy_engine", "cache_l2", "audit_sink", "metering_sink"):
        health.set(component, HealthState.HEALTHY)
    metrics.attach_stats(_stats)
    metrics.attach_health(health)
    for tenant in ("acme", "globex", "initech"):
        tenant_message = message.model_copy(update={"tenant_id": tenant})
        for status in DeliveryStatus:
            reasons = () if status is DeliveryStatus.DELIVERED else (Reason("policy", "x", "y"),)
            result = DeliveryResult(message.message_id, status, reasons, 40.0, "coder")
            metrics.observer.on_decision(tenant_message, result)
    for stage in ("constitutional_hash", "tenant_isolation", "policy", "constraints", "impact"):
        metrics.observe_stage(stage, 1e-5)
    body = benchmark(metrics.exposition)
    assert b"agentbus_background_flush_duration_seconds_count" in body


# The send_message A/B against a bus without this feature is in bench_bus_overhead.py
# (all four combinations on one loop, interleaved); `agent-bus bench` reports it too.
