"""PolicyStage mechanics: sync hits, awaited misses, reloads, fail-closed errors, warm-up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson

from enhanced_agent_bus.cache import LRUCache, TieredCache
from enhanced_agent_bus.constitution import Constitution, load_bundle
from enhanced_agent_bus.models import AgentMessage, MessageType, Priority
from enhanced_agent_bus.pipeline import ALLOW, StageContext, Verdict, VerdictKind
from enhanced_agent_bus.pipeline._policy import PolicyStage
from enhanced_agent_bus.policy import PolicyDecision, PolicySettings
from enhanced_agent_bus.registry import AgentRecord

AgentFactory = Callable[..., AgentRecord]


def l1_cache() -> TieredCache[PolicyDecision]:
    return TieredCache(LRUCache(1_000, ttl_s=None))


def command(
    sender: AgentRecord,
    recipient: AgentRecord,
    message_type: MessageType = MessageType.COMMAND,
    priority: Priority = Priority.NORMAL,
) -> AgentMessage:
    return AgentMessage(
        from_agent=sender.agent_id,
        to_agent=recipient.agent_id,
        tenant_id=sender.tenant_id,
        message_type=message_type,
        priority=priority,
    )


async def resolve(verdict: object) -> Verdict:
    if isinstance(verdict, Verdict):
        return verdict
    return await verdict  # type: ignore[no-any-return, misc]


def test_without_cache_inline_engine_answers_synchronously(
    constitution: Constitution, agent: AgentFactory
) -> None:
    stage = PolicyStage.from_constitution(constitution)
    planner, worker = agent("planner-1", "planner"), agent("worker-1", "worker")
    assert stage.check(command(planner, worker), StageContext(planner, worker)) is ALLOW
    denied = stage.check(command(worker, planner), StageContext(worker, planner))
    assert isinstance(denied, Verdict)
    assert denied.kind is VerdictKind.DENY
    assert stage.stats()["evaluations"] == 2
    assert stage.stats()["denials"] == 1


async def test_cache_miss_is_awaited_then_hits_are_synchronous(
    constitution: Constitution, agent: AgentFactory
) -> None:
    stage = PolicyStage.from_constitution(constitution, cache=l1_cache())
    planner, worker = agent("planner-1", "planner"), agent("worker-1", "worker")
    ctx = StageContext(planner, worker)
    first = stage.check(command(planner, worker), ctx)
    assert not isinstance(first, Verdict)
    assert await resolve(first) is ALLOW
    # Same input (a new message id does not matter): an L1 hit, no await needed.
    second = stage.check(command(planner, worker), ctx)
    assert second is ALLOW
    stats = stage.stats()
    assert (stats["evaluations"], stats["local_hits"], stats["cache_loads"]) == (1, 1, 1)


async def test_cached_denial_keeps_every_reason(
    constitution: Constitution, agent: AgentFactory
) -> None:
    stage = PolicyStage.from_constitution(constitution, cache=l1_cache())
    planner, gov = agent("planner-1", "planner"), agent("governance-1", "governance")
    message = AgentMessage(
        from_agent="planner-1",
        to_agent="governance-1",
        tenant_id="acme",
        message_type=MessageType.GOVERNANCE_REQUEST,
        priority=Priority.CRITICAL,
    )
    ctx = StageContext(planner, gov)
    missed = await resolve(stage.check(message, ctx))
    hit = stage.check(message, ctx)
    assert isinstance(hit, Verdict)
    assert hit == missed
    assert len(hit.reasons) == 3
    assert all(r.code == "policy_denied" for r in hit.reasons)


async def test_single_flight_evaluates_once_for_concurrent_identical_misses(
    constitution: Constitution, agent: AgentFactory
) -> None:
    stage = PolicyStage.from_constitution(
        constitution, PolicySettings(executor="thread"), cache=l1_cache()
    )
    await stage.start()
    try:
        planner, worker = agent("planner-1", "planner"), agent("worker-1", "worker")
        ctx = StageContext(planner, worker)
        verdicts = await asyncio.gather(
            *(resolve(stage.check(command(planner, worker), ctx)) for _ in range(100))
        )
    finally:
        await stage.aclose()
    assert all(v is ALLOW for v in verdicts)
    assert stage.stats()["evaluations"] == 1
    assert stage.stats()["engine_evaluations"] == 1


async def test_reload_changes_decisions_immediately_with_a_shared_cache(
    constitution: Constitution, bundle_copy: Path, agent: AgentFactory
) -> None:
    cache = l1_cache()
    old = PolicyStage.from_constitution(constitution, cache=cache)
    worker, planner = agent("worker-1", "worker"), agent("planner-1", "planner")
    ctx = StageContext(worker, planner)
    assert (await resolve(old.check(command(worker, planner), ctx))).kind is VerdictKind.DENY

    data_path = bundle_copy / "data.json"
    data = orjson.loads(data_path.read_bytes())
    data["roles"]["worker"]["send"]["planner"].append("command")
    data_path.write_bytes(orjson.dumps(data))
    new = PolicyStage.from_constitution(load_bundle(bundle_copy), cache=cache)

    assert new.constitutional_hash != old.constitutional_hash
    assert await resolve(new.check(command(worker, planner), ctx)) is ALLOW
    # The old constitution's cached denial is still there, under its own key.
    assert old.check(command(worker, planner), ctx).kind is VerdictKind.DENY  # type: ignore[union-attr]


BROKEN_FOR_QUERIES = """package agentbus.authz

default decision := {"allow": true, "deny": set()}

decision := {"allow": "maybe", "deny": set()} if input.message.type == "query"
"""


async def test_engine_errors_fail_closed_and_are_never_cached(
    tmp_path: Path, agent: AgentFactory
) -> None:
    (tmp_path / "authz.rego").write_text(BROKEN_FOR_QUERIES)
    (tmp_path / "data.json").write_text("{}")
    stage = PolicyStage.from_constitution(load_bundle(tmp_path), cache=l1_cache())
    planner, worker = agent("planner-1", "planner"), agent("worker-1", "worker")
    query = command(planner, worker, message_type=MessageType.QUERY)
    ctx = StageContext(planner, worker)
    for attempt in (1, 2):
        verdict = await resolve(stage.check(query, ctx))
        assert verdict.kind is VerdictKind.DENY
        (reason,) = verdict.reasons
        assert (reason.stage, reason.code) == ("policy", "policy_error")
        assert "allow='maybe', not a boolean" in reason.message
        assert "fail closed" in reason.message
        assert stage.stats()["errors"] == attempt
    assert stage.stats()["evaluations"] == 2
    assert await resolve(stage.check(command(planner, worker), ctx)) is ALLOW


async def test_engine_errors_without_cache_fail_closed_synchronously(
    tmp_path: Path, agent: AgentFactory
) -> None:
    (tmp_path / "authz.rego").write_text(BROKEN_FOR_QUERIES)
    stage = PolicyStage.from_constitution(load_bundle(tmp_path))
    planner, worker = agent("planner-1", "planner"), agent("worker-1", "worker")
    verdict = stage.check(
        command(planner, worker, message_type=MessageType.QUERY), StageContext(planner, worker)
    )
    assert isinstance(verdict, Verdict)
    assert verdict.reasons[0].code == "policy_error"


async def test_closed_engine_fails_closed(constitution: Constitution, agent: AgentFactory) -> None:
    stage = PolicyStage.from_constitution(constitution, PolicySettings(executor="thread"))
    await stage.start()
    await stage.aclose()
    planner, worker = agent("planner-1", "planner"), agent("worker-1", "worker")
    verdict = await resolve(stage.check(command(planner, worker), StageContext(planner, worker)))
    assert verdict.reasons[0].code == "policy_error"
    assert "closed" in verdict.reasons[0].message


async def test_thread_executor_decides_like_inline(
    constitution: Constitution, agent: AgentFactory
) -> None:
    threaded = PolicyStage.from_constitution(
        constitution, PolicySettings(executor="thread", executor_workers=2)
    )
    inline = PolicyStage.from_constitution(constitution)
    await threaded.start()
    try:
        planner, worker = agent("planner-1", "planner"), agent("worker-1", "worker")
        for sender, recipient in ((planner, worker), (worker, planner)):
            message = command(sender, recipient)
            ctx = StageContext(sender, recipient)
            pending = threaded.check(message, ctx)
            assert not isinstance(pending, Verdict)
            assert await resolve(pending) == inline.check(message, ctx)
    finally:
        await threaded.aclose()
    assert threaded.stats()["engine_evaluations"] == 2


async def test_warm_loads_same_tenant_pairs_and_first_messages_hit(
    constitution: Constitution, agent: AgentFactory
) -> None:
    stage = PolicyStage.from_constitution(constitution, cache=l1_cache())
    planner = agent("planner-1", "planner")
    worker = agent("worker-1", "worker")
    outsider = agent("worker-9", "worker", "globex")
    loaded = await stage.warm([planner, worker, outsider], [MessageType.COMMAND, MessageType.EVENT])
    # acme: 2 agents -> 4 ordered pairs (self included) x 2 types; globex: 1 pair x 2 types.
    assert loaded == 10
    assert stage.stats()["warmed"] == 10
    message = command(planner, worker)
    assert message.payload_size_bytes == 2
    assert stage.check(message, StageContext(planner, worker)) is ALLOW
    assert stage.stats()["local_hits"] == 1
    # Warming again finds everything cached.
    assert await stage.warm([planner, worker, outsider], [MessageType.COMMAND]) == 0


async def test_warm_respects_its_bound_and_covers_role_triples_first(
    constitution: Constitution, agent: AgentFactory
) -> None:
    stage = PolicyStage.from_constitution(
        constitution, PolicySettings(warm_max_decisions=2), cache=l1_cache()
    )
    workers = [agent(f"worker-{i}", "worker") for i in range(5)]
    planner = agent("planner-1", "planner")
    loaded = await stage.warm([*workers, planner], [MessageType.EVENT])
    assert loaded == 2
    # worker->worker and worker->planner come before a second worker->worker pair.
    assert (
        stage.check(
            command(workers[0], planner, message_type=MessageType.EVENT),
            StageContext(workers[0], planner),
        )
        is ALLOW
    )


async def test_warm_without_cache_does_nothing(
    constitution: Constitution, agent: AgentFactory
) -> None:
    stage = PolicyStage.from_constitution(constitution)
    assert await stage.warm([agent("planner-1", "planner")], MessageType) == 0


def test_stats_expose_the_observability_contract(constitution: Constitution) -> None:
    stats = PolicyStage.from_constitution(constitution).stats()
    assert {"evaluations", "errors", "denials", "timeouts"} <= set(stats)
    assert stats["engine_evaluations"] == 0


async def test_warm_on_a_large_registry_is_bounded(
    constitution: Constitution, agent: AgentFactory
) -> None:
    stage = PolicyStage.from_constitution(
        constitution, PolicySettings(warm_max_decisions=10), cache=l1_cache()
    )
    records = [agent(f"worker-{i}", "worker") for i in range(300)]  # 90,000 pairs
    records.append(agent("planner-1", "planner"))
    assert await stage.warm(records, [MessageType.EVENT]) == 10
    assert stage.stats()["evaluations"] == 10
    # Each role pair of the tenant was covered first.
    for sender, recipient in ((records[0], records[-1]), (records[-1], records[0])):
        message = command(sender, recipient, message_type=MessageType.EVENT)
        assert isinstance(stage.check(message, StageContext(sender, recipient)), Verdict)
