"""The constraint AST: one tree shared by the parser, both engines, and Z3 verification.

The parser builds it with ``type=None`` on every node but literals; the type
checker returns a copy with each node's :class:`VarType` filled in. Columns
are 1-based offsets into the expression text, kept for error messages only:
two trees that differ only in columns or inferred types compare equal.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any, Final, TypeAlias
from typing import Literal as TypingLiteral


class VarType(StrEnum):
    """The four value types of the constraint language (Z3 sorts Int, Real, Bool, String)."""

    INT = "Int"
    REAL = "Real"
    BOOL = "Bool"
    STRING = "String"

    @property
    def is_numeric(self) -> bool:
        return self is VarType.INT or self is VarType.REAL


#: A literal's value: ``int`` for Int, an exact ``Fraction`` for Real (``0.1`` is 1/10).
LiteralValue: TypeAlias = int | Fraction | bool | str

ArithOp = TypingLiteral["+", "-", "*", "/", "%"]
CompareOp = TypingLiteral["==", "!=", "<", "<=", ">", ">="]
UnaryOp = TypingLiteral["not", "-", "+"]
LogicOp = TypingLiteral["and", "or"]

#: What each comparison operator means, for the parser, the compiled engine and the Z3
#: translation alike (``operator.lt`` and friends apply to Python values and Z3 terms).
COMPARE_OPERATORS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class Literal:
    value: LiteralValue
    type: VarType
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    column: int = field(default=0, compare=False)
    type: VarType | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Unary:
    op: UnaryOp
    operand: Expr
    column: int = field(default=0, compare=False)
    type: VarType | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Arith:
    op: ArithOp
    left: Expr
    right: Expr
    column: int = field(default=0, compare=False)
    type: VarType | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Logic:
    """``a and b and c`` as one node, so long conjunctions do not nest deeply."""

    op: LogicOp
    operands: tuple[Expr, ...]
    column: int = field(default=0, compare=False)
    type: VarType | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Implies:
    premise: Expr
    conclusion: Expr
    column: int = field(default=0, compare=False)
    type: VarType | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Compare:
    """A comparison chain: ``0 <= x < 10`` is ops ``("<=", "<")`` over three operands."""

    ops: tuple[CompareOp, ...]
    operands: tuple[Expr, ...]
    column: int = field(default=0, compare=False)
    type: VarType | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Membership:
    """``x in [..]`` / ``x not in [..]`` against a list of literals."""

    operand: Expr
    items: tuple[Literal, ...]
    negated: bool
    column: int = field(default=0, compare=False)
    type: VarType | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Conditional:
    """``if c then a else b``; without ``else`` it is the Boolean ``c implies a``."""

    condition: Expr
    then: Expr
    otherwise: Expr | None
    column: int = field(default=0, compare=False)
    type: VarType | None = field(default=None, compare=False)


Expr: TypeAlias = (
    Literal | Name | Unary | Arith | Logic | Implies | Compare | Membership | Conditional
)

KEYWORDS: Final = frozenset(
    {"and", "or", "not", "implies", "in", "if", "then", "else", "true", "false", "True", "False"}
)


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``expr``."""
    if isinstance(expr, Literal | Name):
        return ()
    if isinstance(expr, Unary):
        return (expr.operand,)
    if isinstance(expr, Arith):
        return (expr.left, expr.right)
    if isinstance(expr, Logic | Compare):
        return expr.operands
    if isinstance(expr, Implies):
        return (expr.premise, expr.conclusion)
    if isinstance(expr, Membership):
        return (expr.operand, *expr.items)
    if expr.otherwise is None:
        return (expr.condition, expr.then)
    return (expr.condition, expr.then, expr.otherwise)


def walk(expr: Expr) -> Iterator[Expr]:
    """Every node of ``expr``, parents before children (iterative: trees may be deep)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def names_in(expr: Expr) -> tuple[str, ...]:
    """The variable names ``expr`` reads, in first-use order."""
    seen: dict[str, None] = {}
    for node in walk(expr):
        if isinstance(node, Name):
            seen.setdefault(node.name, None)
    return tuple(seen)


def depth_of(expr: Expr) -> int:
    """Height of the tree (a literal or name is 1)."""
    best = 0
    stack: list[tuple[Expr, int]] = [(expr, 1)]
    while stack:
        node, level = stack.pop()
        best = max(best, level)
        stack.extend((child, level + 1) for child in children(node))
    return best


# ── unparse ──────────────────────────────────────────────────────────────────

_PRECEDENCE: Final = {
    "conditional": 0,
    "implies": 1,
    "or": 2,
    "and": 3,
    "not": 4,
    "compare": 5,
    "additive": 6,
    "multiplicative": 7,
    "unary": 8,
    "atom": 9,
}


def _precedence(expr: Expr) -> int:
    if isinstance(expr, Conditional):
        return _PRECEDENCE["conditional"]
    if isinstance(expr, Implies):
        return _PRECEDENCE["implies"]
    if isinstance(expr, Logic):
        return _PRECEDENCE[expr.op]
    if isinstance(expr, Unary):
        return _PRECEDENCE["not"] if expr.op == "not" else _PRECEDENCE["unary"]
    if isinstance(expr, Compare | Membership):
        return _PRECEDENCE["compare"]
    if isinstance(expr, Arith):
        return _PRECEDENCE["additive" if expr.op in ("+", "-") else "multiplicative"]
    # A negative number prints with a sign, so it binds like a unary minus.
    if (
        isinstance(expr, Literal)
        and isinstance(expr.value, int | Fraction)
        and not isinstance(expr.value, bool)
        and expr.value < 0
    ):
        return _PRECEDENCE["unary"]
    return _PRECEDENCE["atom"]


def format_decimal(value: Fraction) -> str:
    """The exact decimal spelling of a Real literal (its denominator is 2^a * 5^b).

    Raises:
        ValueError: the fraction has no finite decimal expansion.
    """
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        raise ValueError(f"{value} has no finite decimal expansion")
    places = max(twos, fives, 1)
    scaled = abs(value.numerator) * 10**places // value.denominator
    digits = str(scaled).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


_STRING_ESCAPES: Final = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def format_string(value: str) -> str:
    """A double-quoted string literal the lexer reads back to ``value``."""
    out = []
    for ch in value:
        if ch in _STRING_ESCAPES:
            out.append(_STRING_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def format_literal(value: LiteralValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Fraction):
        return format_decimal(value)
    return format_string(value)


def unparse(expr: Expr) -> str:
    """Canonical source text for ``expr``; parsing it gives an equal tree."""
    if isinstance(expr, Literal):
        return format_literal(expr.value)
    if isinstance(expr, Name):
        return expr.name
    own = _precedence(expr)

    def wrap(child: Expr, minimum: int) -> str:
        text = unparse(child)
        return f"({text})" if _precedence(child) < minimum else text

    if isinstance(expr, Unary):
        if expr.op == "not":
            return f"not {wrap(expr.operand, own)}"
        if isinstance(expr.operand, Literal) and expr.operand.type.is_numeric:
            # The parser folds "-5" into the literal -5; "-(5)" stays a unary minus.
            return f"{expr.op}({unparse(expr.operand)})"
        return f"{expr.op}{wrap(expr.operand, own)}"
    if isinstance(expr, Arith):
        # Left-associative: the right operand needs strictly higher precedence.
        return f"{wrap(expr.left, own)} {expr.op} {wrap(expr.right, own + 1)}"
    if isinstance(expr, Logic):
        return f" {expr.op} ".join(wrap(o, own + 1) for o in expr.operands)
    if isinstance(expr, Implies):
        # Right-associative: the premise needs strictly higher precedence.
        return f"{wrap(expr.premise, own + 1)} implies {wrap(expr.conclusion, own)}"
    if isinstance(expr, Compare):
        parts = [wrap(expr.operands[0], own + 1)]
        for op, operand in zip(expr.ops, expr.operands[1:], strict=True):
            parts.append(f"{op} {wrap(operand, own + 1)}")
        return " ".join(parts)
    if isinstance(expr, Membership):
        items = ", ".join(format_literal(i.value) for i in expr.items)
        keyword = "not in" if expr.negated else "in"
        return f"{wrap(expr.operand, own + 1)} {keyword} [{items}]"
    condition = wrap(expr.condition, own + 1)
    then = wrap(expr.then, own + 1)
    if expr.otherwise is None:
        return f"if {condition} then {then}"
    return f"if {condition} then {then} else {wrap(expr.otherwise, own)}"
