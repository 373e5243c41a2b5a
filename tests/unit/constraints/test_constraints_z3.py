"""The z3 engine specifically: thread pool, timeouts, backpressure, fail-closed behaviour."""

from __future__ import annotations

import asyncio
import inspect

from constraint_helpers import RECIPIENT, SENDER, SPEND, constraints, message

from enhanced_agent_bus.constraints import (
    CODE_ERROR,
    CODE_INPUT,
    CODE_VIOLATED,
    CompiledChecker,
    ConstraintSet,
    Z3Checker,
    parse_constraints,
)
from enhanced_agent_bus.models import MessageType


def hard_constraints(assertions: int = 40) -> ConstraintSet:
    """Nonlinear integer arithmetic Z3 needs milliseconds for even with every value given."""
    lines = [
        "version: 1",
        "constraints:",
        "  - id: hard",
        "    description: deliberately hard nonlinear arithmetic",
        "    vars:",
        "      x: {field: payload.x, type: Int}",
        "      y: {field: payload.y, type: Int}",
        "      z: {field: payload.z, type: Int}",
        "    assert:",
    ]
    for i in range(assertions):
        product = " * ".join([f"(y + {i})"] * 8)
        lines.append(f"      - 'x * {product} % 1000003 == (z + {i}) % 1000003'")
    return parse_constraints("\n".join(lines) + "\n")


HARD_MESSAGE = message({"x": 123456789, "y": 987654321, "z": 5})


def test_a_hard_constraint_with_a_1ms_limit_fails_closed() -> None:
    checks = hard_constraints()
    # Decidable, and the compiled engine decides it: it is a violation...
    (expected,) = CompiledChecker(checks).check(HARD_MESSAGE, SENDER, RECIPIENT)
    assert expected.code == CODE_VIOLATED
    # ...but Z3 cannot finish it in 1 ms, so the message is denied, never allowed.
    checker = Z3Checker(checks, timeout_ms=1)
    try:
        (reason,) = checker.evaluate(HARD_MESSAGE, SENDER, RECIPIENT)
    finally:
        checker.close()
    assert reason.stage == "constraints"
    assert reason.code == CODE_ERROR
    assert "did not decide the constraints within 1 ms" in reason.message
    assert "fail closed" in reason.message
    assert checker.stats()["timeouts_total"] == 1


def test_the_same_check_succeeds_with_time_to_spare() -> None:
    checker = Z3Checker(hard_constraints(), timeout_ms=60_000)
    try:
        (reason,) = checker.evaluate(HARD_MESSAGE, SENDER, RECIPIENT)
    finally:
        checker.close()
    assert reason.code == CODE_VIOLATED


async def test_async_timeout_is_a_denial_through_the_pool() -> None:
    checker = Z3Checker(hard_constraints(), timeout_ms=1, queue_timeout_ms=10_000)
    try:
        pending = checker.check(HARD_MESSAGE, SENDER, RECIPIENT)
        assert inspect.isawaitable(pending)
        (reason,) = await pending
    finally:
        checker.close()
    assert reason.code == CODE_ERROR
    assert checker.stats()["errors_total"] == 1


async def test_a_missed_deadline_denies_even_while_the_thread_still_works() -> None:
    # One thread, 1 ms for solve plus queueing: building the prepared solver alone is slower.
    checker = Z3Checker(hard_constraints(), timeout_ms=1, threads=1, queue_timeout_ms=0)
    try:
        (reason,) = await checker.check(HARD_MESSAGE, SENDER, RECIPIENT)  # type: ignore[misc]
    finally:
        checker.close()
    assert reason.code == CODE_ERROR
    assert "did not finish within 1 ms" in reason.message
    assert checker.stats()["timeouts_total"] >= 1


async def test_backpressure_denies_beyond_max_pending() -> None:
    checker = Z3Checker(hard_constraints(), timeout_ms=2_000, threads=1, max_pending=1)
    try:
        first, second = await asyncio.gather(
            checker.check(HARD_MESSAGE, SENDER, RECIPIENT),  # type: ignore[arg-type]
            checker.check(HARD_MESSAGE, SENDER, RECIPIENT),  # type: ignore[arg-type]
        )
    finally:
        checker.close()
    assert first[0].code in (CODE_VIOLATED, CODE_ERROR)
    assert second[0].code == CODE_ERROR
    assert "checks in flight (z3_max_pending)" in second[0].message
    assert checker.stats()["overloaded_total"] == 1
    assert checker.stats()["in_flight"] == 0


async def test_a_closed_engine_still_answers_late_checks() -> None:
    checker = Z3Checker(constraints(SPEND))
    checker.close()
    late_pass = message({"action": "transfer", "amount": 1}, {"budget": "5"})
    late_deny = message({"action": "transfer", "amount": 9}, {"budget": "5"})
    assert await checker.check(late_pass, SENDER, RECIPIENT) == ()  # type: ignore[misc]
    (reason,) = await checker.check(late_deny, SENDER, RECIPIENT)  # type: ignore[misc]
    assert reason.code == CODE_VIOLATED


def test_answers_that_need_no_solver_come_without_a_thread_hop() -> None:
    checker = Z3Checker(constraints(SPEND))
    try:
        # a type no constraint selects
        assert checker.check(message(message_type=MessageType.EVENT), SENDER, RECIPIENT) == ()
        # a command whose selector field is absent
        assert checker.check(message({"amount": 5}), SENDER, RECIPIENT) == ()
        # a mistyped selector field: constraint_input, decided by binding alone
        reasons = checker.check(message({"action": 1}), SENDER, RECIPIENT)
        assert isinstance(reasons, tuple)
        assert [r.code for r in reasons] == ["constraint_input"]
    finally:
        checker.close()
    assert checker.stats()["checks_total"] == 2
    assert checker.stats()["denied_total"] == 1


async def test_concurrent_checks_agree_with_the_compiled_engine() -> None:
    checks = constraints(SPEND)
    compiled = CompiledChecker(checks)
    checker = Z3Checker(checks, timeout_ms=10_000, threads=4)
    messages = [
        message(
            {"action": "transfer", "amount": amount}, {"budget": "5000", "approvals": str(k % 3)}
        )
        for k, amount in enumerate(range(0, 40_000, 500))
    ]
    try:
        results = await asyncio.gather(
            *(checker.check(m, SENDER, RECIPIENT) for m in messages)  # type: ignore[arg-type]
        )
    finally:
        checker.close()
    expected = [compiled.check(m, SENDER, RECIPIENT) for m in messages]
    assert list(results) == expected
    assert sum(1 for r in expected if r) > 10  # the comparison covers denials too
    assert checker.stats()["checks_total"] == len(messages)


async def test_warm_builds_one_prepared_solver_per_thread_and_type() -> None:
    checker = Z3Checker(constraints(SPEND), threads=3)
    try:
        await checker.warm()
        assert checker.stats()["solvers_built"] == 3
        msg = message({"action": "transfer", "amount": 1}, {"budget": "5"})
        for _ in range(12):
            assert await checker.check(msg, SENDER, RECIPIENT) == ()  # type: ignore[misc]
        assert checker.stats()["solvers_built"] == 3  # reused, never rebuilt per message
    finally:
        checker.close()
    # after close a late check builds a one-off solver and keeps nothing
    assert await checker.check(msg, SENDER, RECIPIENT) == ()  # type: ignore[misc]
    assert checker.stats()["solvers_built"] == 4


def test_bad_input_to_a_selected_constraint_is_named_without_solving_the_rest() -> None:
    # Found by the differential property test: with `n1` unusable and the rest of the
    # constraint left free, Z3 searched nonlinear int/real arithmetic until its timeout
    # (a fail-closed constraint_error) instead of naming the bad input.
    checks = constraints(
        """
        constraints:
          - id: c0
            description: selected by b1, with a nonlinear assertion
            vars:
              b1: {field: payload.b1, type: Bool}
              s1: {field: payload.s1, type: String}
              s2: {field: metadata.s2, type: String, default: ''}
              n1: {field: payload.n1, type: Int, default: -15}
              n2: {field: metadata.n2, type: Int, default: 0}
            assert: ['b1', 's2 == s1', 'n1 * n2 not in [0, 0, 5774.38]']
            applies_to: {when: b1}
        """
    )
    bad = message({"n1": "oops", "b1": True, "s1": ""}, {"n2": "0", "s2": "oops"})
    unselected = message({"n1": "oops", "b1": False, "s1": ""}, {"n2": "0", "s2": "oops"})
    checker = Z3Checker(checks, timeout_ms=10_000)
    try:
        (reason,) = checker.evaluate(bad, SENDER, RECIPIENT)
        assert checker.evaluate(unselected, SENDER, RECIPIENT) == ()
    finally:
        checker.close()
    assert reason.code == CODE_INPUT, reason.message
    assert "'n1'" in reason.message
    assert "'oops'" in reason.message
    assert (reason,) == CompiledChecker(checks).check(bad, SENDER, RECIPIENT)
