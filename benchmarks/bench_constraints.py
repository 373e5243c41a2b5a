"""Constraint check micro-benchmarks (pytest-benchmark; not collected by the test suite).

Run: .venv/bin/python -m pytest benchmarks/bench_constraints.py --benchmark-only

What it measures, on the default constitution's constraints and the demo messages:

* one constraint checked by the compiled engine (``spend_within_budget`` alone);
* the compiled engine on the whole default set: the passing demo transfer, the
  denied one (which also words the explanation), and a message type no
  constraint selects;
* the constraint stage's ``check`` (what the pipeline pays per message);
* the z3 engine's blocking check on the calling thread (prepared solver, values
  passed as assumptions, Z3 timeout set), for one constraint and the whole set,
  and, for comparison, a fresh solver built per message;
* the z3 engine through its thread pool, awaited one after another from an event
  loop, next to an empty thread hop (per-check cost: the reported time divided by
  ``HOPS``, also in ``extra_info['per_check_us']``);
* load-time static verification of the default set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from enhanced_agent_bus.constitution import load_bundle
from enhanced_agent_bus.constraints import (
    CompiledChecker,
    ConstraintSet,
    Z3Checker,
    load_constraints,
    verify_constraints,
)
from enhanced_agent_bus.models import AgentMessage, MessageType
from enhanced_agent_bus.pipeline import ALLOW, StageContext
from enhanced_agent_bus.pipeline._constraints import ConstraintStage
from enhanced_agent_bus.registry import AgentRecord

HOPS = 200
CONSTITUTION = load_bundle()
DEFAULT_SET = load_constraints(CONSTITUTION)
SPEND_ONLY = ConstraintSet([DEFAULT_SET["spend_within_budget"]])


async def _handler(message: AgentMessage, context: Any) -> None:
    return None


def _agent(agent_id: str, role: str) -> AgentRecord:
    return AgentRecord(
        agent_id=agent_id,
        tenant_id="acme",
        role=role,
        capabilities=frozenset(),
        handler=_handler,
        mailbox=None,  # type: ignore[arg-type]
    )


SENDER = _agent("planner-1", "planner")
RECIPIENT = _agent("worker-1", "worker")
CTX = StageContext(SENDER, RECIPIENT)
PASS = AgentMessage(
    from_agent="planner-1",
    to_agent="worker-1",
    tenant_id="acme",
    payload={"action": "transfer", "amount": 2500, "currency": "EUR", "to_account": "ACME-OPS-7"},
    metadata={"budget": "5000"},
)
DENY = PASS.model_copy(update={"payload": {**PASS.payload, "amount": 7500}})
EVENT = PASS.model_copy(update={"message_type": MessageType.EVENT})


@pytest.mark.parametrize(
    ("label", "checks", "message", "denied"),
    [
        ("one constraint, pass", SPEND_ONLY, PASS, False),
        ("default set, pass", DEFAULT_SET, PASS, False),
        ("default set, deny + explanation", DEFAULT_SET, DENY, True),
        ("default set, type not selected", DEFAULT_SET, EVENT, False),
    ],
)
def test_compiled_check(
    benchmark: Any, label: str, checks: ConstraintSet, message: AgentMessage, denied: bool
) -> None:
    checker = CompiledChecker(checks)
    assert bool(checker.check(message, SENDER, RECIPIENT)) is denied
    benchmark(checker.check, message, SENDER, RECIPIENT)
    benchmark.extra_info["case"] = label


def test_stage_check_compiled(benchmark: Any) -> None:
    stage = ConstraintStage.from_constitution(CONSTITUTION)
    assert stage.check(PASS, CTX) is ALLOW
    benchmark(stage.check, PASS, CTX)


@pytest.mark.parametrize(
    ("label", "checks"), [("one constraint", SPEND_ONLY), ("default set", DEFAULT_SET)]
)
def test_z3_check_prepared_solver(benchmark: Any, label: str, checks: ConstraintSet) -> None:
    checker = Z3Checker(checks, timeout_ms=50)
    try:
        assert checker.evaluate(PASS, SENDER, RECIPIENT) == ()
        benchmark(checker.evaluate, PASS, SENDER, RECIPIENT)
    finally:
        checker.close()
    benchmark.extra_info["case"] = label


def test_z3_check_fresh_solver_per_message(benchmark: Any) -> None:
    """What the prepared solver avoids: building the solver for every message."""

    def fresh() -> tuple[object, ...]:
        checker = Z3Checker(SPEND_ONLY, timeout_ms=50)
        try:
            return checker.evaluate(PASS, SENDER, RECIPIENT)
        finally:
            checker.close()

    assert fresh() == ()
    benchmark(fresh)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    try:
        yield event_loop
    finally:
        event_loop.close()


def test_thread_hop_empty(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    """The offload overhead alone: await a no-op in a thread pool."""
    pool = ThreadPoolExecutor(max_workers=2)

    async def hops() -> None:
        running = asyncio.get_running_loop()
        for _ in range(HOPS):
            await running.run_in_executor(pool, int)

    try:
        benchmark.pedantic(lambda: loop.run_until_complete(hops()), rounds=20, warmup_rounds=2)
    finally:
        pool.shutdown()
    benchmark.extra_info["per_check_us"] = benchmark.stats.stats.mean / HOPS * 1e6


@pytest.mark.parametrize(
    ("label", "checks"), [("one constraint", SPEND_ONLY), ("default set", DEFAULT_SET)]
)
def test_z3_check_through_thread_pool(
    benchmark: Any, loop: asyncio.AbstractEventLoop, label: str, checks: ConstraintSet
) -> None:
    checker = Z3Checker(checks, timeout_ms=50, threads=2)

    async def checks_in_a_row() -> None:
        for _ in range(HOPS):
            outcome = checker.check(PASS, SENDER, RECIPIENT)
            reasons = outcome if isinstance(outcome, tuple) else await outcome
            assert reasons == ()

    try:
        loop.run_until_complete(checks_in_a_row())
        benchmark.pedantic(
            lambda: loop.run_until_complete(checks_in_a_row()), rounds=5, warmup_rounds=1
        )
    finally:
        checker.close()
    benchmark.extra_info["case"] = label
    benchmark.extra_info["per_check_us"] = benchmark.stats.stats.mean / HOPS * 1e6


def test_load_time_verification(benchmark: Any) -> None:
    data = CONSTITUTION.data_document()
    assert verify_constraints(DEFAULT_SET, data).ok
    benchmark.pedantic(verify_constraints, args=(DEFAULT_SET, data), rounds=10, warmup_rounds=1)
