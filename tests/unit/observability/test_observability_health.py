"""HealthAggregator: aggregation rules, probes, transitions and non-blocking callbacks."""

from __future__ import annotations

import asyncio
import threading

import pytest

from enhanced_agent_bus.errors import ConfigurationError
from enhanced_agent_bus.observability import (
    BusMetrics,
    HealthAggregator,
    HealthChange,
    HealthState,
    breaker_health,
    breaker_probe,
)
from enhanced_agent_bus.tasks import TaskSupervisor


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


def test_no_components_is_healthy() -> None:
    report = HealthAggregator().report()
    assert report.state is HealthState.HEALTHY
    assert report.is_ready
    assert report.to_dict() == {"status": "healthy", "reasons": [], "components": {}}


def test_the_worst_critical_component_decides() -> None:
    health = HealthAggregator()
    health.set("policy_engine", HealthState.HEALTHY)
    health.set("audit_sink", HealthState.DEGRADED, "slow writes")
    assert health.state is HealthState.DEGRADED
    health.set("policy_engine", "unhealthy", "bundle failed to load")
    report = health.report()
    assert report.state is HealthState.UNHEALTHY
    assert not report.is_ready
    assert report.reasons == ("audit_sink: slow writes", "policy_engine: bundle failed to load")


def test_a_non_critical_component_only_degrades() -> None:
    health = HealthAggregator()
    health.set("policy_engine", HealthState.HEALTHY)
    health.set("cache_l2", HealthState.UNHEALTHY, "redis refused", critical=False)
    report = health.report()
    assert report.state is HealthState.DEGRADED
    assert report.is_ready
    assert report.to_dict()["components"]["cache_l2"]["critical"] is False
    # criticality sticks when the component reports again without saying
    health.set("cache_l2", HealthState.UNHEALTHY, "still refused")
    assert health.state is HealthState.DEGRADED


def test_report_says_how_long_a_component_has_been_in_its_state() -> None:
    clock = ManualClock()
    health = HealthAggregator(clock=clock)
    health.set("transport", HealthState.DEGRADED, "reconnecting")
    clock.now += 12.5
    health.set("transport", HealthState.DEGRADED, "still reconnecting")  # same state: no reset
    clock.now += 2.5
    assert health.report().to_dict()["components"]["transport"]["for_s"] == 15.0


def test_probes_are_polled_at_report_time() -> None:
    breaker = {"breaker_state": 0}
    health = HealthAggregator()
    health.register_probe("cache_l2", breaker_probe(lambda: breaker), critical=False)
    assert health.state is HealthState.HEALTHY
    breaker["breaker_state"] = 2
    report = health.report()
    assert report.state is HealthState.DEGRADED
    assert report.reasons == ("cache_l2: circuit breaker open",)
    breaker["breaker_state"] = 1
    assert health.report().components[0].state is HealthState.DEGRADED


def test_a_raising_probe_marks_its_component_unhealthy_and_is_counted() -> None:
    def probe() -> HealthState:
        raise OSError("socket closed")

    health = HealthAggregator()
    health.register_probe("transport", probe)
    report = health.report()
    assert report.state is HealthState.UNHEALTHY
    assert report.reasons == ("transport: health probe raised OSError",)
    assert health.stats()["probe_errors"] >= 1


def test_duplicate_probe_and_bad_state_are_rejected() -> None:
    health = HealthAggregator()
    health.register_probe("x", lambda: HealthState.HEALTHY)
    with pytest.raises(ConfigurationError, match="already has a probe"):
        health.register_probe("x", lambda: HealthState.HEALTHY)
    with pytest.raises(ConfigurationError, match="not one of"):
        health.set("y", "sick")
    health.remove("x")
    assert health.report().components == ()


def test_components_are_bounded() -> None:
    health = HealthAggregator(max_components=2)
    health.set("a", HealthState.HEALTHY)
    health.set("b", HealthState.HEALTHY)
    with pytest.raises(ConfigurationError, match="max_components"):
        health.set("c", HealthState.HEALTHY)


@pytest.mark.parametrize(
    ("state", "expected"),
    [(0, "healthy"), ("closed", "healthy"), (1, "degraded"), ("half-open", "degraded"),
     ("HALF_OPEN", "degraded"), (2, "unhealthy"), ("open", "unhealthy")],
)  # fmt: skip
def test_breaker_states_map_to_health(state: int | str, expected: str) -> None:
    assert breaker_health(state) is HealthState(expected)


def test_unknown_breaker_state_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="not 0/1/2"):
        breaker_health(7)


async def test_listeners_run_after_set_returns_not_inside_it() -> None:
    health = HealthAggregator()
    seen: list[HealthChange] = []
    health.add_listener(seen.append)
    health.set("policy_engine", HealthState.HEALTHY)
    health.set("policy_engine", HealthState.UNHEALTHY, "engine crashed")
    assert seen == []  # scheduled with call_soon, not run on the caller's stack
    await asyncio.sleep(0)
    assert len(seen) == 1
    change = seen[0]
    assert (change.component, change.previous, change.current) == (
        "policy_engine",
        HealthState.HEALTHY,
        HealthState.UNHEALTHY,
    )
    assert (change.overall_previous, change.overall) == (HealthState.HEALTHY, HealthState.UNHEALTHY)
    assert change.reason == "engine crashed"


async def test_unchanged_state_notifies_nobody() -> None:
    health = HealthAggregator()
    seen: list[HealthChange] = []
    health.add_listener(seen.append)
    health.set("a", HealthState.DEGRADED, "x")
    health.set("a", HealthState.DEGRADED, "y")
    health.set("a", HealthState.DEGRADED, "y")
    await asyncio.sleep(0)
    assert [c.current for c in seen] == [HealthState.DEGRADED]
    assert health.stats()["transitions"] == 1


async def test_a_raising_listener_is_counted_and_others_still_run() -> None:
    health = HealthAggregator()
    seen: list[str] = []

    def broken(change: HealthChange) -> None:
        raise RuntimeError("listener bug")

    health.add_listener(broken)
    health.add_listener(lambda change: seen.append(change.component))
    health.set("a", HealthState.UNHEALTHY, "down")  # must not raise
    await asyncio.sleep(0)
    assert seen == ["a"]
    assert health.stats()["callback_errors"] == 1


async def test_async_listeners_run_on_the_supervisor_and_failures_are_counted() -> None:
    supervisor = TaskSupervisor()
    health = HealthAggregator(supervisor=supervisor)
    done = asyncio.Event()
    seen: list[HealthState] = []

    async def record(change: HealthChange) -> None:
        seen.append(change.current)
        done.set()

    async def broken(change: HealthChange) -> None:
        raise ValueError("async listener bug")

    health.add_listener(record)
    health.add_listener(broken)
    health.set("a", HealthState.DEGRADED, "slow")
    await asyncio.wait_for(done.wait(), timeout=1)
    assert await supervisor.wait(timeout_s=1)
    assert seen == [HealthState.DEGRADED]
    assert health.stats()["callback_errors"] == 1
    assert supervisor.failure is None  # the failure was contained, not a task crash
    await supervisor.aclose()


def test_async_listener_without_supervisor_is_refused() -> None:
    async def listener(change: HealthChange) -> None:
        return None

    with pytest.raises(ConfigurationError, match="TaskSupervisor"):
        HealthAggregator().add_listener(listener)


def test_without_an_event_loop_listeners_run_synchronously() -> None:
    health = HealthAggregator()
    seen: list[str] = []
    health.add_listener(lambda change: seen.append(change.component))
    health.set("a", HealthState.UNHEALTHY, "down")
    assert seen == ["a"]


async def test_set_from_another_thread_notifies_on_the_loop() -> None:
    health = HealthAggregator()
    loop_thread = threading.get_ident()
    called_on: list[int] = []
    notified = asyncio.Event()

    def listener(change: HealthChange) -> None:
        called_on.append(threading.get_ident())
        notified.set()

    health.add_listener(listener)  # remembers the running loop
    await asyncio.to_thread(health.set, "executor_component", HealthState.DEGRADED, "slow")
    await asyncio.wait_for(notified.wait(), timeout=1)
    assert called_on == [loop_thread]


def test_health_is_exported_as_gauges() -> None:
    metrics = BusMetrics()
    health = HealthAggregator()
    metrics.attach_health(health)
    health.set("policy_engine", HealthState.HEALTHY)
    health.set("cache_l2", HealthState.UNHEALTHY, "down", critical=False)
    get = metrics.registry.get_sample_value
    assert get("agentbus_health_state", {}) == 1
    assert get("agentbus_health_component_state", {"component": "cache_l2"}) == 2
    assert get("agentbus_health_component_state", {"component": "policy_engine"}) == 0
    assert get("agentbus_health_transitions_total", {}) == 1
