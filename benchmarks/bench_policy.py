"""Policy evaluation micro-benchmarks (pytest-benchmark; not collected by the test suite).

Run: .venv/bin/python -m pytest benchmarks/bench_policy.py --benchmark-only

What it measures, on the default constitution:

* one embedded decision (a cache miss) in each regorus mode, on the calling thread;
* the same decision through each executor - inline, a thread hop, a process-pool
  hop - awaited one after another from an event loop (per-decision cost: the
  reported time divided by ``HOPS``, also in ``extra_info['per_decision_us']``);
* the policy stage's whole ``check`` on an L1 cache hit (input, key, lookup,
  verdict) and on a miss with no cache (the same plus the engine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from enhanced_agent_bus.cache import LRUCache, TieredCache
from enhanced_agent_bus.constitution import default_bundle_path, load_bundle
from enhanced_agent_bus.models import AgentMessage, MessageType
from enhanced_agent_bus.pipeline import StageContext, Verdict
from enhanced_agent_bus.pipeline._policy import PolicyStage
from enhanced_agent_bus.policy import (
    EmbeddedPolicy,
    PolicyDecision,
    PolicyEngine,
    PolicyInputEncoder,
    PolicyInputSpec,
    PolicySettings,
    build_policy_input,
    canonical_json,
    create_policy_engine,
    decision_key_from_json,
)
from enhanced_agent_bus.registry import AgentRecord

HOPS = 200
CONSTITUTION = load_bundle(default_bundle_path())


async def _handler(message: AgentMessage, context: Any) -> None:
    return None


def _agent(agent_id: str, role: str) -> AgentRecord:
    return AgentRecord(
        agent_id=agent_id,
        tenant_id="acme",
        role=role,
        capabilities=frozenset({"plan", "execute"}),
        handler=_handler,
        mailbox=None,  # type: ignore[arg-type]
    )


SENDER = _agent("planner-1", "planner")
RECIPIENT = _agent("worker-1", "worker")
CTX = StageContext(SENDER, RECIPIENT)
MESSAGE = AgentMessage(
    from_agent="planner-1",
    to_agent="worker-1",
    tenant_id="acme",
    message_type=MessageType.COMMAND,
    payload={"task": "write the tests", "priority_hint": 3},
    metadata={"action": "delegate", "trace_id": "t-123"},
)
INPUT_JSON = canonical_json(build_policy_input(MESSAGE, CTX, PolicyInputSpec()))


@pytest.mark.parametrize("mode", ["compiled", "interpreted"])
def test_embedded_decision_miss(benchmark: Any, mode: str) -> None:
    policy = EmbeddedPolicy.from_constitution(CONSTITUTION, PolicySettings(rego_mode=mode))  # type: ignore[arg-type]
    assert policy.evaluate_json(INPUT_JSON).allow
    benchmark(policy.evaluate_json, INPUT_JSON)


@pytest.fixture(params=["inline", "thread", "process"])
def engine_loop(request: Any) -> Iterator[tuple[PolicyEngine, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    engine = create_policy_engine(CONSTITUTION, PolicySettings(executor=request.param))
    loop.run_until_complete(engine.start())
    try:
        yield engine, loop
    finally:
        loop.run_until_complete(engine.aclose())
        loop.close()


def test_executor_hop(
    benchmark: Any, engine_loop: tuple[PolicyEngine, asyncio.AbstractEventLoop]
) -> None:
    engine, loop = engine_loop

    async def decide_many() -> PolicyDecision:
        decision: PolicyDecision | None = None
        for _ in range(HOPS):
            outcome = engine.evaluate(INPUT_JSON)
            decision = outcome if isinstance(outcome, PolicyDecision) else await outcome
        assert decision is not None
        return decision

    assert loop.run_until_complete(decide_many()).allow
    benchmark.pedantic(lambda: loop.run_until_complete(decide_many()), rounds=20, warmup_rounds=2)
    benchmark.extra_info["executor"] = engine.name
    benchmark.extra_info["per_decision_us"] = benchmark.stats.stats.mean / HOPS * 1e6


def test_key_of_policy_input(benchmark: Any) -> None:
    """What a cache hit pays before the lookup: encode the input, hash it with the bundle hash."""
    encoder = PolicyInputEncoder(PolicyInputSpec())

    def key() -> bytes:
        return decision_key_from_json(CONSTITUTION.hash, encoder.encode(MESSAGE, CTX))

    assert encoder.encode(MESSAGE, CTX) == INPUT_JSON
    assert len(key()) == 16
    benchmark(key)


def test_stage_check_l1_hit(benchmark: Any) -> None:
    stage = PolicyStage.from_constitution(
        CONSTITUTION, cache=TieredCache(LRUCache(1_000, ttl_s=None))
    )
    loop = asyncio.new_event_loop()
    try:
        first = stage.check(MESSAGE, CTX)
        assert not isinstance(first, Verdict)
        assert loop.run_until_complete(first).is_allowed  # type: ignore[arg-type]
        hit = stage.check(MESSAGE, CTX)
        assert isinstance(hit, Verdict)
        benchmark(stage.check, MESSAGE, CTX)
    finally:
        loop.close()


def test_stage_check_miss_inline_no_cache(benchmark: Any) -> None:
    stage = PolicyStage.from_constitution(CONSTITUTION)
    assert isinstance(stage.check(MESSAGE, CTX), Verdict)
    benchmark(stage.check, MESSAGE, CTX)
