"""verify_plan: an aggregate budget over every branch the constitution allows, with real Z3."""

from __future__ import annotations

import pytest
from constraint_helpers import constraints

from enhanced_agent_bus.constraints import PlanStatus, PlanStep, verify_plan
from enhanced_agent_bus.errors import ConfigurationError

RULES = constraints(
    """
    constraints:
      - id: spend
        description: a transfer is positive and within its budget
        applies_to: {message_types: [command], when: action == "transfer"}
        vars:
          action: {field: payload.action, type: String}
          amount: {field: payload.amount, type: Real}
          budget: {field: metadata.budget, type: Real}
        assert: [amount > 0, amount <= budget]
    """
)


def pay(step_id: str, budget: str, amount: float | None = None, **kw: object) -> PlanStep:
    fields: dict[str, object] = {"payload.action": "transfer", "metadata.budget": budget}
    open_fields: dict[str, str] = {}
    if amount is None:
        open_fields["payload.amount"] = "Real"
    else:
        fields["payload.amount"] = amount
    return PlanStep(step_id, fields=fields, open_fields=open_fields, **kw)  # type: ignore[arg-type]


PLAN = [
    PlanStep("review", message_type="query"),
    pay("pay-a", "1000", depends_on=("review",), branch=("route", "a")),
    pay("pay-b", "5000", amount=700, depends_on=("review",), branch=("route", "b")),
    pay("fee", "100", amount=50),
]


def test_a_plan_within_budget_on_every_branch_is_proved() -> None:
    result = verify_plan(PLAN, RULES, sum_of="payload.amount", budget=1500)
    assert result.status is PlanStatus.PROVED
    assert result.ok
    assert result.counterexample is None


def test_a_plan_over_budget_returns_a_counterexample() -> None:
    result = verify_plan(PLAN, RULES, sum_of="payload.amount", budget=1000)
    assert result.status is PlanStatus.COUNTEREXAMPLE
    assert not result.ok
    example = result.counterexample
    assert example is not None
    assert example.choices == {"route": "a"}
    assert set(example.executed_steps) == {"review", "pay-a", "fee"}
    chosen = float(example.values["pay-a"]["payload.amount"])
    # the open amount is one the constitution allows, and it breaks the plan budget
    assert 950 < chosen <= 1000
    assert float(example.total) == pytest.approx(chosen + 50)
    assert "over the budget 1000" in result.message


def test_denied_steps_and_their_dependents_do_not_count() -> None:
    plan = [
        pay("fee", "100", amount=50),
        pay("too-big", "100", amount=9999),  # the constitution denies it
        pay("after", "1000", amount=500, depends_on=("too-big",)),
    ]
    assert verify_plan(plan, RULES, sum_of="payload.amount", budget=50).ok
    result = verify_plan(plan, RULES, sum_of="payload.amount", budget=49)
    assert result.counterexample is not None
    assert result.counterexample.executed_steps == ("fee",)


def test_an_open_amount_bounded_only_by_the_constitution() -> None:
    unbounded = [
        PlanStep("free", fields={"payload.action": "noop"}, open_fields={"payload.amount": "Int"})
    ]
    result = verify_plan(unbounded, RULES, sum_of="payload.amount", budget=10**9)
    assert result.status is PlanStatus.COUNTEREXAMPLE
    assert int(result.counterexample.values["free"]["payload.amount"]) > 10**9  # type: ignore[union-attr]


def test_a_step_missing_a_required_field_does_not_run() -> None:
    plan = [PlanStep("no-budget", fields={"payload.action": "transfer", "payload.amount": 10})]
    assert verify_plan(plan, RULES, sum_of="payload.amount", budget=0).ok


@pytest.mark.parametrize(
    ("steps", "fragment"),
    [
        ([PlanStep("a"), PlanStep("a")], "used twice"),
        ([PlanStep("a", depends_on=("ghost",))], "unknown step(s) ['ghost']"),
        (
            [PlanStep("a", depends_on=("b",)), PlanStep("b", depends_on=("a",))],
            "cycle: a -> b -> a",
        ),
        ([PlanStep("a", message_type="nope")], "message_type 'nope'"),
        ([PlanStep("a", fields={"body.x": 1})], "unknown root 'body'"),
        (
            [PlanStep("a", fields={"payload.amount": 1}, open_fields={"payload.amount": "Int"})],
            "both a value and an open type",
        ),
        ([PlanStep("a", open_fields={"payload.amount": "Decimal"})], "type 'Decimal'"),
        ([PlanStep("a", fields={"payload.amount": "ten"})], "summed but expected a number"),
        (
            [
                PlanStep(
                    "a",
                    fields={"payload.action": "transfer", "metadata.budget": "9"},
                    open_fields={"payload.amount": "String"},
                )
            ],
            "reads it as Real",
        ),
    ],
)
def test_malformed_plans_are_refused(steps: list[PlanStep], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        verify_plan(steps, RULES, sum_of="payload.amount", budget=10)
    assert fragment in str(caught.value)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="sum_of"):
        verify_plan([], RULES, sum_of="amount", budget=1)
    with pytest.raises(ConfigurationError, match="finite number"):
        verify_plan([], RULES, sum_of="payload.amount", budget=float("inf"))


def test_an_undecided_plan_is_unknown_not_proved() -> None:
    cubes = constraints(
        """
        constraints:
          - id: cubes
            description: sums of three cubes
            vars:
              x: {field: payload.x, type: Int}
              y: {field: payload.y, type: Int}
              z: {field: payload.z, type: Int}
            assert: [x * x * x + y * y * y + z * z * z == 42]
        """
    )
    step = PlanStep("s", open_fields={"payload.x": "Int", "payload.y": "Int", "payload.z": "Int"})
    result = verify_plan([step], cubes, sum_of="payload.x", budget=10**6, timeout_ms=1)
    assert result.status is PlanStatus.UNKNOWN
    assert not result.ok
