"""Shared observability fixtures: the real demo run, and a synthetic feed for unbuilt parts.

:func:`run_demo_traffic` is the one place that decides what "the bus's
exposition after a demo-like run" is (``exposition_after_run()`` returns its
/metrics body; the ``real_run`` and ``exposition`` fixtures hold it for the
session). It runs the demo's agents and traffic (``enhanced_agent_bus/demo.py``)
on a real :class:`AgentBus` in-process, flushes audit and metering, and
captures ``bus.metrics.exposition()`` and ``bus.stats()`` before the bus stops.
``run_demo`` itself cannot be used for this: a bus unregisters its metrics when
it stops, and ``run_demo`` has no hook between the end of its scenario and the
stop, so :class:`DemoTraffic` runs the demo's own scenario functions on a bus it owns.

Components the catalogue maps stats for but the bus does not have yet
(:data:`NOT_YET_BUILT`) produce nothing on a real bus. Dashboard queries that
read them (:func:`query_component`) are proven against
:class:`RepresentativeRun`, a ``BusMetrics`` fed by hand with every key of the
stats contract. Nothing else is exempt; :data:`KNOWN_GAPS` lists families a
built component should feed but does not (a package bug), each one a strict
xfail until it is fixed.

The integration test (tests/integration/observability) and test_dashboards.py
load this file by path to reuse all of the above, so keep it importable on its own.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

from enhanced_agent_bus import (
    AgentBus,
    BusSettings,
    RetrySettings,
)
from enhanced_agent_bus.background import AuditSettings, MeteringSettings
from enhanced_agent_bus.demo import (
    DemoReport,
    register_demo_agents,
    send_denied_traffic,
    send_normal_traffic,
)
from enhanced_agent_bus.models import (
    AgentMessage,
    DeadLetter,
    DeliveryResult,
    DeliveryStatus,
    MessageType,
    Reason,
)
from enhanced_agent_bus.observability import (
    STAT_METRICS,
    BusMetrics,
    DashboardQuery,
    HealthAggregator,
    HealthState,
    ObservabilitySettings,
    StatValue,
    TenantLabelPolicy,
    family_of_sample,
    render,
    selectors,
)

# --- the real run: demo.py's agents and traffic on a real AgentBus ---------------------------

DEMO_ROUNDS: Final = 3


def demo_settings(scratch: Path, *, stage_timing_sample_every: int = 16) -> BusSettings:
    """The demo's settings with tenant labels on; audit and metering write under ``scratch``."""
    database = scratch / "agentbus-audit.sqlite3"
    return BusSettings(
        rotation_grace_s=0.0,  # as the demo: the rotated-out hash is stale at once
        # The demo retries the flaky tool once after 10 ms; without retries the call is
        # dead-lettered at once (same metrics, and unit tests do not sleep).
        retry=RetrySettings(max_retries=0),
        audit=AuditSettings(sqlite_path=database),
        metering=MeteringSettings(sqlite_path=database),
        observability=ObservabilitySettings(
            tenant_labels="all", stage_timing_sample_every=stage_timing_sample_every
        ),
    )


class DemoTraffic:
    """demo.py's agents and messages (the package's own scenario functions), on a bus the
    test owns - so it can read the bus's exposition before the bus stops.

    :meth:`setup` registers the demo's agents; each :meth:`round` sends one round of
    the demo's normal traffic, rotates the constitution, and sends every message the
    demo expects to be denied (plus the transfer that passes its constraint).
    """

    def __init__(self, bus: AgentBus, scratch: Path) -> None:
        self.bus = bus
        self._scratch = scratch
        self._report = DemoReport()
        self._rounds = 0

    @property
    def results(self) -> list[DeliveryResult]:
        return [result for _, result in self._report.results]

    async def setup(self) -> None:
        await register_demo_agents(self.bus)

    async def round(self, index: int) -> None:
        self._rounds += 1
        scratch = self._scratch / f"round-{self._rounds}"
        scratch.mkdir()
        await send_normal_traffic(self.bus, self._report, rounds=1)
        await send_denied_traffic(self.bus, self._report, scratch)


@dataclass(frozen=True)
class RealRun:
    """What a real bus showed after the demo traffic, captured before it stopped."""

    exposition: bytes
    stats: dict[str, dict[str, StatValue]]
    pipeline_stages: tuple[str, ...]
    results: list[DeliveryResult] = field(repr=False)


async def run_demo_traffic(rounds: int = DEMO_ROUNDS) -> RealRun:
    """Run :class:`DemoTraffic` on a fresh bus and capture its exposition before it stops."""
    with tempfile.TemporaryDirectory(prefix="agentbus-observability-") as scratch:
        async with AgentBus(demo_settings(Path(scratch))) as bus:
            traffic = DemoTraffic(bus, Path(scratch))
            await traffic.setup()
            for index in range(rounds):
                await traffic.round(index)
            # What the next scrape sees once the background batches are written: metering's
            # per-tenant totals only exist for what it has flushed.
            if bus.audit is None or bus.metering is None or bus.metrics is None:
                raise RuntimeError("the demo settings enable audit, metering and metrics")
            await bus.audit.flush()
            await bus.metering.flush()
            return RealRun(
                bus.metrics.exposition(), bus.stats(), bus.pipeline_stages, traffic.results
            )


def exposition_after_run() -> bytes:
    """The real bus's /metrics body after a demo-like run (see :func:`run_demo_traffic`)."""
    return _run_without_agentbus_environment().exposition


def _run_without_agentbus_environment() -> RealRun:
    # Session fixtures set up before the function-scoped clean_environ, so a developer's
    # AGENTBUS_* variables are cleared here as well.
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("AGENTBUS_"):
                patch.delenv(name)
        return asyncio.run(run_demo_traffic())


# --- what is exempt from the real run, and why -----------------------------------------------

#: Components the catalogue maps stats for that the bus does not have yet.
NOT_YET_BUILT: Final[Mapping[str, str]] = {
    "deliberation": "no deliberation layer: the bus denies DELIBERATE verdicts "
    "(code deliberation_unavailable), so nothing is ever pending or resolved",
    "workflow": "no workflow engine: no workflow stats, and nothing calls "
    "BusMetrics.observe_workflow_step",
}
# The catalogue says which component feeds a scrape-time family (StatSpec.component), but
# not for hot-path families and label values, so those are listed here.
_UNBUILT_HOT_FAMILIES: Final[Mapping[str, str]] = {
    "agentbus_workflow_step_duration_seconds": "workflow",
}
_UNBUILT_LABEL_VALUES: Final[Mapping[tuple[str, str, str], str]] = {
    ("agentbus_messages_total", "outcome", "deliberating"): "deliberation",
}

#: Families a built component should feed but does not (a package bug); strict xfails.
KNOWN_GAPS: Final[Mapping[str, str]] = {}


def unbuilt_families() -> dict[str, str]:
    """Family -> the not-yet-built component that alone feeds it (from STAT_METRICS)."""
    fed_by: dict[str, set[str]] = {}
    for spec in STAT_METRICS:
        fed_by.setdefault(spec.family, set()).add(spec.component)
    families = {
        family: next(iter(components))
        for family, components in fed_by.items()
        if len(components) == 1 and components <= NOT_YET_BUILT.keys()
    }
    families.update(_UNBUILT_HOT_FAMILIES)
    return families


def unbuilt_label_values() -> dict[tuple[str, str, str], str]:
    """(family, label, value) of a real family that only a not-yet-built component produces."""
    return dict(_UNBUILT_LABEL_VALUES)


_MATCHER_BLOCK: Final = re.compile(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_EQUALITY: Final = re.compile(r'([A-Za-z_]\w*)\s*(?<![!=~])=(?!~)\s*"((?:[^"\\]|\\.)*)"')


def equality_matchers(expr: str) -> list[tuple[str, dict[str, str]]]:
    """(sample name, {label: value}) of each selector with ``label="value"`` matchers."""
    found: list[tuple[str, dict[str, str]]] = []
    for block in _MATCHER_BLOCK.finditer(render(expr)):
        matchers = dict(_EQUALITY.findall(block.group(2)))
        if matchers:
            found.append((block.group(1), matchers))
    return found


def _family_name(sample: str) -> str:
    family = family_of_sample(sample)
    return family.name if family is not None else sample


def query_component(query: DashboardQuery) -> str | None:
    """The not-yet-built component ``query`` reads, or None when the real bus must answer it."""
    families = unbuilt_families()
    for selector in selectors(query.expr):
        component = families.get(_family_name(selector.metric))
        if component is not None:
            return component
    values = unbuilt_label_values()
    for sample, matchers in equality_matchers(query.expr):
        for label, value in matchers.items():
            component = values.get((_family_name(sample), label, value))
            if component is not None:
                return component
    return None


def known_gap(query: DashboardQuery) -> str | None:
    """Why the real bus cannot answer ``query`` yet (a package bug), or None."""
    for selector in selectors(query.expr):
        reason = KNOWN_GAPS.get(_family_name(selector.metric))
        if reason is not None:
            return reason
    return None


# --- the synthetic feed, for the not-yet-built components only --------------------------------

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
        "constraints": {
            "checks_total": 30 * n,
            "violations_total": 3 * n,
            "engine_errors_total": n,
        },
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
    """A BusMetrics fed by hand like a run would: call :meth:`step` to add one round.

    Only the not-yet-built components' panels are proven against this feed; every
    other family must come from :func:`run_demo_traffic` (a real bus).
    """

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


def synthetic_exposition() -> bytes:
    """The hand-fed exposition the not-yet-built components' queries are checked against."""
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
def real_run() -> RealRun:
    return _run_without_agentbus_environment()


@pytest.fixture(scope="session")
def exposition(real_run: RealRun) -> bytes:
    return real_run.exposition


@pytest.fixture(scope="session")
def synthetic() -> bytes:
    return synthetic_exposition()
