"""The constraint AST turned into a tree of Python closures (the ``compiled`` engine's core).

No text is ever evaluated: each node becomes a small closure over its
children, built once at load.

Numbers mean what they say, exactly, in both engines: an Int is a Python
``int``; a Real is an exact rational, where a JSON float stands for the
decimal it is written as (the shortest decimal that reads back as the same
double, which is what JSON encoders write), so ``amount <= 1000.1`` holds for
``amount: 1000.1``. Z3 reasons over the same rationals. Native float and int
comparisons are used wherever they provably give the same answer (same-type
operands, floats against constants that are their own shortest decimal,
integers below 2**53), so the common checks never touch ``Fraction``; Real
arithmetic on floats switches to ``Fraction``. Expressions are total: ``/``
divides by non-zero constants and ``%`` by positive ones only (the type
checker ensures it), so evaluation cannot raise.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Final

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
from ._typecheck import constant_value

Env = list[Any]
Evaluator = Callable[[Env], Any]

#: Integers of smaller magnitude are doubles whose shortest decimal is the integer itself.
_NATIVE_INT: Final = 2**53


def exact(value: Any) -> Any:
    """The exact number a bound value denotes (floats: their shortest decimal)."""
    if type(value) is float:
        return Fraction(repr(value))
    return value


def _native_constant(value: int | Fraction) -> int | float | None:
    """A native number that compares like ``value`` against floats and small ints, if any."""
    if isinstance(value, int):
        return value if -_NATIVE_INT < value < _NATIVE_INT else None
    if value.denominator == 1 and -_NATIVE_INT < value.numerator < _NATIVE_INT:
        return value.numerator
    as_float = float(value)
    # The shortest-decimal map is strictly increasing over doubles, so comparing a
    # double with ``as_float`` compares their decimals, provided ``as_float`` reads
    # back as exactly ``value``.
    return as_float if Fraction(repr(as_float)) == value else None


def _exact_literal(literal: Literal) -> Any:
    value = literal.value
    if isinstance(value, Fraction) and value.denominator == 1:
        return value.numerator
    return value


def _is_native(value: Any) -> bool:
    kind = type(value)
    return kind is float or (kind is int and -_NATIVE_INT < value < _NATIVE_INT)


def _compare_values(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if type(a) is type(b) or (_is_native(a) and _is_native(b)):
            return test(a, b)
        return test(exact(a), exact(b))

    return compare


def _compile_arith(expr: Arith, slots: dict[str, int]) -> Evaluator:
    left = compile_expression(expr.left, slots)
    right = compile_expression(expr.right, slots)
    op = expr.op
    if op == "/":
        divisor = constant_value(expr.right)
        if divisor is None:  # pragma: no cover - the type checker guarantees a constant
            raise ValueError("division by a non-constant")
        exact_divisor = Fraction(divisor)
        return lambda env: Fraction(exact(left(env))) / exact_divisor
    if op == "%":
        modulus = constant_value(expr.right)
        return lambda env: left(env) % modulus
    python_op = {"+": operator.add, "-": operator.sub, "*": operator.mul}[op]
    if expr.type is VarType.INT:
        return lambda env: python_op(left(env), right(env))

    def real(env: Env) -> Any:
        a = left(env)
        b = right(env)
        if type(a) is float or type(b) is float:
            return python_op(exact(a), exact(b))
        return python_op(a, b)

    return real


def _slot_of(expr: Expr, slots: dict[str, int]) -> int | None:
    return slots[expr.name] if isinstance(expr, Name) else None


def _compile_exact_pair(
    test: Callable[[Any, Any], bool], left_expr: Expr, right_expr: Expr, slots: dict[str, int]
) -> Evaluator:
    """Strings, Bools, and Int-only comparisons: the Python values are exact already."""
    i = _slot_of(left_expr, slots)
    if isinstance(right_expr, Literal):
        constant = _exact_literal(right_expr)
        if i is not None:
            return lambda env: test(env[i], constant)
        left = compile_expression(left_expr, slots)
        return lambda env: test(left(env), constant)
    j = _slot_of(right_expr, slots)
    if i is not None and j is not None:
        return lambda env: test(env[i], env[j])
    left = compile_expression(left_expr, slots)
    right = compile_expression(right_expr, slots)
    return lambda env: test(left(env), right(env))


def _compile_pair(op: str, left_expr: Expr, right_expr: Expr, slots: dict[str, int]) -> Evaluator:
    test: Callable[[Any, Any], bool] = COMPARE_OPERATORS[op]
    numeric = left_expr.type is not None and left_expr.type.is_numeric
    if not numeric or (left_expr.type is VarType.INT and right_expr.type is VarType.INT):
        return _compile_exact_pair(test, left_expr, right_expr, slots)
    # The branches below inline the native fast path; they are the hot path of most checks.
    left = compile_expression(left_expr, slots)
    i = _slot_of(left_expr, slots)
    if isinstance(right_expr, Literal):
        exact_constant = _exact_literal(right_expr)
        native = _native_constant(exact_constant)
        if native is None:
            return lambda env: test(exact(left(env)), exact_constant)
        if i is not None:

            def slot_against_constant(env: Env) -> bool:
                a = env[i]
                kind = type(a)
                if kind is float or (kind is int and -_NATIVE_INT < a < _NATIVE_INT):
                    return test(a, native)
                return test(exact(a), exact_constant)

            return slot_against_constant

        def against_constant(env: Env) -> bool:
            a = left(env)
            kind = type(a)
            if kind is float or (kind is int and -_NATIVE_INT < a < _NATIVE_INT):
                return test(a, native)
            return test(exact(a), exact_constant)

        return against_constant
    j = _slot_of(right_expr, slots)
    if i is not None and j is not None:

        def slots_pair(env: Env) -> bool:
            a = env[i]
            b = env[j]
            ta = type(a)
            tb = type(b)
            if ta is tb or (
                (ta is float or (ta is int and -_NATIVE_INT < a < _NATIVE_INT))
                and (tb is float or (tb is int and -_NATIVE_INT < b < _NATIVE_INT))
            ):
                return test(a, b)
            return test(exact(a), exact(b))

        return slots_pair
    right = compile_expression(right_expr, slots)
    compare = _compare_values(test)
    return lambda env: compare(left(env), right(env))


def _compile_compare(expr: Compare, slots: dict[str, int]) -> Evaluator:
    if len(expr.ops) == 1:
        return _compile_pair(expr.ops[0], expr.operands[0], expr.operands[1], slots)
    operands = [compile_expression(o, slots) for o in expr.operands]
    tests = [_compare_values(COMPARE_OPERATORS[o]) for o in expr.ops]

    def chain(env: Env) -> bool:
        previous = operands[0](env)
        for test, operand in zip(tests, operands[1:], strict=True):
            current = operand(env)
            if not test(previous, current):
                return False
            previous = current
        return True

    return chain


def _compile_logic(expr: Logic, slots: dict[str, int]) -> Evaluator:
    parts = tuple(compile_expression(o, slots) for o in expr.operands)
    if expr.op == "and":
        if len(parts) == 2:
            first, second = parts
            return lambda env: bool(first(env)) and bool(second(env))
        return lambda env: all(part(env) for part in parts)
    if len(parts) == 2:
        first, second = parts
        return lambda env: bool(first(env)) or bool(second(env))
    return lambda env: any(part(env) for part in parts)


def _compile_membership(expr: Membership, slots: dict[str, int]) -> Evaluator:
    operand = compile_expression(expr.operand, slots)
    # ints, Fractions and decimals of floats hash alike when equal, so one set serves.
    members = frozenset(_exact_literal(item) for item in expr.items)
    negated = expr.negated
    if expr.operand.type is not None and expr.operand.type.is_numeric:
        return lambda env: (exact(operand(env)) in members) is not negated
    i = _slot_of(expr.operand, slots)
    if i is not None:
        return lambda env: (env[i] in members) is not negated
    return lambda env: (operand(env) in members) is not negated


def compile_expression(expr: Expr, slots: dict[str, int]) -> Evaluator:
    """A closure computing ``expr`` (typed) from an environment list indexed by ``slots``."""
    if isinstance(expr, Literal):
        value = _exact_literal(expr)
        return lambda env: value
    if isinstance(expr, Name):
        return operator.itemgetter(slots[expr.name])
    if isinstance(expr, Unary):
        operand = compile_expression(expr.operand, slots)
        if expr.op == "not":
            return lambda env: not operand(env)
        if expr.op == "-":
            return lambda env: -operand(env)
        return operand
    if isinstance(expr, Arith):
        return _compile_arith(expr, slots)
    if isinstance(expr, Logic):
        return _compile_logic(expr, slots)
    if isinstance(expr, Implies):
        premise = compile_expression(expr.premise, slots)
        conclusion = compile_expression(expr.conclusion, slots)
        return lambda env: (not premise(env)) or bool(conclusion(env))
    if isinstance(expr, Compare):
        return _compile_compare(expr, slots)
    if isinstance(expr, Membership):
        return _compile_membership(expr, slots)
    condition = compile_expression(expr.condition, slots)
    then = compile_expression(expr.then, slots)
    if expr.otherwise is None:
        return lambda env: (not condition(env)) or bool(then(env))
    otherwise = compile_expression(expr.otherwise, slots)
    return lambda env: then(env) if condition(env) else otherwise(env)
