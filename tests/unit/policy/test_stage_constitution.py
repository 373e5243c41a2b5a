"""Every rule of the default constitution, decided by PolicyStage on real messages.

Each case is one message (sender role -> recipient role, type, priority,
metadata, tenants); the lead's end-to-end tests send the same messages
through ``send_message``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from enhanced_agent_bus.constitution import Constitution
from enhanced_agent_bus.models import AgentMessage, MessageType, Priority
from enhanced_agent_bus.pipeline import ALLOW, StageContext, ValidationStage, Verdict, VerdictKind
from enhanced_agent_bus.pipeline._policy import PolicyStage
from enhanced_agent_bus.registry import AgentRecord

AgentFactory = Callable[..., AgentRecord]


@dataclass(frozen=True)
class Case:
    sender_role: str
    recipient_role: str | None
    message_type: MessageType
    priority: Priority = Priority.NORMAL
    metadata: dict[str, str] = field(default_factory=dict)
    sender_tenant: str = "acme"
    recipient_tenant: str = "acme"
    message_tenant: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    topic: str | None = None


ALLOWED = {
    "planner commands worker": Case("planner", "worker", MessageType.COMMAND),
    "worker responds to planner": Case("worker", "planner", MessageType.RESPONSE),
    "planner proposes to reviewer": Case(
        "planner", "reviewer", MessageType.COMMAND, metadata={"action": "propose"}
    ),
    "reviewer validates another's proposal": Case(
        "reviewer",
        "governance",
        MessageType.GOVERNANCE_REQUEST,
        metadata={"action": "validate", "proposed_by": "planner-1"},
    ),
    "governance approves another's proposal": Case(
        "governance",
        "reviewer",
        MessageType.GOVERNANCE_RESPONSE,
        metadata={"action": "approve", "proposed_by": "planner-1"},
    ),
    "governance channel between governance agents": Case(
        "governance", "governance", MessageType.GOVERNANCE_REQUEST
    ),
    "governance sends CRITICAL": Case(
        "governance", "worker", MessageType.NOTIFICATION, priority=Priority.CRITICAL
    ),
    "auditor queries anyone": Case("auditor", "planner", MessageType.QUERY),
    "heartbeat to any role": Case("worker", "reviewer", MessageType.HEARTBEAT),
    "allow-listed cross-tenant pair and type": Case(
        "planner", "auditor", MessageType.EVENT, recipient_tenant="acme-audit"
    ),
    "payload at the ceiling": Case(
        "planner", "worker", MessageType.HEARTBEAT, payload={"p": "x" * 248}
    ),
    "publish a type the role may send": Case("worker", None, MessageType.EVENT, topic="progress"),
}

DENIED = {
    "worker may not command planner": (
        Case("worker", "planner", MessageType.COMMAND),
        ['role "worker" may not send "command" messages to role "planner"'],
    ),
    "auditor may not command": (
        Case("auditor", "worker", MessageType.COMMAND),
        ['role "auditor" may not send "command" messages to role "worker"'],
    ),
    "governance type from a non-governance role": (
        Case("planner", "governance", MessageType.GOVERNANCE_REQUEST),
        [
            '"governance_request" messages are the governance channel: role "planner" is not a '
            "governance role",
            'role "planner" may not send "governance_request" messages to role "governance"',
        ],
    ),
    "governance type to a non-governance role": (
        Case("governance", "worker", MessageType.GOVERNANCE_RESPONSE),
        [
            '"governance_response" messages are the governance channel: recipient role "worker" '
            "is not a governance role",
            'role "governance" may not send "governance_response" messages to role "worker"',
        ],
    ),
    "CRITICAL from a non-governance role": (
        Case("planner", "worker", MessageType.COMMAND, priority=Priority.CRITICAL),
        ['role "planner" may not send CRITICAL priority messages'],
    ),
    "payload over the type's ceiling": (
        Case("planner", "worker", MessageType.HEARTBEAT, payload={"p": "x" * 249}),
        ['payload of 257 bytes exceeds the 256-byte ceiling for "heartbeat" messages'],
    ),
    "cross-tenant without an allow entry": (
        Case("planner", "worker", MessageType.COMMAND, recipient_tenant="globex"),
        ['tenant "acme" may not send "command" messages to tenant "globex"'],
    ),
    "allow-listed pair with another type": (
        Case("planner", "auditor", MessageType.NOTIFICATION, recipient_tenant="acme-audit"),
        ['tenant "acme" may not send "notification" messages to tenant "acme-audit"'],
    ),
    "message claims another tenant": (
        Case("planner", "worker", MessageType.COMMAND, message_tenant="globex"),
        ['message claims tenant "globex" but its sender "planner-1" belongs to tenant "acme"'],
    ),
    "role performs an unlisted action": (
        Case(
            "planner",
            "worker",
            MessageType.COMMAND,
            metadata={"action": "approve", "proposed_by": "x"},
        ),
        ['role "planner" may not perform action "approve"'],
    ),
    "validation without a named proposer": (
        Case(
            "reviewer",
            "governance",
            MessageType.GOVERNANCE_REQUEST,
            metadata={"action": "validate"},
        ),
        ['action "validate" must name the proposing agent in metadata.proposed_by'],
    ),
    "agent validates its own proposal": (
        Case(
            "reviewer",
            "governance",
            MessageType.GOVERNANCE_REQUEST,
            metadata={"action": "validate", "proposed_by": "reviewer-1"},
        ),
        ['agent "reviewer-1" may not validate a message it proposed (separation of powers)'],
    ),
    "agent approves its own proposal": (
        Case(
            "governance",
            "reviewer",
            MessageType.GOVERNANCE_RESPONSE,
            metadata={"action": "approve", "proposed_by": "governance-1"},
        ),
        ['agent "governance-1" may not approve a message it proposed (separation of powers)'],
    ),
    "undefined sender role": (
        Case("ghost", "worker", MessageType.HEARTBEAT),
        ['sender role "ghost" is not defined by the constitution'],
    ),
    "undefined recipient role": (
        Case("planner", "ghost", MessageType.HEARTBEAT),
        ['recipient role "ghost" is not defined by the constitution'],
    ),
    "publish a type the role may not send": (
        Case("worker", None, MessageType.COMMAND, topic="progress"),
        ['role "worker" may not publish "command" messages'],
    ),
}


def build(case: Case, agent: AgentFactory) -> tuple[AgentMessage, StageContext]:
    sender = agent(f"{case.sender_role}-1", case.sender_role, case.sender_tenant)
    recipient = None
    if case.recipient_role is not None:
        recipient_id = (
            f"{case.recipient_role}-{2 if case.recipient_role == case.sender_role else 1}"
        )
        recipient = agent(recipient_id, case.recipient_role, case.recipient_tenant)
    message = AgentMessage(
        from_agent=sender.agent_id,
        to_agent=recipient.agent_id if recipient else None,
        topic=case.topic,
        tenant_id=case.message_tenant or case.sender_tenant,
        message_type=case.message_type,
        priority=case.priority,
        payload=case.payload,
        metadata=case.metadata,
    )
    return message, StageContext(sender, recipient, case.topic)


@pytest.fixture(scope="module")
def stage(constitution: Constitution) -> PolicyStage:
    return PolicyStage.from_constitution(constitution)


def test_policy_stage_is_a_validation_stage(stage: PolicyStage) -> None:
    assert isinstance(stage, ValidationStage)
    assert stage.name == "policy"


@pytest.mark.parametrize("case", list(ALLOWED.values()), ids=list(ALLOWED))
def test_allowed(stage: PolicyStage, agent: AgentFactory, case: Case) -> None:
    verdict = stage.check(*build(case, agent))
    assert verdict is ALLOW


@pytest.mark.parametrize(("case", "expected"), list(DENIED.values()), ids=list(DENIED))
def test_denied_with_each_reason(
    stage: PolicyStage, agent: AgentFactory, case: Case, expected: list[str]
) -> None:
    verdict = stage.check(*build(case, agent))
    assert isinstance(verdict, Verdict)
    assert verdict.kind is VerdictKind.DENY
    assert {(r.stage, r.code) for r in verdict.reasons} == {("policy", "policy_denied")}
    assert len(verdict.reasons) == len(expected)
    messages = [r.message for r in verdict.reasons]
    for fragment in expected:
        assert sum(fragment in message for message in messages) == 1, (fragment, messages)
