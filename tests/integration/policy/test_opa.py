"""The remote OPA engine against a real HTTP server that really evaluates the Rego."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from opa_compatible_server import OpaCompatibleServer

from enhanced_agent_bus.cache import LRUCache, TieredCache
from enhanced_agent_bus.constitution import Constitution
from enhanced_agent_bus.models import AgentMessage, MessageType, Priority
from enhanced_agent_bus.pipeline import ALLOW, StageContext, Verdict, VerdictKind
from enhanced_agent_bus.pipeline._policy import PolicyStage
from enhanced_agent_bus.policy import (
    EmbeddedPolicy,
    OpaPolicyEngine,
    PolicyDecision,
    PolicySettings,
    build_policy_input,
    canonical_json,
)
from enhanced_agent_bus.policy import PolicyInputSpec as Spec
from enhanced_agent_bus.registry import AgentRecord


async def _handler(message: AgentMessage, context: Any) -> None:
    return None


def agent(agent_id: str, role: str, tenant_id: str = "acme") -> AgentRecord:
    return AgentRecord(
        agent_id=agent_id,
        tenant_id=tenant_id,
        role=role,
        capabilities=frozenset(),
        handler=_handler,
        mailbox=None,  # type: ignore[arg-type]
    )


PLANNER = agent("planner-1", "planner")
WORKER = agent("worker-1", "worker")
GOVERNANCE = agent("governance-1", "governance")


def message(
    sender: AgentRecord,
    recipient: AgentRecord,
    message_type: MessageType = MessageType.COMMAND,
    priority: Priority = Priority.NORMAL,
    metadata: dict[str, str] | None = None,
) -> tuple[AgentMessage, StageContext]:
    return (
        AgentMessage(
            from_agent=sender.agent_id,
            to_agent=recipient.agent_id,
            tenant_id=sender.tenant_id,
            message_type=message_type,
            priority=priority,
            metadata=metadata or {},
        ),
        StageContext(sender, recipient),
    )


async def resolve(verdict: object) -> Verdict:
    if isinstance(verdict, Verdict):
        return verdict
    return await verdict  # type: ignore[no-any-return, misc]


def opa_stage(
    constitution: Constitution, server: OpaCompatibleServer, **settings: Any
) -> PolicyStage:
    options: dict[str, Any] = {"backend": "opa", "opa_url": server.url, **settings}
    return PolicyStage.from_constitution(constitution, PolicySettings(**options))


CASES: list[Callable[[], tuple[AgentMessage, StageContext]]] = [
    lambda: message(PLANNER, WORKER),
    lambda: message(WORKER, PLANNER),
    lambda: message(PLANNER, WORKER, priority=Priority.CRITICAL),
    lambda: message(GOVERNANCE, WORKER, MessageType.NOTIFICATION, Priority.CRITICAL),
    lambda: message(PLANNER, GOVERNANCE, MessageType.GOVERNANCE_REQUEST),
    lambda: message(PLANNER, WORKER, metadata={"action": "approve", "proposed_by": "x"}),
]


async def test_opa_decides_exactly_like_the_embedded_engine(
    constitution: Constitution, opa_server: OpaCompatibleServer
) -> None:
    stage = opa_stage(constitution, opa_server)
    embedded = PolicyStage.from_constitution(constitution)
    await stage.start()
    try:
        outcomes = []
        for case in CASES:
            msg, ctx = case()
            remote = await resolve(stage.check(msg, ctx))
            assert remote == embedded.check(msg, ctx)
            outcomes.append(remote.kind)
    finally:
        await stage.aclose()
    assert VerdictKind.ALLOW in outcomes
    assert VerdictKind.DENY in outcomes
    assert opa_server.requests == len(CASES)
    assert stage.stats()["opa_requests"] == len(CASES)


async def test_opa_engine_on_its_own(
    constitution: Constitution, opa_server: OpaCompatibleServer
) -> None:
    settings = PolicySettings(backend="opa", opa_url=opa_server.url, opa_token="s3cret")
    engine = OpaPolicyEngine(settings)
    assert engine.endpoint == f"{opa_server.url}/v1/data/agentbus/authz/decision"
    msg, ctx = message(PLANNER, WORKER, priority=Priority.CRITICAL)
    input_json = canonical_json(build_policy_input(msg, ctx, Spec()))
    await engine.start()
    try:
        decision = await engine.evaluate(input_json)
    finally:
        await engine.aclose()
    assert decision == EmbeddedPolicy.from_constitution(constitution).evaluate_json(input_json)
    assert isinstance(decision, PolicyDecision)
    assert opa_server.authorization == ["Bearer s3cret"]


async def test_cached_opa_decisions_are_served_locally(
    constitution: Constitution, opa_server: OpaCompatibleServer
) -> None:
    stage = PolicyStage.from_constitution(
        constitution,
        PolicySettings(backend="opa", opa_url=opa_server.url),
        cache=TieredCache(LRUCache(100, ttl_s=None)),
    )
    await stage.start()
    try:
        msg, ctx = message(PLANNER, WORKER)
        assert await resolve(stage.check(msg, ctx)) is ALLOW
        assert stage.check(msg, ctx) is ALLOW
    finally:
        await stage.aclose()
    assert opa_server.requests == 1


async def test_hanging_opa_times_out_and_fails_closed(
    constitution: Constitution, opa_server: OpaCompatibleServer
) -> None:
    opa_server.mode = "hang"
    stage = opa_stage(constitution, opa_server, opa_timeout_s=0.05, opa_retries=1)
    await stage.start()
    try:
        verdict = await resolve(stage.check(*message(PLANNER, WORKER)))
    finally:
        await stage.aclose()
    (reason,) = verdict.reasons
    assert (reason.stage, reason.code) == ("policy", "policy_error")
    assert "did not answer after 2 attempt(s): no answer within 0.05 s" in reason.message
    stats = stage.stats()
    assert (stats["errors"], stats["opa_timeouts"], stats["opa_retries"]) == (1, 2, 1)
    assert stats["opa_unavailable"] == 1


async def test_stage_deadline_bounds_all_attempts(
    constitution: Constitution, opa_server: OpaCompatibleServer
) -> None:
    opa_server.mode = "hang"
    stage = opa_stage(
        constitution, opa_server, opa_timeout_s=5.0, opa_retries=3, eval_timeout_s=0.1
    )
    await stage.start()
    try:
        verdict = await resolve(stage.check(*message(PLANNER, WORKER)))
    finally:
        await stage.aclose()
    assert verdict.reasons[0].code == "policy_error"
    assert "no decision within 0.1 s" in verdict.reasons[0].message
    assert stage.stats()["timeouts"] == 1


@pytest.mark.parametrize(
    ("mode", "fragment", "counter"),
    [
        ("garbage", "a body that is not JSON", "opa_bad_responses"),
        ("no_result", "has no value for the decision rule", "opa_bad_responses"),
        ("status_400", "answered HTTP 400", "opa_http_errors"),
        ("huge", "at most 1048576 are accepted", "opa_bad_responses"),
    ],
)
async def test_bad_answers_fail_closed_without_retrying(
    constitution: Constitution,
    opa_server: OpaCompatibleServer,
    mode: Any,
    fragment: str,
    counter: str,
) -> None:
    opa_server.mode = mode
    stage = opa_stage(constitution, opa_server, opa_retries=2)
    await stage.start()
    try:
        verdict = await resolve(stage.check(*message(PLANNER, WORKER)))
    finally:
        await stage.aclose()
    assert verdict.reasons[0].code == "policy_error"
    assert fragment in verdict.reasons[0].message
    assert opa_server.requests == 1
    assert stage.stats()[counter] == 1
    assert stage.stats()["opa_retries"] == 0


async def test_server_errors_are_retried_then_fail_closed(
    constitution: Constitution, opa_server: OpaCompatibleServer
) -> None:
    opa_server.mode = "status_500"
    stage = opa_stage(constitution, opa_server, opa_retries=2, opa_retry_backoff_s=0.001)
    await stage.start()
    try:
        verdict = await resolve(stage.check(*message(PLANNER, WORKER)))
    finally:
        await stage.aclose()
    assert "did not answer after 3 attempt(s): HTTP 500" in verdict.reasons[0].message
    assert opa_server.requests == 3
    assert stage.stats()["opa_http_errors"] == 3


async def test_transient_errors_are_retried_to_success(
    constitution: Constitution, opa_server: OpaCompatibleServer
) -> None:
    opa_server.fail_next = 2
    stage = opa_stage(constitution, opa_server, opa_retries=2, opa_retry_backoff_s=0.001)
    await stage.start()
    try:
        assert await resolve(stage.check(*message(PLANNER, WORKER))) is ALLOW
    finally:
        await stage.aclose()
    assert opa_server.requests == 3
    assert stage.stats()["opa_retries"] == 2
    assert stage.stats()["errors"] == 0


async def test_refused_connection_fails_closed(constitution: Constitution) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stage = PolicyStage.from_constitution(
        constitution,
        PolicySettings(
            backend="opa",
            opa_url=f"http://127.0.0.1:{port}",
            opa_retries=1,
            opa_retry_backoff_s=0.001,
        ),
    )
    await stage.start()
    try:
        verdict = await resolve(stage.check(*message(PLANNER, WORKER)))
    finally:
        await stage.aclose()
    assert verdict.reasons[0].code == "policy_error"
    assert "ClientConnectorError" in verdict.reasons[0].message
    assert stage.stats()["opa_connection_errors"] == 2
