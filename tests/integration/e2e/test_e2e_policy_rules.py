"""Every rule of the default constitution, end to end through AgentBus.

Real bundle (policies/, embedded Rego via regorus, Z3 constraints), real
SQLite audit file (tests/conftest.py points it at tmp_path). Agents are
``<role>-1`` in tenant acme, plus a second worker and governance agent, an
auditor in acme-audit (the demo's cross-tenant pair), a worker in globex and
an agent whose role the constitution does not define.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from enhanced_agent_bus import (
    AgentBus,
    BusSettings,
    ConfigurationError,
    DeliveryStatus,
    MessageDeniedError,
    MessageType,
    Priority,
    TenantIsolationError,
)
from enhanced_agent_bus.constitution import default_bundle_path
from enhanced_agent_bus.testing import FakeClock
from tests.integration.e2e.e2e_helpers import DEFAULT_DATA, Inbox, Send

C, Q, R, E = MessageType.COMMAND, MessageType.QUERY, MessageType.RESPONSE, MessageType.EVENT
N, H = MessageType.NOTIFICATION, MessageType.HEARTBEAT
GREQ, GRESP = MessageType.GOVERNANCE_REQUEST, MessageType.GOVERNANCE_RESPONSE

AGENTS: dict[str, tuple[str, str]] = {  # agent id -> (tenant, role)
    "planner-1": ("acme", "planner"),
    "worker-1": ("acme", "worker"),
    "worker-2": ("acme", "worker"),
    "reviewer-1": ("acme", "reviewer"),
    "governance-1": ("acme", "governance"),
    "governance-2": ("acme", "governance"),
    "auditor-1": ("acme", "auditor"),
    "auditor-2": ("acme-audit", "auditor"),
    "worker-3": ("globex", "worker"),
    "ghost-1": ("acme", "ghost"),
}
HEARTBEAT_CEILING: int = DEFAULT_DATA["limits"]["max_payload_bytes"]["heartbeat"]


class Agents:
    def __init__(self, bus: AgentBus) -> None:
        self.bus = bus
        self.inbox = {agent_id: Inbox() for agent_id in AGENTS}

    async def register(self) -> None:
        for agent_id, (tenant, role) in AGENTS.items():
            await self.bus.register_agent(
                agent_id, self.inbox[agent_id], tenant_id=tenant, role=role
            )


@pytest.fixture
async def agents() -> AsyncIterator[Agents]:
    async with AgentBus(BusSettings(drain_timeout_s=2.0)) as bus:
        registered = Agents(bus)
        await registered.register()
        yield registered


def test_the_cross_tenant_pair_used_here_is_the_one_data_json_names() -> None:
    allow = DEFAULT_DATA["cross_tenant"]["allow"]
    pair = next(e for e in allow if (e["from_tenant"], e["to_tenant"]) == ("acme", "acme-audit"))
    assert "event" in pair["message_types"]
    assert "notification" not in pair["message_types"]


ALLOWED = [
    pytest.param(Send("planner-1", "worker-1", C), id="planner-worker-command"),
    pytest.param(
        Send("planner-1", "worker-1", C, metadata={"action": "delegate"}),
        id="planner-worker-command-delegate",
    ),
    pytest.param(Send("worker-1", "planner-1", R), id="worker-planner-response"),
    pytest.param(
        Send("planner-1", "reviewer-1", C, metadata={"action": "propose"}),
        id="planner-reviewer-command-propose",
    ),
    pytest.param(
        Send(
            "reviewer-1",
            "governance-1",
            GREQ,
            metadata={"action": "validate", "proposed_by": "planner-1"},
        ),
        id="reviewer-governance-validate",
    ),
    pytest.param(
        Send(
            "governance-1",
            "reviewer-1",
            GRESP,
            metadata={"action": "approve", "proposed_by": "planner-1"},
        ),
        id="governance-reviewer-approve",
    ),
    pytest.param(Send("governance-1", "governance-2", GREQ), id="governance-governance-request"),
    pytest.param(
        Send("governance-1", "worker-1", N, Priority.CRITICAL),
        id="governance-worker-critical-notification",
    ),
    pytest.param(Send("auditor-1", "planner-1", Q), id="auditor-planner-query"),
    pytest.param(Send("worker-1", "reviewer-1", H, payload={}), id="worker-reviewer-heartbeat"),
    pytest.param(Send("planner-1", "auditor-2", E), id="acme-planner-to-acme-audit-auditor-event"),
    pytest.param(Send("auditor-2", "planner-1", Q), id="acme-audit-auditor-to-acme-planner-query"),
]


@pytest.mark.parametrize("case", ALLOWED)
async def test_allowed_message_is_delivered_to_its_handler(agents: Agents, case: Send) -> None:
    message = case.build(agents.bus)
    result = await agents.bus.send_message(message)
    assert result.status is DeliveryStatus.DELIVERED, result.reasons
    assert result.reasons == ()
    assert result.recipient == case.recipient
    received = await agents.inbox[case.recipient].wait_for(message.message_id)
    assert received.metadata == case.metadata
    assert received.priority is case.priority
    assert received.message_type is case.message_type
    assert received.tenant_id == AGENTS[case.sender][0]


async def test_auditor_query_gets_the_planners_reply(agents: Agents) -> None:
    query = Send("auditor-1", "planner-1", Q).build(agents.bus)
    reply = await agents.bus.request(query, timeout=2)
    assert reply.message_type is MessageType.RESPONSE
    assert reply.correlation_id == query.message_id
    assert (reply.from_agent, reply.to_agent) == ("planner-1", "auditor-1")
    assert reply.payload == {"echo_of": query.message_id, "by": "planner-1"}


def role_matrix(sender: str, mtype: str, recipient: str) -> str:
    return (
        f'role "{sender}" may not send "{mtype}" messages to role "{recipient}" '
        f"(data.roles.{sender}.send)"
    )


DENIED = [
    pytest.param(
        Send("worker-1", "planner-1", C),
        [role_matrix("worker", "command", "planner")],
        id="role-matrix-worker-planner-command",
    ),
    pytest.param(
        Send("auditor-1", "worker-1", C),
        [role_matrix("auditor", "command", "worker")],
        id="role-matrix-auditor-worker-command",
    ),
    pytest.param(
        Send("planner-1", "governance-1", GREQ),
        [
            '"governance_request" messages are the governance channel: role "planner" is not '
            "a governance role (data.governance_roles)",
            role_matrix("planner", "governance_request", "governance"),
        ],
        id="governance-channel-sender",
    ),
    pytest.param(
        Send("governance-1", "worker-1", GRESP),
        [
            '"governance_response" messages are the governance channel: recipient role "worker" '
            "is not a governance role (data.governance_roles)",
            role_matrix("governance", "governance_response", "worker"),
        ],
        id="governance-channel-recipient",
    ),
    pytest.param(
        Send("planner-1", "worker-1", C, Priority.CRITICAL),
        ['role "planner" may not send CRITICAL priority messages (data.critical_priority_roles)'],
        id="critical-priority",
    ),
    pytest.param(
        Send("planner-1", "worker-1", H, payload={"pad": "x" * HEARTBEAT_CEILING}),
        [
            f"payload of {HEARTBEAT_CEILING + 10} bytes exceeds the {HEARTBEAT_CEILING}-byte "
            'ceiling for "heartbeat" messages (data.limits.max_payload_bytes.heartbeat)'
        ],
        id="payload-ceiling-heartbeat",
    ),
    pytest.param(
        Send("planner-1", "worker-1", C, metadata={"action": "approve", "proposed_by": "x"}),
        [
            'role "planner" may not perform action "approve"; its actions are '
            '["propose", "delegate"] (data.roles.planner.actions)'
        ],
        id="separation-action-not-listed",
    ),
    pytest.param(
        Send("reviewer-1", "governance-1", GREQ, metadata={"action": "validate"}),
        ['action "validate" must name the proposing agent in metadata.proposed_by'],
        id="separation-proposer-missing",
    ),
    pytest.param(
        Send(
            "reviewer-1",
            "governance-1",
            GREQ,
            metadata={"action": "validate", "proposed_by": "reviewer-1"},
        ),
        ['agent "reviewer-1" may not validate a message it proposed (separation of powers)'],
        id="separation-self-validation",
    ),
    pytest.param(
        Send(
            "governance-1",
            "reviewer-1",
            GRESP,
            metadata={"action": "approve", "proposed_by": "governance-1"},
        ),
        ['agent "governance-1" may not approve a message it proposed (separation of powers)'],
        id="separation-self-approval",
    ),
    pytest.param(
        Send("ghost-1", "worker-1", E),
        ['sender role "ghost" is not defined by the constitution (data.roles)'],
        id="undefined-sender-role",
    ),
    pytest.param(
        Send("planner-1", "ghost-1", E),
        ['recipient role "ghost" is not defined by the constitution (data.roles)'],
        id="undefined-recipient-role",
    ),
]


@pytest.mark.parametrize(("case", "rules"), DENIED)
async def test_denied_message_names_every_rule_it_breaks(
    agents: Agents, case: Send, rules: list[str]
) -> None:
    bus = agents.bus
    result = await bus.send_message(case.build(bus))
    assert result.status is DeliveryStatus.DENIED
    assert {(r.stage, r.code) for r in result.reasons} == {("policy", "policy_denied")}
    assert sorted(r.message for r in result.reasons) == sorted(rules)

    with pytest.raises(MessageDeniedError) as denied:
        await bus.request(case.build(bus), timeout=2)
    assert type(denied.value) is MessageDeniedError
    assert denied.value.result.reasons == result.reasons
    assert all(rule in str(denied.value) for rule in rules)

    assert agents.inbox[case.recipient].messages == []
    assert bus.stats()["denied_by_code"] == {"policy_denied": 2}


def test_the_heartbeat_case_is_just_over_the_ceiling() -> None:
    # {"pad": "x" * n} encodes to n + 10 bytes: the case above exceeds the ceiling by 10.
    assert len(orjson.dumps({"pad": "x" * HEARTBEAT_CEILING})) == HEARTBEAT_CEILING + 10


@pytest.mark.parametrize(
    ("case", "recipient_tenant"),
    [
        pytest.param(Send("planner-1", "auditor-2", N), "acme-audit", id="allow-list-is-per-type"),
        pytest.param(Send("planner-1", "worker-3", C), "globex", id="pair-not-listed"),
        pytest.param(Send("worker-3", "worker-1", E), "acme", id="other-direction"),
    ],
)
async def test_cross_tenant_messages_outside_the_allow_list_stop_at_the_tenant_stage(
    agents: Agents, case: Send, recipient_tenant: str
) -> None:
    bus = agents.bus
    result = await bus.send_message(case.build(bus))
    assert result.status is DeliveryStatus.DENIED
    (reason,) = result.reasons
    assert (reason.stage, reason.code) == ("tenant", "cross_tenant")
    assert f"in tenant {recipient_tenant!r}" in reason.message
    assert f"with a {case.message_type.value} message" in reason.message
    assert "cross_tenant.allow" in reason.message
    with pytest.raises(TenantIsolationError) as denied:
        await bus.request(case.build(bus), timeout=2)
    assert denied.value.result.reasons == result.reasons
    assert agents.inbox[case.recipient].messages == []


async def test_a_message_claiming_another_tenant_stops_at_the_tenant_stage(
    agents: Agents,
) -> None:
    bus = agents.bus
    forged = bus.message("planner-1", "worker-1", {"task": "x"}, tenant_id="globex")
    result = await bus.send_message(forged)
    assert result.codes == ("tenant_mismatch",)
    assert "'planner-1'" in result.reasons[0].message
    with pytest.raises(TenantIsolationError):
        await bus.request(forged.model_copy(update={"message_id": "forged-2"}), timeout=2)


async def subscribe(agents: Agents, topic: str, *agent_ids: str) -> None:
    for agent_id in agent_ids:
        await agents.bus.subscribe(agent_id, topic)


async def test_worker_publishes_an_event_to_its_tenants_subscribers(agents: Agents) -> None:
    await subscribe(agents, "builds", "planner-1", "worker-2", "auditor-2", "worker-3")
    event = agents.bus.message("worker-1", None, {"build": 7}, message_type=E)
    results = await agents.bus.publish("builds", event)
    # auditor-2 (acme-audit) and worker-3 (globex) subscribe too, but never see acme traffic.
    assert {(r.recipient, r.status) for r in results} == {
        ("planner-1", DeliveryStatus.DELIVERED),
        ("worker-2", DeliveryStatus.DELIVERED),
    }
    for agent_id in ("planner-1", "worker-2"):
        received = await agents.inbox[agent_id].wait_for(event.message_id)
        assert received.topic == "builds"
    assert agents.inbox["auditor-2"].messages == agents.inbox["worker-3"].messages == []


async def test_worker_may_not_publish_a_command(agents: Agents) -> None:
    await subscribe(agents, "builds", "planner-1", "worker-2")
    command = agents.bus.message("worker-1", None, {"do": "deploy"}, message_type=C)
    results = await agents.bus.publish("builds", command)
    assert len(results) == 2
    # The bus decides a published message per subscriber (the policy input has a
    # recipient), so the role matrix answers; the recipient-less "may not publish"
    # rule is exercised through `agent-bus policy eval` in test_e2e_cli.py.
    by_recipient = {r.recipient: r for r in results}
    for agent_id, role in (("planner-1", "planner"), ("worker-2", "worker")):
        result = by_recipient[agent_id]
        assert result.status is DeliveryStatus.DENIED
        assert result.codes == ("policy_denied",)
        assert result.reasons[0].stage == "policy"
        assert result.reasons[0].message == role_matrix("worker", "command", role)
    assert agents.inbox["planner-1"].messages == agents.inbox["worker-2"].messages == []


async def test_a_published_type_is_decided_for_each_subscribers_role(agents: Agents) -> None:
    # worker -> planner query is allowed, worker -> reviewer query is not.
    await subscribe(agents, "status", "planner-1", "reviewer-1")
    query = agents.bus.message("worker-1", None, {"q": "status?"}, message_type=Q)
    results = {r.recipient: r for r in await agents.bus.publish("status", query)}
    assert results["planner-1"].status is DeliveryStatus.DELIVERED
    assert results["reviewer-1"].reasons[0].message == role_matrix("worker", "query", "reviewer")


# ── reloading the constitution ──────────────────────────────────────────────


def copy_bundle(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(default_bundle_path(), target)
    return target


def forbid_planner_commands_to_workers(bundle: Path) -> None:
    data_path = bundle / "data.json"
    data = orjson.loads(data_path.read_bytes())
    data["roles"]["planner"]["send"]["worker"].remove("command")
    data_path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


async def test_reload_changes_the_decision_at_once_and_honours_the_grace_window(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    async with AgentBus(BusSettings(rotation_grace_s=300), clock=clock) as bus:
        planner, worker = Inbox(), Inbox()
        await bus.register_agent("planner-1", planner, tenant_id="acme", role="planner")
        await bus.register_agent("worker-1", worker, tenant_id="acme", role="worker")
        old_hash = bus.constitutional_hash
        command = Send("planner-1", "worker-1", C)
        assert (await bus.send_message(command.build(bus))).status is DeliveryStatus.DELIVERED
        # Same shape again: answered from the decision cache.
        hits_before = bus.stats()["policy"]["local_hits"]
        assert (await bus.send_message(command.build(bus))).status is DeliveryStatus.DELIVERED
        assert bus.stats()["policy"]["local_hits"] == int(hits_before) + 1
        old_command = command.build(bus)
        old_query = Send("planner-1", "worker-1", Q).build(bus)
        stale_query = Send("planner-1", "worker-1", Q).build(bus)

        bundle = copy_bundle(tmp_path, "no-commands")
        forbid_planner_commands_to_workers(bundle)
        new_hash = await bus.load_constitution(bundle)

        assert new_hash != old_hash
        assert bus.constitutional_hash == new_hash
        denied = await bus.send_message(command.build(bus))
        assert denied.status is DeliveryStatus.DENIED
        assert denied.reasons[0].stage == "policy"
        assert denied.reasons[0].message == role_matrix("planner", "command", "worker")
        # A message still carrying the old hash passes the constitution stage during the
        # grace window, and is decided by the new constitution, never the cached allow.
        assert old_command.constitutional_hash == old_hash
        late = await bus.send_message(old_command)
        assert (late.status, late.reasons) == (denied.status, denied.reasons)
        assert (await bus.send_message(old_query)).status is DeliveryStatus.DELIVERED
        await worker.wait_for(old_query.message_id)

        clock.advance(301)
        stale = await bus.send_message(stale_query)
        assert stale.status is DeliveryStatus.DENIED
        assert (stale.reasons[0].stage, stale.reasons[0].code) == ("constitution", "hash_stale")


async def test_a_bundle_whose_rego_does_not_compile_is_refused_and_the_old_one_keeps_deciding(
    tmp_path: Path, agents: Agents
) -> None:
    bus = agents.bus
    before = bus.constitutional_hash
    bundle = copy_bundle(tmp_path, "broken")
    (bundle / "agentbus" / "broken.rego").write_text(
        "package agentbus.authz\n\ndeny contains msg if {\n  msg := \n}\n"
    )
    with pytest.raises(ConfigurationError) as refused:
        await bus.load_constitution(bundle)
    text = str(refused.value)
    assert f"{bundle / 'agentbus' / 'broken.rego'}:4:" in text
    assert "does not load" in text

    assert bus.constitutional_hash == before
    assert bus.stats()["bus"]["constitutional_hash"] == before
    allowed = await bus.send_message(Send("planner-1", "worker-1", C).build(bus))
    assert allowed.status is DeliveryStatus.DELIVERED
    denied = await bus.send_message(Send("worker-1", "planner-1", C).build(bus))
    assert denied.reasons[0].message == role_matrix("worker", "command", "planner")
