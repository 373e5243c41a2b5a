"""A message as Z3 unknowns: the shared encoding of static verification and plan checks.

Variables are identified by *where they read from* (their field sources and
type), not by their names, so ``amount`` in one constraint and ``spend`` in
another are the same unknown when both read ``payload.amount``. An Int and a
Real bound to the same fields are linked (``ToReal(i) == r``). The message type
is an unknown index into :class:`MessageType`; envelope fields get their
domains (a priority is one of the four, a payload is at least ``{}``, 2 bytes).

Defaults are not modelled: a variable ranges over every value of its type,
which includes its default, so a proof over the unknowns covers messages that
omit the field too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Final

import z3

from ..models import MessageType, Priority
from ._ast import VarType, format_decimal
from ._model import Constraint, Variable
from ._z3terms import Translator, constant, decode_value, string_value

MESSAGE_TYPES: Final = tuple(MessageType)
_MIN_PAYLOAD_BYTES: Final = 2  # the encoding of {}


def format_witness_value(value: object) -> str:
    if value is None:
        return "(any)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        try:
            return format_decimal(value)
        except ValueError:
            return f"{value.numerator}/{value.denominator} (~{float(value):.6g})"
    if isinstance(value, str):
        return repr(value)
    return str(value)


class SymbolicMessage:
    """Z3 unknowns for one message, with the axioms that tie them together."""

    def __init__(self, ctx: z3.Context, prefix: str = "") -> None:
        self.ctx = ctx
        self.prefix = prefix
        self.message_type = z3.Int(f"{prefix}message_type", ctx)
        self.axioms: list[z3.BoolRef] = [
            self.message_type >= 0,
            self.message_type < len(MESSAGE_TYPES),
        ]
        self._terms: dict[tuple[tuple[str, ...], VarType], z3.ExprRef] = {}
        self._labels: dict[tuple[tuple[str, ...], VarType], str] = {}

    def is_type(self, message_type: MessageType) -> z3.BoolRef:
        return self.message_type == MESSAGE_TYPES.index(message_type)

    def term(self, variable: Variable) -> z3.ExprRef:
        key = (tuple(s.text for s in variable.sources), variable.type)
        found = self._terms.get(key)
        if found is not None:
            return found
        label = variable.source_text
        term = constant(f"{self.prefix}{label}:{variable.type}", variable.type, self.ctx)
        self._terms[key] = term
        self._labels[key] = label
        self._add_axioms(key, term)
        return term

    def _add_axioms(self, key: tuple[tuple[str, ...], VarType], term: z3.ExprRef) -> None:
        sources, kind = key
        partner_kind = {VarType.INT: VarType.REAL, VarType.REAL: VarType.INT}.get(kind)
        partner = self._terms.get((sources, partner_kind)) if partner_kind is not None else None
        if partner is not None:
            as_int, as_real = (term, partner) if kind is VarType.INT else (partner, term)
            self.axioms.append(z3.ToReal(as_int) == as_real)
        if sources == ("message.message_type",) and kind is VarType.STRING:
            for index, message_type in enumerate(MESSAGE_TYPES):
                self.axioms.append(
                    z3.Implies(
                        self.message_type == index,
                        term == string_value(message_type.value, self.ctx),
                        self.ctx,
                    )
                )
        elif sources == ("message.priority",) and kind is VarType.STRING:
            self.axioms.append(z3.Or(*(term == string_value(p.value, self.ctx) for p in Priority)))
        elif sources == ("message.payload_size_bytes",):
            self.axioms.append(term >= _MIN_PAYLOAD_BYTES)

    def translator(self, constraint: Constraint) -> Translator:
        return Translator(self.ctx, lambda name: self.term(constraint.variables[name]))

    def selects(self, constraint: Constraint) -> z3.BoolRef:
        typed = z3.Or(*(self.is_type(t) for t in MESSAGE_TYPES if t in constraint.message_types))
        if constraint.when is None:
            return typed
        return z3.And(typed, self.translator(constraint).translate(constraint.when))

    def assertion(self, constraint: Constraint, index: int) -> z3.BoolRef:
        return self.translator(constraint).translate(constraint.assertions[index].expr)

    def holds(self, constraint: Constraint) -> z3.BoolRef:
        parts = [self.assertion(constraint, i) for i in range(len(constraint.assertions))]
        return parts[0] if len(parts) == 1 else z3.And(*parts)

    def permits(self, constraint: Constraint) -> z3.BoolRef:
        return z3.Implies(self.selects(constraint), self.holds(constraint), self.ctx)

    def witness(self, model: z3.ModelRef, constraints: Iterable[Constraint]) -> dict[str, str]:
        """The model's values of the constraints' fields, e.g. ``{"payload.amount": "12000"}``."""
        shown: dict[str, str] = {}
        type_value = model.eval(self.message_type, model_completion=True)
        if z3.is_int_value(type_value) and 0 <= type_value.as_long() < len(MESSAGE_TYPES):
            shown["message_type"] = MESSAGE_TYPES[type_value.as_long()].value
        for constraint in constraints:
            for variable in constraint.variables.values():
                term = self.term(variable)
                value = decode_value(model.eval(term, model_completion=True))
                shown[variable.source_text] = format_witness_value(value)
        return shown


def lookup_data(data: Mapping[str, object], path: str) -> object:
    """Follow a dotted path into the data document; raises KeyError naming the missing part."""
    node: object = data
    walked: list[str] = []
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(".".join([*walked, part]))
        node = node[part]
        walked.append(part)
    return node
