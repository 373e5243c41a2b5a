"""Per-message checks, run through both engines: they must give identical reasons."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from constraint_helpers import RECIPIENT, SENDER, SPEND, constraints, message

from enhanced_agent_bus.constraints import (
    CODE_INPUT,
    CODE_VIOLATED,
    CompiledChecker,
    ConstraintChecker,
    ConstraintSet,
    Z3Checker,
)
from enhanced_agent_bus.models import AgentMessage, MessageType, Reason


@pytest.fixture(params=["compiled", "z3"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def run(engine: str, checks: ConstraintSet, msg: AgentMessage) -> tuple[Reason, ...]:
    """Check ``msg`` with the named engine (z3: through its thread pool)."""
    checker: ConstraintChecker = (
        CompiledChecker(checks) if engine == "compiled" else Z3Checker(checks, timeout_ms=5_000)
    )
    try:
        result: Any = checker.check(msg, SENDER, RECIPIENT)
        if inspect.isawaitable(result):
            result = await result
        return tuple(result)
    finally:
        checker.close()


def transfer(amount: Any, budget: str | None = "5000", **extra_meta: str) -> AgentMessage:
    metadata = {"budget": budget} if budget is not None else {}
    metadata.update(extra_meta)
    return message({"action": "transfer", "amount": amount}, metadata)


async def test_pass(engine: str) -> None:
    assert await run(engine, constraints(SPEND), transfer(2500)) == ()


async def test_violation_names_constraint_assertion_and_values(engine: str) -> None:
    reasons = await run(engine, constraints(SPEND), transfer(7500))
    assert len(reasons) == 1
    (reason,) = reasons
    assert (reason.stage, reason.code) == ("constraints", CODE_VIOLATED)
    assert reason.message.startswith("constraint 'spend' violated: within budget: ")
    assert "`amount <= budget` is false" in reason.message
    assert "amount=7500 (payload.amount)" in reason.message
    assert "budget=5000 (metadata.budget)" in reason.message
    assert "A transfer spends at most its budget." in reason.message


async def test_every_false_assertion_is_named(engine: str) -> None:
    (reason,) = await run(engine, constraints(SPEND), transfer(20000, budget="10000"))
    assert "`amount <= budget` is false" in reason.message
    assert "`amount > 10000 implies approvals >= 2` is false" in reason.message
    assert "approvals=0 (default)" in reason.message


async def test_defaults_and_alternative_sources(engine: str) -> None:
    checks = constraints(SPEND)
    assert await run(engine, checks, transfer(20000, budget="30000", approvals="2")) == ()
    from_payload = message({"action": "transfer", "amount": 10, "budget": 20})
    assert await run(engine, checks, from_payload) == ()
    # metadata wins over payload when both are present
    both = message({"action": "transfer", "amount": 10, "budget": 20}, {"budget": "5"})
    (reason,) = await run(engine, checks, both)
    assert "budget=5 (metadata.budget)" in reason.message


async def test_missing_field_is_constraint_input(engine: str) -> None:
    (reason,) = await run(engine, constraints(SPEND), transfer(100, budget=None))
    assert reason.code == CODE_INPUT
    assert "variable 'budget' (metadata.budget|payload.budget, Real): the field is missing" in (
        reason.message
    )


@pytest.mark.parametrize(
    ("payload", "metadata", "fragment"),
    [
        ({"amount": "100"}, {"budget": "500"}, "expected a number (Real), got the string '100'"),
        ({"amount": True}, {"budget": "500"}, "got the Bool true"),
        ({"amount": [1]}, {"budget": "500"}, "got a list"),
        ({"amount": 100}, {"budget": "lots"}, "a finite number written as text"),
        ({"amount": 100}, {"budget": "1e999"}, "a finite number written as text"),
        ({"amount": 100}, {"budget": "500", "approvals": "2.5"}, "an integer written as text"),
    ],
)
async def test_wrong_type_is_constraint_input(
    engine: str, payload: dict[str, Any], metadata: dict[str, str], fragment: str
) -> None:
    msg = message({"action": "transfer", **payload}, metadata)
    (reason,) = await run(engine, constraints(SPEND), msg)
    assert reason.code == CODE_INPUT
    assert fragment in reason.message


async def test_selector_decides_what_is_checked(engine: str) -> None:
    checks = constraints(SPEND)
    # not a transfer: the missing budget does not matter
    assert await run(engine, checks, message({"action": "deploy", "amount": 9e9})) == ()
    # no action at all: not selected
    assert await run(engine, checks, message({"amount": 9e9})) == ()
    # null counts as missing
    assert await run(engine, checks, message({"action": None, "amount": 9e9})) == ()
    # another message type: not selected
    assert (
        await run(
            engine, checks, transfer(9e9).model_copy(update={"message_type": MessageType.QUERY})
        )
        == ()
    )


async def test_a_mistyped_selector_field_denies(engine: str) -> None:
    (reason,) = await run(engine, constraints(SPEND), message({"action": 7, "amount": 1}))
    assert reason.code == CODE_INPUT
    assert "variable 'action'" in reason.message


async def test_numbers_are_exact_decimals(engine: str) -> None:
    checks = constraints(
        """
        constraints:
          - id: exact
            description: decimals compare as written
            vars:
              a: {field: payload.a, type: Real}
              b: {field: metadata.b, type: Real}
            assert:
              - a <= 1000.1
              - a + 0.2 <= b
              - a * 3 / 10 >= 300
        """
    )
    assert await run(engine, checks, message({"a": 1000.1}, {"b": "1000.3"})) == ()
    (reason,) = await run(engine, checks, message({"a": 1000.1}, {"b": "1000.29"}))
    assert "`a + 0.2 <= b` is false" in reason.message
    assert "`a <= 1000.1`" not in reason.message
    # 0.1 + 0.2 == 0.3 holds for decimals (it does not for binary floats)
    sums = constraints(
        """
        constraints:
          - id: sum
            description: decimal sum
            vars: {a: {field: payload.a, type: Real}, b: {field: payload.b, type: Real}}
            assert: [a + b == 0.3]
        """
    )
    assert await run(engine, sums, message({"a": 0.1, "b": 0.2})) == ()


async def test_large_integers_and_int_real_mixing(engine: str) -> None:
    checks = constraints(
        """
        constraints:
          - id: big
            description: big ints
            vars: {n: {field: payload.n, type: Int}, x: {field: payload.x, type: Real}}
            assert: [n % 7 == 3, x < n, n - x > 0.5]
        """
    )
    big = 2**62 + 6  # = 3 (mod 7)
    assert await run(engine, checks, message({"n": big, "x": 1e18})) == ()
    (reason,) = await run(engine, checks, message({"n": big, "x": 5e18}))
    assert "`x < n`" in reason.message
    assert "`n % 7 == 3`" not in reason.message
    # A float means its shortest decimal: 4.611686018427388e+18 is 4611686018427388000,
    # which is above 2**62 + 6 although float(2**62 + 6) == 2.0**62.
    (reason,) = await run(engine, checks, message({"n": big, "x": float(big)}))
    assert "`x < n`" in reason.message


async def test_strings_bools_membership_and_envelope_fields(engine: str) -> None:
    checks = constraints(
        r"""
        constraints:
          - id: env
            description: envelope and strings
            vars:
              env: {field: payload.env, type: String}
              urgent: {field: payload.urgent, type: Bool, default: false}
              priority: {field: message.priority, type: String}
              role: {field: sender.role, type: String}
              size: {field: message.payload_size_bytes, type: Int}
            assert:
              - env in ["dev", "prod", "\\u{41}"]
              - urgent implies priority in ["high", "critical"]
              - role != "auditor"
              - size < 200
        """
    )
    assert await run(engine, checks, message({"env": "prod"})) == ()
    (reason,) = await run(engine, checks, message({"env": "A"}))
    assert "env='A'" in reason.message
    assert await run(engine, checks, message({"env": "\\u{41}"})) == ()
    (reason,) = await run(engine, checks, message({"env": "dev", "urgent": True}))
    assert "`urgent implies priority in" in reason.message
    assert "priority='normal' (message.priority)" in reason.message
    (reason,) = await run(engine, checks, message({"env": "dev", "pad": "x" * 300}))
    assert "`size < 200`" in reason.message


async def test_nested_payload_paths(engine: str) -> None:
    checks = constraints(
        """
        constraints:
          - id: nested
            description: nested
            vars: {limit: {field: payload.order.limit, type: Int}}
            assert: [limit <= 10]
        """
    )
    assert await run(engine, checks, message({"order": {"limit": 3}})) == ()
    (reason,) = await run(engine, checks, message({"order": "flat"}))
    assert reason.code == CODE_INPUT
    assert "payload.order is the string 'flat', not an object holding 'limit'" in reason.message


async def test_reasons_follow_declaration_order(engine: str) -> None:
    checks = constraints(
        """
        constraints:
          - id: first
            description: plain
            vars: {size: {field: message.payload_size_bytes, type: Int}}
            assert: [size < 5]
          - id: second
            description: dispatched
            applies_to: {when: kind == "x"}
            vars: {kind: {field: payload.kind, type: String}, n: {field: payload.n, type: Int}}
            assert: [n > 100]
          - id: third
            description: plain again
            vars: {n: {field: payload.n, type: Int}}
            assert: [n > 1000]
        """
    )
    reasons = await run(engine, checks, message({"kind": "x", "n": 1}))
    assert [r.message.split("'")[1] for r in reasons] == ["first", "second", "third"]


async def test_dispatch_falls_back_for_a_non_string_discriminator(engine: str) -> None:
    checks = constraints(
        """
        constraints:
          - id: a
            description: a
            applies_to: {when: kind == "a"}
            vars: {kind: {field: payload.kind, type: String}, n: {field: payload.n, type: Int}}
            assert: [n > 1]
          - id: b
            description: b
            applies_to: {when: kind == "b" and n > 0}
            vars: {kind: {field: payload.kind, type: String}, n: {field: payload.n, type: Int}}
            assert: [n > 5]
        """
    )
    assert await run(engine, checks, message({"kind": "c", "n": 0})) == ()
    (reason,) = await run(engine, checks, message({"kind": "b", "n": 3}))
    assert reason.message.startswith("constraint 'b'")
    reasons = await run(engine, checks, message({"kind": 5, "n": 0}))
    assert [r.code for r in reasons] == [CODE_INPUT, CODE_INPUT]
    # b's selector also reads n: a mistyped n denies b only when kind is present and fine
    (reason,) = await run(engine, checks, message({"kind": "zzz", "n": "7"}))
    assert reason.message.startswith("constraint 'b' cannot check this message: variable 'n'")
    assert await run(engine, checks, message({"n": "7"})) == ()


async def test_a_set_without_constraints_allows_everything(engine: str) -> None:
    assert await run(engine, ConstraintSet(()), message({"anything": 1})) == ()


def test_compiled_check_is_synchronous_and_counted() -> None:
    checker = CompiledChecker(constraints(SPEND))
    assert checker.check(transfer(1), SENDER, RECIPIENT) == ()
    assert len(checker.check(transfer(9999), SENDER, RECIPIENT)) == 1
    assert checker.check(message(message_type=MessageType.EVENT), SENDER, RECIPIENT) == ()
    assert checker.stats() == {"checks_total": 2, "denied_total": 1}
