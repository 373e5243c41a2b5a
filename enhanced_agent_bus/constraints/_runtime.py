"""The per-message part both engines share: binding values and wording the reasons.

Binding order is the contract that makes the engines agree on *inputs*:

1. bind the selector's variables; if any is missing the message is not
   selected, else if any is mistyped it is a ``constraint_input`` denial (a
   sender cannot dodge a constraint by sending ``"amount": "5000"``);
2. evaluate ``when`` (engine-specific); false means "not selected";
3. bind the remaining variables; a missing or mistyped one is ``constraint_input``;
4. evaluate the assertions (engine-specific); each false one is named in one
   ``constraint_violated`` reason for the constraint.

Reasons carry the values that explain them (the caller sees them in the
DeliveryResult); nothing here logs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from ..models import Reason
from ._binding import (
    MISSING,
    BadValue,
    Binder,
    Participant,
    format_value,
    make_binder,
    supplying_source,
)
from ._model import Assertion, Constraint, Variable

if TYPE_CHECKING:
    from ..models import AgentMessage

STAGE: Final = "constraints"
CODE_VIOLATED: Final = "constraint_violated"
CODE_INPUT: Final = "constraint_input"
CODE_ERROR: Final = "constraint_error"

#: (slot, variable, binder)
BoundSlot = tuple[int, Variable, Binder]


class RuntimeConstraint:
    """A constraint prepared for per-message checks: slots and binders in a fixed order."""

    __slots__ = ("constraint", "other_slots", "selector_slots", "size", "slots")

    def __init__(self, constraint: Constraint) -> None:
        self.constraint = constraint
        selector = [n for n in constraint.variables if n in constraint.selector_names]
        others = [n for n in constraint.variables if n not in constraint.selector_names]
        ordered = selector + others
        self.slots = {name: index for index, name in enumerate(ordered)}
        self.size = len(ordered)

        def prepared(names: Sequence[str]) -> tuple[BoundSlot, ...]:
            out = []
            for name in names:
                var = constraint.variables[name]
                out.append((self.slots[name], var, make_binder(var.sources, var.type, var.default)))
            return tuple(out)

        self.selector_slots = prepared(selector)
        self.other_slots = prepared(others)


def input_reason(constraint: Constraint, variable: Variable, value: object) -> Reason:
    """``constraint_input``: a required field is missing or has the wrong type."""
    if value is MISSING:
        problem = "the field is missing"
        advice = "send the field, or give the variable a default in the constraint"
    else:
        problem = value.problem if isinstance(value, BadValue) else f"unusable value {value!r}"
        advice = f"send a {variable.type} value"
    return Reason(
        STAGE,
        CODE_INPUT,
        f"constraint {constraint.id!r} cannot check this message: variable {variable.name!r} "
        f"({variable.source_text}, {variable.type}): {problem}; {advice}.",
    )


def violation_reason(
    constraint: Constraint,
    failed: Sequence[Assertion],
    values: dict[str, object],
    message: AgentMessage,
    sender: Participant | None,
    recipient: Participant | None,
) -> Reason:
    """``constraint_violated``: names the constraint, each false assertion and its values."""
    parts = []
    for assertion in failed:
        shown = []
        for name in assertion.names:
            variable = constraint.variables[name]
            origin = supplying_source(variable.sources, message, sender, recipient)
            where = origin.text if origin is not None else "default"
            shown.append(f"{name}={format_value(values[name])} ({where})")
        label = f"{assertion.explain}: " if assertion.explain else ""
        with_values = f" with {', '.join(shown)}" if shown else ""
        parts.append(f"{label}`{assertion.text}` is false{with_values}")
    return Reason(
        STAGE,
        CODE_VIOLATED,
        f"constraint {constraint.id!r} violated: {'; '.join(parts)}. ({constraint.description})",
    )


def error_reason(problem: str) -> Reason:
    """``constraint_error``: the engine could not decide; the message is denied (fail closed)."""
    return Reason(STAGE, CODE_ERROR, f"{problem}; the message was denied (fail closed).")
