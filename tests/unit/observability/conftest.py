"""Shared observability fixtures: a representative run that feeds every metric family.

``exposition_after_run()`` is the one place that decides what "the bus's
exposition after a demo-like run" is. Today it drives :class:`BusMetrics`
directly with decisions covering every outcome, a stats dict holding every
component key of the contract, and a health aggregator. When the demo exists,
switch this function to run it (``agent-bus demo`` in-process) and return its
exposition; the dashboard tests and the real-Prometheus test follow.

The integration test (tests/integration/observability) loads this file by path
to reuse :class:`RepresentativeRun`, so keep it importable on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from enhanced_agent_bus.models import (
    AgentMessage,
    DeadLetter,
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
    TenantLabelPolicy,
)

TENANTS = ("acme", "globex", "initech")
STAGES = ("constitutional_hash", "tenant_isolation", "policy", "constraints", "impact")
#: (status, reason) pairs covering every outcome and the deny reasons dashboards filter on.
DECISIONS: tuple[tuple[DeliveryStatus, Reason | None, float], ...] = (
    (DeliveryStatus.DELIVERED, None, 38.0),
    (DeliveryStatus.DELIVERED, None, 61.0),
    (DeliveryStatus.DENIED, Reason("policy", "role_not_allowed", "role may not send"), 22.0),
    (DeliveryStatus.DENIED, Reason("tenant_isolation", "cross_tenant", "tenant boundary"), 4.0),
    (DeliveryStatus.DENIED, Reason("constraints", "constraint_violated", "limit exceeded"), 90.0),
    (DeliveryStatus.DELIBERATING, Reason("impact", "impact_threshold", "needs review"), 55.0),
    (DeliveryStatus.DEAD_LETTERED, Reason("handler", "handler_error", "handler raised"), 900.0),
)


def representative_stats(round_: int) -> dict[str, Mapping[str, StatValue]]:
    """Every component key of the stats contract, with counters growing with ``round_``."""
    n = round_ + 1
    background = {
        "queue_depth": 3,
        "submitted": 100 * n,
        "written": 97 * n,
        "dropped": n,
        "batches": 4 * n,
        "sink_errors": n,
        "retries": 2 * n,
        "retry_buffer_depth": 1,
        "flush_seconds_sum": 0.004 * n,
        "flush_seconds_count": 4 * n,
    }
    return {
        "bus": {
            "sent_total": 50 * n,
            "delivered_total": 40 * n,
            "denied_total": 8 * n,
            "dead_lettered_total": n,
            "backpressure_rejections_total": n,
            "backpressure_drops_total": 2 * n,
            "mailbox_depth": 7,
            "agents": 5,
            "constitutional_hash": "3f2a9c0d",
        },
        "cache": {
            "l1_hits": 80 * n,
            "l1_misses": 20 * n,
            "l1_evictions": n,
            "l1_expirations": 2 * n,
            "l1_size": 120,
            "l2_hits": 12 * n,
            "l2_misses": 8 * n,
            "l2_errors": n,
            "l2_tampered": n,
            "breaker_state": 0,
        },
        "policy": {"evaluations": 8 * n, "errors": n, "denials": 2 * n, "timeouts": n},
        "constraints": {"checks": 30 * n, "violations": 3 * n, "errors": n},
        "audit": background,
        "metering": dict(background, submitted=50 * n, written=49 * n),
        "deliberation": {"pending": 2, "approved": 3 * n, "denied": n, "timed_out": n},
        "workflow": {
            "runs_started": 4 * n,
            "runs_succeeded": 2 * n,
            "runs_failed": n,
            "runs_cancelled": n,
            "runs_active": 1,
            "steps_succeeded": 10 * n,
            "steps_failed": n,
            "steps_timed_out": n,
            "steps_skipped": n,
            "step_retries": 2 * n,
        },
        "remote_opa": {"breaker_state": 1},
    }


class RepresentativeRun:
    """A BusMetrics fed like a demo run: call :meth:`step` to add one round of traffic."""

    def __init__(self, tenant_labels: TenantLabelPolicy = "all") -> None:
        self.metrics = BusMetrics(tenant_labels=tenant_labels)
        self.health = HealthAggregator()
        self.health.set("policy_engine", HealthState.HEALTHY)
        self.health.set("cache_l2", HealthState.DEGRADED, "breaker half-open", critical=False)
        self.health.set("audit_sink", HealthState.HEALTHY)
        self.rounds = 0
        #: What Metering.snapshot() would hold: (tenant, agent, type, outcome) -> (messages, bytes).
        self.usage: dict[tuple[str, str, str, str], tuple[int, int]] = {}
        self.metrics.attach_stats(lambda: representative_stats(self.rounds))
        self.metrics.attach_usage(lambda: self.usage)
        self.metrics.attach_health(self.health)

    def _meter(self, message: AgentMessage, status: DeliveryStatus) -> None:
        key = (message.tenant_id, message.from_agent, message.message_type.value, status.value)
        messages, size = self.usage.get(key, (0, 0))
        self.usage[key] = (messages + 1, size + message.payload_size_bytes)

    def step(self) -> None:
        observer = self.metrics.observer
        for index, tenant in enumerate(TENANTS):
            for message_type in (MessageType.COMMAND, MessageType.EVENT, MessageType.QUERY):
                message = AgentMessage(
                    from_agent="planner",
                    to_agent="coder",
                    tenant_id=tenant,
                    message_type=message_type,
                    payload={"task": "x" * (10 * (index + 1))},
                )
                for status, reason, latency_us in DECISIONS:
                    reasons = (reason,) if reason is not None else ()
                    result = DeliveryResult(
                        message.message_id, status, reasons, latency_us, recipient="coder"
                    )
                    observer.on_decision(message, result)
                    self._meter(message, status)
            dead = AgentMessage(from_agent="planner", to_agent="coder", tenant_id=tenant)
            observer.on_dead_letter(DeadLetter(dead, "coder", "boom", "handler_error", 3))
            observer.on_dead_letter(DeadLetter(dead, "coder", "slow", "handler_timeout", 3))
        for position, stage in enumerate(STAGES):
            for sample in range(5):
                self.metrics.observe_stage(stage, (position + 1) * (sample + 1) * 2e-6)
        for outcome, seconds in (("succeeded", 0.2), ("failed", 1.5), ("timed_out", 30.0)):
            self.metrics.observe_workflow_step(outcome, seconds)
        self.rounds += 1


def exposition_after_run() -> bytes:
    """The bus's /metrics body after a demo-like run (the one place to change)."""
    run = RepresentativeRun()
    for _ in range(3):
        run.step()
    return run.metrics.exposition()


@pytest.fixture
def stats_for_round() -> Callable[[int], dict[str, Mapping[str, StatValue]]]:
    return representative_stats


@pytest.fixture
def run() -> RepresentativeRun:
    return RepresentativeRun()


@pytest.fixture(scope="session")
def exposition() -> bytes:
    return exposition_after_run()
