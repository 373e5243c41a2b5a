"""Type inference and checking for constraint expressions.

Rules (Int and Real mix freely; the result of mixing is Real):

* ``+ - *`` take numbers; ``/`` is exact division (Real) by a non-zero constant;
  ``%`` is Int modulo by a positive Int constant. Constant divisors keep the
  two engines in agreement: Python raises on ``x / 0`` where Z3 does not.
* ``< <= > >=`` compare numbers; ``== !=`` compare two numbers or two values
  of the same type; ``in [..]`` lists constants of the operand's type.
* ``and or not implies`` and conditions take Bool; ``if c then a else b``
  needs branches of one type; ``if c then a`` is ``c implies a``.

Strings support equality and membership only: Z3 and Python order strings
differently, and a rule that depends on that is a rule nobody can read.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from fractions import Fraction

from ._ast import (
    Arith,
    Compare,
    Conditional,
    Expr,
    Implies,
    Literal,
    Logic,
    Membership,
    Name,
    Unary,
    VarType,
)
from ._errors import ConstraintSyntaxError


class _Checker:
    def __init__(self, text: str, variables: Mapping[str, VarType]) -> None:
        self.text = text
        self.variables = variables

    def fail(self, expr: Expr, problem: str) -> ConstraintSyntaxError:
        return ConstraintSyntaxError(problem, expression=self.text, column=max(expr.column, 1))

    def numeric(self, expr: Expr, role: str) -> Expr:
        typed = self.check(expr)
        if typed.type is None or not typed.type.is_numeric:
            raise self.fail(expr, f"{role} must be a number (Int or Real), not {typed.type}")
        return typed

    def boolean(self, expr: Expr, role: str) -> Expr:
        typed = self.check(expr)
        if typed.type is not VarType.BOOL:
            raise self.fail(expr, f"{role} must be a Bool condition, not {typed.type}")
        return typed

    def check(self, expr: Expr) -> Expr:
        if isinstance(expr, Literal):
            return expr
        if isinstance(expr, Name):
            return self.name(expr)
        if isinstance(expr, Unary):
            if expr.op == "not":
                operand = self.boolean(expr.operand, "the operand of 'not'")
                return Unary("not", operand, expr.column, VarType.BOOL)
            operand = self.numeric(expr.operand, f"the operand of unary '{expr.op}'")
            return Unary(expr.op, operand, expr.column, operand.type)
        if isinstance(expr, Arith):
            return self.arith(expr)
        if isinstance(expr, Logic):
            operands = tuple(self.boolean(o, f"each operand of '{expr.op}'") for o in expr.operands)
            return Logic(expr.op, operands, expr.column, VarType.BOOL)
        if isinstance(expr, Implies):
            premise = self.boolean(expr.premise, "the premise of 'implies'")
            conclusion = self.boolean(expr.conclusion, "the conclusion of 'implies'")
            return Implies(premise, conclusion, expr.column, VarType.BOOL)
        if isinstance(expr, Compare):
            return self.compare(expr)
        if isinstance(expr, Membership):
            return self.membership(expr)
        return self.conditional(expr)

    def name(self, expr: Name) -> Name:
        kind = self.variables.get(expr.name)
        if kind is None:
            declared = sorted(self.variables)
            close = difflib.get_close_matches(expr.name, declared, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise self.fail(
                expr,
                f"unknown variable {expr.name!r}; declared variables are {declared}{hint} "
                "(declare it under 'vars' with a field and a type)",
            )
        return Name(expr.name, expr.column, kind)

    def arith(self, expr: Arith) -> Arith:
        left = self.numeric(expr.left, f"the left operand of '{expr.op}'")
        right = self.numeric(expr.right, f"the right operand of '{expr.op}'")
        if expr.op == "/":
            divisor = constant_value(right)
            if divisor is None or divisor == 0:
                raise self.fail(
                    expr.right,
                    "'/' must divide by a non-zero number constant (e.g. x / 100); "
                    "multiply the other side instead (a / b <= c is a <= c * b for b > 0)",
                )
            return Arith("/", left, right, expr.column, VarType.REAL)
        if expr.op == "%":
            divisor = constant_value(right)
            if (
                left.type is not VarType.INT
                or not isinstance(divisor, int)
                or isinstance(divisor, bool)
                or divisor <= 0
            ):
                raise self.fail(
                    expr,
                    "'%' takes an Int on the left and a positive Int constant on the right "
                    "(e.g. n % 2 == 0)",
                )
            return Arith("%", left, right, expr.column, VarType.INT)
        both_int = left.type is VarType.INT and right.type is VarType.INT
        return Arith(expr.op, left, right, expr.column, VarType.INT if both_int else VarType.REAL)

    def compare(self, expr: Compare) -> Compare:
        operands = tuple(self.check(o) for o in expr.operands)
        for op, left, right in zip(expr.ops, operands, operands[1:], strict=False):
            lt, rt = left.type, right.type
            if lt is None or rt is None:  # pragma: no cover - check() always types
                raise self.fail(expr, "internal: untyped operand")
            if op in ("==", "!="):
                if (lt.is_numeric and rt.is_numeric) or lt is rt:
                    continue
                raise self.fail(right, f"cannot compare {lt} with {rt} using '{op}'")
            if not (lt.is_numeric and rt.is_numeric):
                wrong = left if not lt.is_numeric else right
                raise self.fail(
                    wrong,
                    f"'{op}' compares numbers only, not {wrong.type}"
                    + (
                        "; strings support == != and in [..]"
                        if wrong.type is VarType.STRING
                        else ""
                    ),
                )
        return Compare(expr.ops, operands, expr.column, VarType.BOOL)

    def membership(self, expr: Membership) -> Membership:
        operand = self.check(expr.operand)
        kind = operand.type
        for item in expr.items:
            compatible = item.type is kind or (
                kind is not None and kind.is_numeric and item.type.is_numeric
            )
            if not compatible:
                raise self.fail(
                    item,
                    f"the list holds {item.type} value {item.value!r} but the value tested "
                    f"is {kind}",
                )
        return Membership(operand, expr.items, expr.negated, expr.column, VarType.BOOL)

    def conditional(self, expr: Conditional) -> Conditional:
        condition = self.boolean(expr.condition, "the condition of 'if'")
        then = self.check(expr.then)
        if expr.otherwise is None:
            if then.type is not VarType.BOOL:
                raise self.fail(
                    expr.then,
                    f"'if ... then' without 'else' needs a Bool after 'then', not {then.type}; "
                    "add an 'else' branch",
                )
            return Conditional(condition, then, None, expr.column, VarType.BOOL)
        otherwise = self.check(expr.otherwise)
        tt, ot = then.type, otherwise.type
        if tt is ot:
            result = tt
        elif tt is not None and ot is not None and tt.is_numeric and ot.is_numeric:
            result = VarType.REAL
        else:
            raise self.fail(
                expr.otherwise,
                f"the branches of if/then/else have different types ({tt} and {ot})",
            )
        return Conditional(condition, then, otherwise, expr.column, result)


def constant_value(expr: Expr) -> int | Fraction | None:
    """The number a constant expression denotes (a literal, or a signed literal), else None."""
    sign = 1
    while isinstance(expr, Unary) and expr.op in ("-", "+"):
        sign = -sign if expr.op == "-" else sign
        expr = expr.operand
    if isinstance(expr, Literal) and expr.type.is_numeric:
        value = expr.value
        if isinstance(value, int | Fraction) and not isinstance(value, bool):
            return sign * value
    return None


def check_types(
    expr: Expr, text: str, variables: Mapping[str, VarType], *, expect: VarType | None
) -> Expr:
    """Return ``expr`` with every node's type filled in.

    Args:
        expr: an untyped tree from :func:`parse_expression`.
        text: the source text (for error columns).
        variables: declared variable names and their types.
        expect: the type the whole expression must have (Bool for assertions), or None.

    Raises:
        ConstraintSyntaxError: an unknown name or a type error, at its column.
    """
    checker = _Checker(text, variables)
    typed = checker.check(expr)
    if expect is not None and typed.type is not expect:
        if expect is VarType.BOOL:
            raise checker.fail(
                expr,
                f"must be a condition (Bool), but it is {typed.type}; compare it with "
                "something, e.g. amount <= budget",
            )
        raise checker.fail(expr, f"must be {expect}, but it is {typed.type}")
    return typed
