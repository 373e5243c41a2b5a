"""The scenario behind ``agent-bus demo``: two tenants, normal traffic, and what must be denied.

Runs on embedded defaults (no servers). Every message's outcome is collected
into a :class:`DemoReport` the CLI prints and the tests assert on.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bus import AgentBus
from .constitution import default_bundle_path
from .context import AgentContext
from .errors import DeliveryFailedError
from .models import AgentMessage, DeliveryResult, DeliveryStatus, MessageType
from .settings import BusSettings, RetrySettings


@dataclass
class DemoReport:
    """What the demo did: every result, grouped for the summary table."""

    results: list[tuple[str, DeliveryResult]] = field(default_factory=list)
    dead_letters: list[tuple[str, str]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    agents: int = 0
    tenants: int = 0
    constitutional_hash: str = ""
    stats: dict[str, dict[str, float | int | str]] = field(default_factory=dict)
    audit_path: str = ""
    audit_records: int = 0
    audit_head: str = ""

    def record(self, label: str, result: DeliveryResult | list[DeliveryResult]) -> None:
        for one in result if isinstance(result, list) else [result]:
            self.results.append((label, one))

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(result.status.value for _, result in self.results)

    @property
    def denials(self) -> Counter[str]:
        return Counter(
            f"{r.reasons[0].stage}/{r.reasons[0].code}"
            for _, r in self.results
            if r.status is DeliveryStatus.DENIED and r.reasons
        )

    def latency_percentiles_us(self) -> dict[str, float]:
        latencies = sorted(r.latency_us for _, r in self.results)
        if not latencies:
            return {}

        def pick(fraction: float) -> float:
            return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))]

        return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": latencies[-1]}


async def _planner(message: AgentMessage, context: AgentContext) -> dict[str, Any]:
    return {"ack": True}


async def _coder(message: AgentMessage, context: AgentContext) -> dict[str, Any]:
    if message.message_type is MessageType.QUERY:
        return {"status": "green", "tests": 42}
    await context.publish("builds", {"build": message.payload.get("task", "?"), "ok": True})
    return {"done": message.payload.get("task")}


async def _reviewer(message: AgentMessage, context: AgentContext) -> dict[str, Any]:
    return {"reviewed": message.message_id}


async def _flaky(message: AgentMessage, context: AgentContext) -> dict[str, Any]:
    raise ConnectionError("upstream model API unavailable")


async def run_demo(
    settings: BusSettings | None = None,
    *,
    rounds: int = 20,
    metrics_port: int | None = None,
    hold_s: float = 0.0,
    on_serving: Callable[[int], None] | None = None,
) -> DemoReport:
    """Run the demo scenario on a fresh bus and return its report.

    With ``metrics_port`` the bus serves ``/metrics`` while the scenario runs and
    for ``hold_s`` seconds after it (so a Prometheus can scrape the result).
    """
    base = settings or BusSettings()
    demo_settings = base.model_copy(
        update={
            "rotation_grace_s": 0.0,  # so the rotated-out hash is stale at once
            "retry": RetrySettings(max_retries=1, backoff_initial_s=0.01),
        }
    )
    report = DemoReport()
    with tempfile.TemporaryDirectory(prefix="agentbus-demo-") as scratch:
        async with AgentBus(demo_settings) as bus:
            server = bus.metrics_server  # AGENTBUS_OBSERVABILITY__METRICS_PORT serves at start
            if server is None and metrics_port is not None:
                server = await bus.serve_metrics(metrics_port)
            if server is not None and on_serving is not None:
                on_serving(server.port)
            await register_demo_agents(bus)
            report.agents = len(bus.agents())
            report.tenants = len({a.tenant_id for a in bus.agents()})
            await send_normal_traffic(bus, report, rounds)
            await send_denied_traffic(bus, report, Path(scratch))
            report.constitutional_hash = bus.constitutional_hash
            await asyncio.sleep(0.05)  # let the dead-letter retries finish before stop
            if hold_s > 0:
                await asyncio.sleep(hold_s)
        report.dead_letters = [(d.recipient, d.code) for d in bus.dead_letters()]
        if bus.audit is not None and demo_settings.audit.sink == "sqlite":
            report.audit_path = str(demo_settings.audit.sqlite_path)
            report.audit_records = bus.audit.head_seq
            report.audit_head = bus.audit.head_hash
        report.stats = bus.stats()
    return report


async def register_demo_agents(bus: AgentBus) -> None:
    """The demo's seven agents in two tenants, and their topic subscriptions."""
    await bus.register_agent("planner", _planner, tenant_id="acme", role="planner")
    await bus.register_agent("coder", _coder, tenant_id="acme", role="worker")
    await bus.register_agent("reviewer", _reviewer, tenant_id="acme", role="reviewer")
    await bus.register_agent("flaky-tool", _flaky, tenant_id="acme", role="worker")
    await bus.register_agent("council", _reviewer, tenant_id="acme", role="governance")
    await bus.register_agent("analyst", _planner, tenant_id="globex", role="planner")
    await bus.register_agent("reporter", _reviewer, tenant_id="globex", role="worker")
    await bus.subscribe("reviewer", "builds")
    await bus.subscribe("reporter", "builds")  # another tenant: must never see acme's builds


async def send_normal_traffic(bus: AgentBus, report: DemoReport, rounds: int) -> None:
    """Commands in both tenants, a request/reply, a topic event, a broadcast, a failing tool."""
    for i in range(rounds):
        report.record(
            "command",
            await bus.send_message(bus.message("planner", "coder", {"task": f"write tests #{i}"})),
        )
        report.record(
            "command",
            await bus.send_message(bus.message("analyst", "reporter", {"report": f"weekly #{i}"})),
        )
    reply = await bus.request(
        bus.message("planner", "coder", {"q": "status?"}, message_type=MessageType.QUERY),
        timeout=5,
    )
    report.replies.append(reply.payload)
    report.record(
        "event",
        await bus.publish(
            "builds",
            bus.message(
                "coder", None, {"build": "main", "ok": True}, message_type=MessageType.EVENT
            ),
        ),
    )
    report.record(
        "broadcast",
        await bus.broadcast(
            bus.message(
                "analyst", None, {"notice": "quarter closed"}, message_type=MessageType.NOTIFICATION
            )
        ),
    )
    # The handler always fails: after its retries the message is dead-lettered (see report).
    with contextlib.suppress(DeliveryFailedError):
        await bus.request(bus.message("planner", "flaky-tool", {"call": "llm"}), timeout=5)


async def send_denied_traffic(bus: AgentBus, report: DemoReport, scratch: Path) -> None:
    """Rotate the constitution, then send one message per way the pipeline denies (and the
    transfer that passes its constraint). ``scratch`` is a writable, empty directory."""
    # Rotate the constitution: a message built under the old hash is now stale.
    built_before_rotation = bus.message("planner", "coder", {"task": "old plan"})
    amended = scratch / "constitution-v2"
    shutil.copytree(default_bundle_path(), amended)
    # Naming the hash it amends makes every rotation a new constitution.
    (amended / "AMENDMENT.md").write_text(f"Amends constitution {bus.constitutional_hash}.\n")
    await bus.load_constitution(amended)
    report.record("stale hash", await bus.send_message(built_before_rotation))
    report.record(
        "forged hash",
        await bus.send_message(
            bus.message("planner", "coder", {"task": "x"}, constitutional_hash="0" * 64)
        ),
    )
    report.record(
        "cross-tenant",
        await bus.send_message(bus.message("planner", "reporter", {"peek": "globex numbers"})),
    )
    report.record(
        "oversize",
        await bus.send_message(
            bus.message("planner", "coder", {"blob": "x" * (bus.settings.max_payload_bytes + 1)})
        ),
    )
    # The constitution's Rego policy: roles may only send what the role matrix allows...
    order = bus.message("coder", "planner", {"order": "deploy now"})
    report.record("role matrix", await bus.send_message(order))
    # ...and separation of powers: a validator never validates its own proposal.
    for label, proposer in (("governance", "planner"), ("self-validation", "reviewer")):
        validation = bus.message(
            "reviewer",
            "council",
            {"proposal": label},
            message_type=MessageType.GOVERNANCE_REQUEST,
            metadata={"action": "validate", "proposed_by": proposer},
        )
        report.record(label, await bus.send_message(validation))
    # Formal constraints (checked with the compiled evaluator of the constraint AST that
    # Z3 verified at load): a transfer must fit the budget it carries.
    for label, amount in (("transfer in budget", 2500), ("transfer over budget", 7500)):
        transfer = bus.message(
            "planner",
            "coder",
            {"action": "transfer", "amount": amount, "currency": "EUR", "to_account": "ACME-OPS-7"},
            metadata={"budget": "5000"},
        )
        report.record(label, await bus.send_message(transfer))
