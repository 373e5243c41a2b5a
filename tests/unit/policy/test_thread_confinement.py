"""regorus objects are thread-confined: none may be dropped on another thread.

pyo3 reports such a drop through ``sys.unraisablehook`` (and leaks the object).
These tests move errors and policies across threads the way the bus does and
check that nothing is reported.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from enhanced_agent_bus.constitution import Constitution, load_bundle
from enhanced_agent_bus.policy import (
    EmbeddedPolicy,
    PolicyEvaluationError,
    PolicyLoadError,
    PolicySettings,
    create_policy_engine,
)


@pytest.fixture
def unraisable() -> Iterator[list[Any]]:
    seen: list[Any] = []
    previous = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        yield seen
    finally:
        gc.collect()
        sys.unraisablehook = previous


@pytest.mark.parametrize("mode", ["compiled", "interpreted"])
def test_load_error_raised_in_a_worker_thread_is_freed_safely(
    tmp_path: Path, unraisable: list[Any], mode: str
) -> None:
    (tmp_path / "authz.rego").write_text(
        'package agentbus.authz\n\ndecision := {"allow": "yes", "deny": []}\n'
    )
    bundle = load_bundle(tmp_path)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(
            EmbeddedPolicy.from_constitution, bundle, PolicySettings(rego_mode=mode)
        )
        with pytest.raises(PolicyLoadError) as info:
            future.result()
    del future, info
    gc.collect()
    assert unraisable == []


def test_policy_loaded_in_a_worker_thread_evaluates_on_this_one(
    constitution: Constitution, unraisable: list[Any]
) -> None:
    with ThreadPoolExecutor(1) as pool:
        policy = pool.submit(EmbeddedPolicy.from_constitution, constitution).result()
    decision = policy.evaluate(
        {
            "sender": {"id": "p", "tenant_id": "acme", "role": "planner", "capabilities": []},
            "recipient": None,
            "message": {
                "type": "event",
                "priority": "normal",
                "tenant_id": "acme",
                "size_bytes": 2,
                "topic": None,
                "metadata": {},
            },
            "payload": {},
        }
    )
    assert decision.allow
    del policy
    gc.collect()
    assert unraisable == []


async def test_thread_engine_errors_cross_to_the_loop_safely(
    tmp_path: Path, unraisable: list[Any]
) -> None:
    (tmp_path / "authz.rego").write_text(
        "package agentbus.authz\n\n"
        'decision := {"allow": true, "deny": []} if input.message.type != "query"\n'
    )
    engine = create_policy_engine(load_bundle(tmp_path), PolicySettings(executor="thread"))
    await engine.start()
    errors: list[BaseException] = []
    try:
        for _ in range(3):
            try:
                await engine.evaluate(b'{"message": {"type": "query"}}')  # type: ignore[misc]
            except PolicyEvaluationError as exc:
                errors.append(exc)
    finally:
        await engine.aclose()
    assert len(errors) == 3
    assert "undefined for this input" in str(errors[0])
    del errors
    await asyncio.sleep(0)
    gc.collect()
    assert unraisable == []


async def test_thread_engine_bounds_pending_work(constitution: Constitution) -> None:
    engine = create_policy_engine(
        constitution, PolicySettings(executor="thread", executor_max_pending=1)
    )
    await engine.start()
    try:
        probe = b'{"message": {"type": "event"}}'
        results = await asyncio.gather(
            *(engine.evaluate(probe) for _ in range(20)),  # type: ignore[arg-type]
        )
    finally:
        await engine.aclose()
    assert len(results) == 20
    assert all(not decision.allow for decision in results)  # malformed input: denied
    stats = engine.stats()
    assert (stats["executor_pending"], stats["engine_evaluations"]) == (0, 20)
