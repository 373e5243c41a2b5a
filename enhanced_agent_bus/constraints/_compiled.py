"""The ``compiled`` engine: closures per constraint, and a dispatch index over selectors.

Most selectors discriminate on one string field (``action == "transfer"``).
Constraints whose ``when`` reads only that field and requires it to equal a
literal are grouped by the field: a message reads the field once and runs
only the constraints whose literal it matches, so a bundle with a few
constraints per action costs a few constraints per message, however many
actions it covers. When that field holds something other than a string, the
group falls back to the plain path, which words the same ``constraint_input``
reasons the z3 engine does. Reasons are always returned in declaration order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from ..models import MessageType, Reason
from ._ast import Compare, Expr, Literal, Logic, Name, VarType
from ._binding import MISSING, BadValue, Binder, Participant
from ._closures import Env, Evaluator, compile_expression
from ._model import ConstraintSet, Variable
from ._runtime import RuntimeConstraint, input_reason, violation_reason

if TYPE_CHECKING:
    from ..models import AgentMessage


def _all_of(tests: Sequence[Evaluator]) -> Evaluator:
    """One closure that is true when every test is (short-circuit, no generator)."""
    if len(tests) == 1:
        return tests[0]
    first, rest = tests[0], _all_of(tests[1:])
    return lambda env: bool(first(env)) and bool(rest(env))


class _CompiledConstraint:
    __slots__ = (
        "all_pass",
        "assertions",
        "order",
        "others",
        "runtime",
        "selectors",
        "size",
        "tests",
        "when",
    )

    def __init__(self, runtime: RuntimeConstraint, order: int) -> None:
        self.runtime = runtime
        self.order = order
        self.size = runtime.size
        self.selectors = runtime.selector_slots
        self.others = runtime.other_slots
        constraint = runtime.constraint
        when = constraint.when
        self.when = compile_expression(when, runtime.slots) if when is not None else None
        self.assertions = constraint.assertions
        self.tests = tuple(compile_expression(a.expr, runtime.slots) for a in constraint.assertions)
        self.all_pass = _all_of(self.tests)

    def skip_when(self) -> None:
        """The dispatch index already proved ``when`` (it is exactly the indexed equality)."""
        self.when = None

    def run(
        self,
        message: AgentMessage,
        sender: Participant | None,
        recipient: Participant | None,
        env: Env | None = None,
    ) -> Reason | None:
        """The constraint's reason to deny ``message``, or None. ``env`` may come pre-bound."""
        if env is None:
            env = [None] * self.size
        bad: tuple[Variable, object] | None = None
        for slot, variable, bind in self.selectors:
            if env[slot] is not None:
                continue
            value = bind(message, sender, recipient)
            if value is MISSING:
                return None
            if type(value) is BadValue:
                if bad is None:
                    bad = (variable, value)
                continue
            env[slot] = value
        if bad is not None:
            return input_reason(self.runtime.constraint, *bad)
        return self.run_selected(message, sender, recipient, env)

    def run_selected(
        self,
        message: AgentMessage,
        sender: Participant | None,
        recipient: Participant | None,
        env: Env,
    ) -> Reason | None:
        """The rest of :meth:`run`, once every selector field is bound well-typed in ``env``."""
        when = self.when
        if when is not None and not when(env):
            return None
        for slot, variable, bind in self.others:
            value = bind(message, sender, recipient)
            if value is MISSING or type(value) is BadValue:
                return input_reason(self.runtime.constraint, variable, value)
            env[slot] = value
        if self.all_pass(env):
            return None
        return self._violation(env, message, sender, recipient)

    def _violation(
        self,
        env: Env,
        message: AgentMessage,
        sender: Participant | None,
        recipient: Participant | None,
    ) -> Reason:
        failed = [a for a, test in zip(self.assertions, self.tests, strict=True) if not test(env)]
        values = {name: env[slot] for name, slot in self.runtime.slots.items()}
        return violation_reason(self.runtime.constraint, failed, values, message, sender, recipient)


def _discriminator(when: Expr | None) -> tuple[str, str] | None:
    """``(variable, literal)`` of a ``name == "literal"`` conjunct of ``when``, if any."""
    if when is None:
        return None
    conjuncts = when.operands if isinstance(when, Logic) and when.op == "and" else (when,)
    for part in conjuncts:
        if not (isinstance(part, Compare) and part.ops == ("==",)):
            continue
        left, right = part.operands
        if isinstance(right, Name) and isinstance(left, Literal):
            left, right = right, left
        if (
            isinstance(left, Name)
            and left.type is VarType.STRING
            and isinstance(right, Literal)
            and isinstance(right.value, str)
        ):
            return left.name, right.value
    return None


class _DispatchGroup:
    """Constraints selected by the same string field, indexed by the literal they require."""

    __slots__ = ("bind", "members", "table")

    def __init__(self, bind: Binder) -> None:
        self.bind = bind
        self.members: list[tuple[_CompiledConstraint, int]] = []  # (constraint, slot)
        self.table: dict[str, list[tuple[_CompiledConstraint, int]]] = {}


class _TypeProgram:
    __slots__ = ("groups", "plain")

    def __init__(self, compiled: Sequence[_CompiledConstraint]) -> None:
        groups: dict[object, _DispatchGroup] = {}
        plain: list[_CompiledConstraint] = []
        for constraint in compiled:
            runtime = constraint.runtime
            found = _discriminator(runtime.constraint.when)
            if found is None or runtime.constraint.selector_names != (found[0],):
                # Other selector fields could still make a non-matching message a
                # constraint_input denial, so only single-field selectors are indexed.
                plain.append(constraint)
                continue
            name, literal = found
            variable = runtime.constraint.variables[name]
            key = (variable.sources, variable.default)
            slot = runtime.slots[name]
            group = groups.get(key)
            if group is None:
                binder = next(b for s, _v, b in runtime.selector_slots if s == slot)
                group = groups[key] = _DispatchGroup(binder)
            if isinstance(runtime.constraint.when, Compare):
                # The table lookup is the whole selector; indexed runs need not repeat it.
                indexed = _CompiledConstraint(runtime, constraint.order)
                indexed.skip_when()
            else:
                indexed = constraint
            group.members.append((constraint, slot))
            group.table.setdefault(literal, []).append((indexed, slot))
        self.groups = tuple(groups.values())
        self.plain = tuple(plain)

    def run(
        self,
        message: AgentMessage,
        sender: Participant | None,
        recipient: Participant | None,
    ) -> list[tuple[int, Reason]] | None:
        found: list[tuple[int, Reason]] | None = None
        for group in self.groups:
            value = group.bind(message, sender, recipient)
            if type(value) is str:
                for constraint, slot in group.table.get(value, ()):
                    env: Env = [None] * constraint.size
                    env[slot] = value
                    # The discriminator is the only selector field, and it is bound.
                    reason = constraint.run_selected(message, sender, recipient, env)
                    if reason is not None:
                        found = found or []
                        found.append((constraint.order, reason))
            elif value is not MISSING:
                # Not a string: the plain path words the constraint_input reasons.
                for constraint, _slot in group.members:
                    reason = constraint.run(message, sender, recipient)
                    if reason is not None:
                        found = found or []
                        found.append((constraint.order, reason))
        for constraint in self.plain:
            reason = constraint.run(message, sender, recipient)
            if reason is not None:
                found = found or []
                found.append((constraint.order, reason))
        return found


class CompiledChecker:
    """Checks messages against a :class:`ConstraintSet` with plain Python closures.

    ``check`` is synchronous: about a microsecond per constraint that selects the
    message; a message type no constraint selects costs one dict lookup.

    Example::

        checker = CompiledChecker(load_constraints(constitution))
        reasons = checker.check(message, sender, recipient)   # () when allowed
    """

    engine: Final = "compiled"

    def __init__(self, constraints: ConstraintSet) -> None:
        self.constraints = constraints
        compiled = {
            c.id: _CompiledConstraint(RuntimeConstraint(c), order)
            for order, c in enumerate(constraints)
        }
        self._programs: dict[MessageType, _TypeProgram] = {
            message_type: _TypeProgram(
                [compiled[c.id] for c in constraints.for_message_type(message_type)]
            )
            for message_type in constraints.message_types
        }
        self.checks_total = 0
        self.denied_total = 0

    def check(
        self,
        message: AgentMessage,
        sender: Participant | None,
        recipient: Participant | None,
    ) -> tuple[Reason, ...]:
        """The denial reasons for ``message`` (an empty tuple when every constraint holds)."""
        program = self._programs.get(message.message_type)
        if program is None:
            return ()
        self.checks_total += 1
        found = program.run(message, sender, recipient)
        if found is None:
            return ()
        self.denied_total += 1
        found.sort(key=lambda pair: pair[0])
        return tuple(reason for _order, reason in found)

    async def warm(self) -> None:
        """Nothing to prepare: everything was compiled in the constructor."""

    def stats(self) -> dict[str, int | float]:
        return {"checks_total": self.checks_total, "denied_total": self.denied_total}

    def close(self) -> None:
        """Nothing to release (the z3 engine owns a thread pool; this one does not)."""
