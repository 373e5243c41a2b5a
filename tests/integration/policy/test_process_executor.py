"""executor="process": worker processes with engine replicas loaded from the same bundle."""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any

from enhanced_agent_bus.constitution import Constitution
from enhanced_agent_bus.policy import (
    EmbeddedPolicy,
    PolicyEngineUnavailableError,
    PolicySettings,
    ProcessPolicyEngine,
    canonical_json,
    create_policy_engine,
)


def policy_input(message_type: str, priority: str = "normal", role: str = "planner") -> bytes:
    document: dict[str, Any] = {
        "sender": {"id": "p1", "tenant_id": "acme", "role": role, "capabilities": []},
        "recipient": {"id": "w1", "tenant_id": "acme", "role": "worker", "capabilities": []},
        "message": {
            "type": message_type,
            "priority": priority,
            "tenant_id": "acme",
            "size_bytes": 2,
            "topic": None,
            "metadata": {},
        },
        "payload": {},
    }
    return canonical_json(document)


INPUTS = [
    policy_input("command"),
    policy_input("command", "critical"),
    policy_input("governance_request"),
    policy_input("command", role="auditor"),
]


async def test_process_pool_decides_like_the_inline_engine(constitution: Constitution) -> None:
    inline = EmbeddedPolicy.from_constitution(constitution)
    engine = create_policy_engine(
        constitution, PolicySettings(executor="process", executor_workers=2)
    )
    assert isinstance(engine, ProcessPolicyEngine)
    await engine.start()
    try:
        decisions = [await engine.evaluate(raw) for raw in INPUTS]  # type: ignore[misc]
    finally:
        await engine.aclose()
    assert decisions == [inline.evaluate_json(raw) for raw in INPUTS]
    assert [d.allow for d in decisions] == [True, False, False, False]
    assert engine.stats()["engine_evaluations"] == len(INPUTS)


async def test_a_killed_worker_fails_one_decision_closed_then_the_pool_restarts(
    constitution: Constitution,
) -> None:
    engine = create_policy_engine(
        constitution, PolicySettings(executor="process", executor_workers=1)
    )
    assert isinstance(engine, ProcessPolicyEngine)
    await engine.start()
    try:
        workers = multiprocessing.active_children()
        assert workers
        for worker in workers:
            assert worker.pid is not None
            os.kill(worker.pid, signal.SIGKILL)
            worker.join(5)
        failure: BaseException | None = None
        try:
            await engine.evaluate(INPUTS[0])  # type: ignore[misc]
        except PolicyEngineUnavailableError as exc:
            failure = exc
        assert failure is not None
        assert "policy worker process died" in str(failure)
        decision = await engine.evaluate(INPUTS[0])  # type: ignore[misc]
        assert decision.allow
    finally:
        await engine.aclose()
    assert engine.stats()["executor_restarts"] == 1
