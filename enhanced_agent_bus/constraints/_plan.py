"""Plan-level checks: does an aggregate stay within budget on every branch the constitution allows?

A plan is a DAG of steps; each step is a message that will be sent. Some of
its fields are known now (``fields``), some only at run time (``open_fields``:
Z3 may pick any value the constitution's per-message constraints allow).
Steps tagged ``branch=(decision, option)`` run only when that option is taken;
exactly one option of each decision is taken. A step runs when its branch is
taken, every step it depends on ran, and the constitution allows its message
(a denied step does not run, and neither do its dependents, as in the
workflow engine).

:func:`verify_plan` asks Z3 for a choice of branches and open values whose
running steps sum ``sum_of`` beyond ``budget``. None exists: the plan is
*proved* within budget. One exists: it is returned as a counterexample.

Envelope fields a step does not give (priority, payload size, agents, roles)
are open: any value of their domain. Payload and metadata fields a step
neither gives nor opens are missing, exactly as they would be at run time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Final

import z3

from ..errors import ConfigurationError
from ..models import MessageType, Priority
from ._ast import VarType
from ._binding import MISSING, BadValue, FieldSource, coerce, parse_field_source
from ._model import Constraint, ConstraintSet, Variable
from ._symbolic import format_witness_value
from ._verify import DEFAULT_VERIFY_TIMEOUT_MS
from ._z3terms import Translator, constant, decode_value, string_value, value_term

_IMPLICITLY_OPEN: Final = ("message.", "sender.", "recipient.")


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One message a plan will send.

    Example::

        PlanStep("pay-vendor", fields={"payload.action": "transfer", "metadata.budget": "5000"},
                 open_fields={"payload.amount": "Real"}, depends_on=("approve",),
                 branch=("review", "approved"))
    """

    step_id: str
    message_type: MessageType | str = MessageType.COMMAND
    #: Known values by field path, as they will appear in the message (metadata as strings).
    fields: Mapping[str, object] = field(default_factory=dict)
    #: Field path -> type ("Int", "Real", "Bool", "String") for values decided at run time.
    open_fields: Mapping[str, VarType | str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    #: (decision, option): the step runs only when this option of the decision is taken.
    branch: tuple[str, str] | None = None


class PlanStatus(StrEnum):
    PROVED = "proved"
    COUNTEREXAMPLE = "counterexample"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PlanCounterexample:
    """Branch choices and run-time values under which the plan exceeds its budget."""

    choices: Mapping[str, str]
    executed_steps: tuple[str, ...]
    values: Mapping[str, Mapping[str, str]]
    total: str


@dataclass(frozen=True, slots=True)
class PlanVerification:
    status: PlanStatus
    message: str
    counterexample: PlanCounterexample | None = None

    @property
    def ok(self) -> bool:
        """True only when Z3 proved the budget holds on every allowed branch."""
        return self.status is PlanStatus.PROVED


def _ordered(steps: Sequence[PlanStep]) -> list[PlanStep]:
    by_id: dict[str, PlanStep] = {}
    for step in steps:
        if not isinstance(step.step_id, str) or not step.step_id:
            raise ConfigurationError(f"plan step id {step.step_id!r} must be a non-empty string")
        if step.step_id in by_id:
            raise ConfigurationError(f"plan step id {step.step_id!r} is used twice; ids are unique")
        by_id[step.step_id] = step
    for step in steps:
        unknown = [d for d in step.depends_on if d not in by_id]
        if unknown:
            raise ConfigurationError(
                f"plan step {step.step_id!r} depends on unknown step(s) {unknown}; "
                f"known steps are {sorted(by_id)}"
            )
    ordered: list[PlanStep] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(step: PlanStep, path: list[str]) -> None:
        mark = state.get(step.step_id)
        if mark == 2:
            return
        if mark == 1:
            cycle = [*path[path.index(step.step_id) :], step.step_id]
            raise ConfigurationError(
                f"plan steps form a cycle: {' -> '.join(cycle)}; a plan must be a DAG"
            )
        state[step.step_id] = 1
        for dependency in step.depends_on:
            visit(by_id[dependency], [*path, step.step_id])
        state[step.step_id] = 2
        ordered.append(step)

    for step in steps:
        visit(step, [])
    return ordered


def _message_type(step: PlanStep) -> MessageType:
    try:
        return MessageType(step.message_type)
    except ValueError:
        raise ConfigurationError(
            f"plan step {step.step_id!r} has message_type {step.message_type!r}; use one of "
            f"{[t.value for t in MessageType]}"
        ) from None


def _open_type(step: PlanStep, path: str, kind: VarType | str) -> VarType:
    try:
        return VarType(kind)
    except ValueError:
        raise ConfigurationError(
            f"plan step {step.step_id!r}: open field {path!r} has type {kind!r}; use one of "
            f"{[t.value for t in VarType]}"
        ) from None


class _PlanEncoder:
    def __init__(self, ctx: z3.Context) -> None:
        self.ctx = ctx
        self.axioms: list[z3.BoolRef] = []
        self.open_terms: dict[tuple[str, str], z3.ExprRef] = {}

    def open_term(self, step: PlanStep, source: FieldSource, kind: VarType) -> z3.ExprRef:
        key = (step.step_id, source.text)
        term = self.open_terms.get(key)
        if term is None:
            term = constant(f"{step.step_id}/{source.text}", kind, self.ctx)
            self.open_terms[key] = term
            if source.text == "message.payload_size_bytes":
                self.axioms.append(term >= 2)
            elif source.text == "message.priority":
                self.axioms.append(
                    z3.Or(*(term == string_value(p.value, self.ctx) for p in Priority))
                )
        return term

    def resolve(self, step: PlanStep, variable: Variable) -> object:
        """A Z3 term for the variable in this step, MISSING, or a BadValue."""
        for source in variable.sources:
            text = source.text
            if text == "message.message_type":
                return value_term(VarType.STRING, _message_type(step).value, self.ctx)
            if text in step.fields:
                value = coerce(source, variable.type, step.fields[text])
                if value is MISSING:
                    continue
                if isinstance(value, BadValue):
                    return value
                return value_term(variable.type, value, self.ctx)
            declared = step.open_fields.get(text)
            natural = source.natural_type
            if declared is None and text.startswith(_IMPLICITLY_OPEN) and natural is not None:
                declared = natural
            if declared is None:
                continue
            kind = _open_type(step, text, declared)
            term = self.open_term(step, source, kind)
            if kind is variable.type:
                return term
            if kind is VarType.INT and variable.type is VarType.REAL:
                return z3.ToReal(term)
            raise ConfigurationError(
                f"plan step {step.step_id!r}: open field {text!r} is {kind} but a constraint "
                f"reads it as {variable.type}; declare it as {variable.type}"
            )
        if variable.has_default:
            return value_term(variable.type, variable.default, self.ctx)
        return MISSING

    def allowed(self, step: PlanStep, constraint: Constraint) -> z3.BoolRef:
        """When the constitution lets this step's message through ``constraint``."""
        terms: dict[str, z3.ExprRef] = {}
        problem = False
        for name in constraint.selector_names:
            resolved = self.resolve(step, constraint.variables[name])
            if resolved is MISSING:
                return z3.BoolVal(True, self.ctx)  # not selected
            if isinstance(resolved, BadValue):
                return z3.BoolVal(False, self.ctx)  # constraint_input
            terms[name] = resolved
        for name, variable in constraint.variables.items():
            if name in terms:
                continue
            resolved = self.resolve(step, variable)
            if resolved is MISSING or isinstance(resolved, BadValue):
                problem = True
                break
            terms[name] = resolved
        translate = Translator(self.ctx, terms.__getitem__).translate
        when = z3.BoolVal(True, self.ctx) if constraint.when is None else translate(constraint.when)
        if problem:
            return z3.Not(when, self.ctx)
        holds = [translate(a.expr) for a in constraint.assertions]
        return z3.Implies(when, z3.And(*holds) if len(holds) > 1 else holds[0], self.ctx)

    def amount(self, step: PlanStep, source: FieldSource) -> z3.ArithRef:
        text = source.text
        if text in step.fields:
            value = coerce(source, VarType.REAL, step.fields[text])
            if value is MISSING:
                return z3.RealVal(0, self.ctx)
            if isinstance(value, BadValue):
                raise ConfigurationError(
                    f"plan step {step.step_id!r}: {text} is summed but {value.problem}"
                )
            return value_term(VarType.REAL, value, self.ctx)
        if text in step.open_fields:
            kind = _open_type(step, text, step.open_fields[text])
            if not kind.is_numeric:
                raise ConfigurationError(
                    f"plan step {step.step_id!r}: {text} is summed but declared {kind}"
                )
            term = self.open_term(step, source, kind)
            return z3.ToReal(term) if kind is VarType.INT else term
        return z3.RealVal(0, self.ctx)


def verify_plan(
    steps: Sequence[PlanStep],
    constraints: ConstraintSet,
    *,
    sum_of: str,
    budget: int | float,
    timeout_ms: int = DEFAULT_VERIFY_TIMEOUT_MS,
) -> PlanVerification:
    """Prove that ``sum_of`` summed over the steps that run stays within ``budget``.

    Blocks while Z3 solves (private context; safe in a thread): from async code
    use ``await asyncio.to_thread(verify_plan, ...)``.

    Example::

        result = verify_plan(steps, constraints, sum_of="payload.amount", budget=10_000)
        if not result.ok:
            print(result.message, result.counterexample)

    Raises:
        ConfigurationError: duplicate or unknown step ids, a dependency cycle, a bad
            field path or type, or a non-finite budget.
    """
    try:
        summed = parse_field_source(sum_of)
    except ValueError as exc:
        raise ConfigurationError(f"sum_of: {exc}") from None
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not math.isfinite(budget):
        raise ConfigurationError(f"budget must be a finite number, not {budget!r}")
    ordered = _ordered(steps)
    for step in ordered:
        for path in (*step.fields, *step.open_fields):
            try:
                parse_field_source(path)
            except ValueError as exc:
                raise ConfigurationError(f"plan step {step.step_id!r}: {exc}") from None
        both = set(step.fields) & set(step.open_fields)
        if both:
            raise ConfigurationError(
                f"plan step {step.step_id!r} gives {sorted(both)} both a value and an open type"
            )
    ctx = z3.Context()
    encoder = _PlanEncoder(ctx)
    decisions: dict[str, list[str]] = {}
    for step in ordered:
        if step.branch is not None:
            decision, option = step.branch
            options = decisions.setdefault(decision, [])
            if option not in options:
                options.append(option)
    choice = {d: z3.Int(f"decision/{d}", ctx) for d in decisions}
    for decision, options in decisions.items():
        encoder.axioms.extend([choice[decision] >= 0, choice[decision] < len(options)])
    runs: dict[str, z3.BoolRef] = {}
    amounts: dict[str, z3.ArithRef] = {}
    for step in ordered:
        message_type = _message_type(step)
        conditions = [runs[d] for d in step.depends_on]
        if step.branch is not None:
            decision, option = step.branch
            conditions.append(choice[decision] == decisions[decision].index(option))
        conditions.extend(
            encoder.allowed(step, c) for c in constraints.for_message_type(message_type)
        )
        runs[step.step_id] = z3.And(*conditions) if conditions else z3.BoolVal(True, ctx)
        amounts[step.step_id] = encoder.amount(step, summed)
    zero = z3.RealVal(0, ctx)
    total = (
        z3.Sum(*(z3.If(runs[s.step_id], amounts[s.step_id], zero) for s in ordered))
        if (ordered)
        else zero
    )
    limit = z3.RealVal(str(Fraction(repr(budget)) if isinstance(budget, float) else budget), ctx)
    solver = z3.Solver(ctx=ctx)
    solver.set("timeout", timeout_ms)
    solver.add(*encoder.axioms)
    solver.add(total > limit)
    result = solver.check()
    if result == z3.unsat:
        return PlanVerification(
            PlanStatus.PROVED,
            f"the sum of {sum_of} over the steps that run is at most {budget} on every branch "
            "the constitution allows",
        )
    if result != z3.sat:
        return PlanVerification(
            PlanStatus.UNKNOWN,
            f"Z3 could not decide within {timeout_ms} ms ({solver.reason_unknown()}); treat the "
            "plan as unverified",
        )
    model = solver.model()
    executed = tuple(s.step_id for s in ordered if z3.is_true(model.eval(runs[s.step_id], True)))
    values: dict[str, dict[str, str]] = {}
    for step in ordered:
        shown: dict[str, str] = {}
        for (step_id, path), term in encoder.open_terms.items():
            if step_id == step.step_id:
                shown[path] = format_witness_value(decode_value(model.eval(term, True)))
        shown.setdefault(
            summed.text, format_witness_value(decode_value(model.eval(amounts[step.step_id], True)))
        )
        values[step.step_id] = shown
    chosen = {d: decisions[d][model.eval(choice[d], True).as_long()] for d in decisions}
    total_value = format_witness_value(decode_value(model.eval(total, True)))
    return PlanVerification(
        PlanStatus.COUNTEREXAMPLE,
        f"the steps {list(executed)} can run together and sum {sum_of} to {total_value}, over "
        f"the budget {budget}",
        PlanCounterexample(chosen, executed, values, total_value),
    )
