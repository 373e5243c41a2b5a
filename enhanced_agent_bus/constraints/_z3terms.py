"""The constraint AST as Z3 terms, and Python values as Z3 values (and back).

Every function takes an explicit ``z3.Context``: Z3 contexts are not
thread-safe, so each thread (engine worker, load-time verification, plan
check) owns its own and nothing touches Z3's global context.

Strings are encoded injectively as the UTF-8 bytes of the text, one Z3
character per byte, written with ``\\u{..}`` escapes for anything outside
printable ASCII and for the backslash. ``z3.StringVal`` is not used because it
passes backslashes through, so the Python strings ``"\\u{41}"`` and ``"A"``
would be the same Z3 string, and it cannot represent characters above
U+2FFFF. Only equality and membership are defined on strings, and both
survive an injective encoding.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import z3

from ._ast import (
    COMPARE_OPERATORS,
    Arith,
    Compare,
    Expr,
    Implies,
    Literal,
    Logic,
    Membership,
    Name,
    Unary,
    VarType,
)
from ._closures import exact
from ._typecheck import constant_value


def sort_of(var_type: VarType, ctx: z3.Context) -> z3.SortRef:
    if var_type is VarType.INT:
        return z3.IntSort(ctx)
    if var_type is VarType.REAL:
        return z3.RealSort(ctx)
    if var_type is VarType.BOOL:
        return z3.BoolSort(ctx)
    return z3.StringSort(ctx)


def constant(name: str, var_type: VarType, ctx: z3.Context) -> z3.ExprRef:
    """A fresh Z3 constant of the variable's sort."""
    return z3.Const(name, sort_of(var_type, ctx))


def string_value(text: str, ctx: z3.Context) -> z3.SeqRef:
    """The injective Z3 encoding of ``text`` (see the module docstring)."""
    data = text.encode("utf-8", "surrogatepass")
    escaped = "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\u{{{b:x}}}" for b in data)
    return z3.SeqRef(z3.Z3_mk_string(ctx.ref(), escaped), ctx)


def rational_value(value: int | Fraction, ctx: z3.Context) -> z3.RatNumRef:
    exact_value = Fraction(value)
    return z3.RealVal(f"{exact_value.numerator}/{exact_value.denominator}", ctx)


def value_term(var_type: VarType, value: Any, ctx: z3.Context) -> z3.ExprRef:
    """A bound Python value as a Z3 value of ``var_type`` (floats mean their shortest decimal)."""
    if var_type is VarType.INT:
        return z3.IntVal(int(value), ctx)
    if var_type is VarType.REAL:
        return rational_value(exact(value), ctx)
    if var_type is VarType.BOOL:
        return z3.BoolVal(bool(value), ctx)
    return string_value(str(value), ctx)


def decode_value(term: z3.ExprRef) -> int | Fraction | bool | str | None:
    """A model value back as Python (None when Z3 left it symbolic)."""
    if z3.is_true(term):
        return True
    if z3.is_false(term):
        return False
    if z3.is_int_value(term):
        return int(term.as_long())
    if z3.is_rational_value(term):
        return Fraction(int(term.numerator_as_long()), int(term.denominator_as_long()))
    if z3.is_string_value(term):
        ctx = term.ctx
        length = z3.Z3_get_string_length(ctx.ref(), term.as_ast())
        codes = (ctypes.c_uint * length)()
        z3.Z3_get_string_contents(ctx.ref(), term.as_ast(), length, codes)
        points = list(codes)
        if all(code < 0x100 for code in points):
            return bytes(points).decode("utf-8", "replace")
        return "".join(chr(code) for code in points)
    if z3.is_algebraic_value(term):
        approx = term.approx(20)
        return Fraction(int(approx.numerator_as_long()), int(approx.denominator_as_long()))
    return None


def _as_real(term: z3.ExprRef, ctx: z3.Context) -> z3.ArithRef:
    if z3.is_int(term):
        return z3.ToReal(term)
    return term


class Translator:
    """Turns typed AST nodes into Z3 terms, reading variables through ``variable``."""

    def __init__(self, ctx: z3.Context, variable: Callable[[str], z3.ExprRef]) -> None:
        self.ctx = ctx
        self.variable = variable

    def literal(self, node: Literal) -> z3.ExprRef:
        return value_term(node.type, node.value, self.ctx)

    def numeric_pair(self, left: z3.ExprRef, right: z3.ExprRef) -> tuple[z3.ExprRef, z3.ExprRef]:
        if z3.is_int(left) and z3.is_int(right):
            return left, right
        return _as_real(left, self.ctx), _as_real(right, self.ctx)

    def translate(self, expr: Expr) -> z3.ExprRef:
        ctx = self.ctx
        if isinstance(expr, Literal):
            return self.literal(expr)
        if isinstance(expr, Name):
            return self.variable(expr.name)
        if isinstance(expr, Unary):
            operand = self.translate(expr.operand)
            if expr.op == "not":
                return z3.Not(operand, ctx)
            return -operand if expr.op == "-" else operand
        if isinstance(expr, Arith):
            return self.arith(expr)
        if isinstance(expr, Logic):
            parts = [self.translate(o) for o in expr.operands]
            return z3.And(*parts) if expr.op == "and" else z3.Or(*parts)
        if isinstance(expr, Implies):
            return z3.Implies(self.translate(expr.premise), self.translate(expr.conclusion), ctx)
        if isinstance(expr, Compare):
            return self.compare(expr)
        if isinstance(expr, Membership):
            operand = self.translate(expr.operand)
            options = [self.equal(operand, self.literal(item)) for item in expr.items]
            found = z3.Or(*options) if options else z3.BoolVal(False, ctx)
            return z3.Not(found, ctx) if expr.negated else found
        condition = self.translate(expr.condition)
        then = self.translate(expr.then)
        if expr.otherwise is None:
            return z3.Implies(condition, then, ctx)
        otherwise = self.translate(expr.otherwise)
        if expr.type is not None and expr.type.is_numeric:
            then, otherwise = self.numeric_pair(then, otherwise)
        return z3.If(condition, then, otherwise, ctx)

    def arith(self, expr: Arith) -> z3.ExprRef:
        left = self.translate(expr.left)
        if expr.op == "/":
            divisor = constant_value(expr.right)
            if divisor is None:  # pragma: no cover - the type checker guarantees a constant
                raise ValueError("division by a non-constant")
            return _as_real(left, self.ctx) / rational_value(divisor, self.ctx)
        right = self.translate(expr.right)
        if expr.op == "%":
            return left % right
        left, right = self.numeric_pair(left, right)
        if expr.op == "+":
            return left + right
        if expr.op == "-":
            return left - right
        return left * right

    def equal(self, left: z3.ExprRef, right: z3.ExprRef) -> z3.BoolRef:
        if z3.is_arith(left) and z3.is_arith(right):
            left, right = self.numeric_pair(left, right)
        return left == right

    def compare(self, expr: Compare) -> z3.ExprRef:
        terms = [self.translate(o) for o in expr.operands]
        links = []
        for op, left, right in zip(expr.ops, terms, terms[1:], strict=False):
            if op == "==":
                links.append(self.equal(left, right))
                continue
            if op == "!=":
                links.append(z3.Not(self.equal(left, right), self.ctx))
                continue
            a, b = self.numeric_pair(left, right)
            links.append(COMPARE_OPERATORS[op](a, b))
        return links[0] if len(links) == 1 else z3.And(*links)
