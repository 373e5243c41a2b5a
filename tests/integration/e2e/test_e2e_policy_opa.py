"""AgentBus with a remote OPA backend (the OPA-compatible test server running the real Rego)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from enhanced_agent_bus import AgentBus, BusSettings, DeliveryStatus, MessageType, Priority
from enhanced_agent_bus.policy import PolicySettings
from tests.integration.e2e.e2e_helpers import Inbox, Send
from tests.integration.policy.opa_compatible_server import OpaCompatibleServer

AGENTS = {
    "planner-1": ("acme", "planner"),
    "worker-1": ("acme", "worker"),
    "reviewer-1": ("acme", "reviewer"),
    "governance-1": ("acme", "governance"),
    "auditor-2": ("acme-audit", "auditor"),
}

SENDS = [
    Send("planner-1", "worker-1"),
    Send("worker-1", "planner-1"),
    Send("planner-1", "worker-1", priority=Priority.CRITICAL),
    Send("planner-1", "governance-1", MessageType.GOVERNANCE_REQUEST),
    Send(
        "reviewer-1",
        "governance-1",
        MessageType.GOVERNANCE_REQUEST,
        metadata={"action": "validate", "proposed_by": "reviewer-1"},
    ),
    Send(
        "reviewer-1",
        "governance-1",
        MessageType.GOVERNANCE_REQUEST,
        metadata={"action": "validate", "proposed_by": "planner-1"},
    ),
    Send("planner-1", "auditor-2", MessageType.EVENT),
    Send("planner-1", "worker-1", MessageType.HEARTBEAT, payload={"pad": "x" * 300}),
]


async def register(bus: AgentBus) -> None:
    for agent_id, (tenant, role) in AGENTS.items():
        await bus.register_agent(agent_id, Inbox(), tenant_id=tenant, role=role)


async def outcomes(bus: AgentBus) -> list[tuple[DeliveryStatus, tuple[tuple[str, str, str], ...]]]:
    out = []
    for case in SENDS:
        result = await bus.send_message(case.build(bus))
        reasons = tuple(sorted((r.stage, r.code, r.message) for r in result.reasons))
        out.append((result.status, reasons))
    return out


def opa_settings(url: str, **policy: object) -> BusSettings:
    return BusSettings(
        drain_timeout_s=2.0,
        policy=PolicySettings.model_validate({"backend": "opa", "opa_url": url, **policy}),
    )


@pytest.fixture
async def embedded_outcomes() -> AsyncIterator[list[object]]:
    async with AgentBus(BusSettings(drain_timeout_s=2.0)) as bus:
        await register(bus)
        yield list(await outcomes(bus))


async def test_opa_backend_decides_like_the_embedded_engine(
    opa_server: OpaCompatibleServer, embedded_outcomes: list[object]
) -> None:
    async with AgentBus(opa_settings(opa_server.url)) as bus:
        await register(bus)
        remote = await outcomes(bus)
        policy = bus.stats()["policy"]
    assert remote == embedded_outcomes
    statuses = [status for status, _ in remote]
    assert statuses.count(DeliveryStatus.DELIVERED) == 3
    assert statuses.count(DeliveryStatus.DENIED) == 5
    # One HTTP decision per distinct question; none failed.
    assert opa_server.requests == policy["opa_requests"] == int(policy["evaluations"]) > 0
    assert policy["errors"] == 0


async def test_a_hanging_opa_denies_with_policy_error_and_is_counted(
    opa_server: OpaCompatibleServer,
) -> None:
    opa_server.mode = "hang"
    settings = opa_settings(opa_server.url, opa_timeout_s=0.05, opa_retries=0)
    async with AgentBus(settings) as bus:
        inbox = Inbox()
        await bus.register_agent("planner-1", Inbox(), tenant_id="acme", role="planner")
        await bus.register_agent("worker-1", inbox, tenant_id="acme", role="worker")
        result = await bus.send_message(Send("planner-1", "worker-1").build(bus))
        assert result.status is DeliveryStatus.DENIED
        (reason,) = result.reasons
        assert (reason.stage, reason.code) == ("policy", "policy_error")
        assert "fail closed" in reason.message
        assert "no answer within 0.05 s" in reason.message
        policy = bus.stats()["policy"]
        assert (policy["errors"], policy["opa_timeouts"], policy["opa_unavailable"]) == (1, 1, 1)
        assert bus.stats()["denied_by_code"] == {"policy_error": 1}

        # Errors are never cached: once OPA answers again, the same question is allowed.
        opa_server.mode = "ok"
        again = Send("planner-1", "worker-1").build(bus)
        assert (await bus.send_message(again)).status is DeliveryStatus.DELIVERED
        await inbox.wait_for(again.message_id)
        assert len(inbox.messages) == 1
