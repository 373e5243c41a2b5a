"""The whitelist parser: what it accepts, what it rejects, and how it says so."""

from __future__ import annotations

from fractions import Fraction

import pytest

from enhanced_agent_bus.constraints import (
    ConstraintSyntaxError,
    VarType,
    check_types,
    parse_expression,
    unparse,
)
from enhanced_agent_bus.constraints._ast import (
    Arith,
    Compare,
    Conditional,
    Implies,
    Literal,
    Logic,
    Membership,
    Name,
    Unary,
)
from enhanced_agent_bus.errors import ConfigurationError


def test_precedence_and_associativity() -> None:
    expr = parse_expression("a + b * c <= d and not e or f implies g implies h")
    assert expr == Implies(
        Logic(
            "or",
            (
                Logic(
                    "and",
                    (
                        Compare(
                            ("<=",),
                            (Arith("+", Name("a"), Arith("*", Name("b"), Name("c"))), Name("d")),
                        ),
                        Unary("not", Name("e")),
                    ),
                ),
                Name("f"),
            ),
        ),
        Implies(Name("g"), Name("h")),
    )


def test_subtraction_is_left_associative_and_minus_literals_fold() -> None:
    assert parse_expression("a - b - c") == Arith("-", Arith("-", Name("a"), Name("b")), Name("c"))
    assert parse_expression("-5") == Literal(-5, VarType.INT)
    assert parse_expression("-(5)") == Unary("-", Literal(5, VarType.INT))
    assert parse_expression("x / -2") == Arith("/", Name("x"), Literal(-2, VarType.INT))


def test_literals_are_exact() -> None:
    assert parse_expression("0.1") == Literal(Fraction(1, 10), VarType.REAL)
    assert parse_expression("1_000") == Literal(1000, VarType.INT)
    assert parse_expression("2.5e3") == Literal(Fraction(2500), VarType.REAL)
    assert parse_expression("true") == Literal(True, VarType.BOOL)
    assert parse_expression("False") == Literal(False, VarType.BOOL)
    assert parse_expression(r'"a\"b\\c\u00e9"') == Literal('a"b\\cé', VarType.STRING)
    assert parse_expression("'single'") == Literal("single", VarType.STRING)


def test_chains_membership_and_conditionals() -> None:
    assert parse_expression("0 <= x < 10") == Compare(
        ("<=", "<"), (Literal(0, VarType.INT), Name("x"), Literal(10, VarType.INT))
    )
    assert parse_expression('env not in ["dev", "prod",]') == Membership(
        Name("env"), (Literal("dev", VarType.STRING), Literal("prod", VarType.STRING)), True
    )
    assert parse_expression("if a then b else if c then d else e") == Conditional(
        Name("a"), Name("b"), Conditional(Name("c"), Name("d"), Name("e"))
    )
    assert parse_expression("if a then b") == Conditional(Name("a"), Name("b"), None)
    assert parse_expression("x in [-1, 2.5]") == Membership(
        Name("x"), (Literal(-1, VarType.INT), Literal(Fraction(5, 2), VarType.REAL)), False
    )


@pytest.mark.parametrize(
    "text",
    [
        "amount <= budget and currency in ['EUR', 'USD']",
        "approvals >= (if amount > 100000 then 3 else if amount > 10000 then 2 else 0)",
        'env == "prod" implies ticket != ""',
        "-(x + 1) * 2 % 3 == 0 or not (a and b)",
        "x - -5 < 1e-3",
        "if a then (if b then c else d) else e",
        "(a implies b) implies c",
        "(a < b) == c",
    ],
)
def test_unparse_round_trips(text: str) -> None:
    expr = parse_expression(text)
    assert parse_expression(unparse(expr)) == expr


REJECTIONS = [
    ("payload.amount > 5", "attribute access", 8),
    ("x.__class__", "names starting with '__'", 3),
    ("'abc'.upper()", "attribute access", 6),
    ("len(x) > 2", "function calls are not allowed", 4),
    ("__import__('os').system('id')", "names starting with '__'", 1),
    ("eval('1')", "function calls", 1),
    ("import os", "imports are not allowed", 1),
    ("from os import path", "imports are not allowed", 1),
    ("lambda x: x", "lambdas are not allowed", 1),
    ("[x for x in y]", "comprehensions", 4),
    ("any(a for a in b)", "comprehensions", 7),
    ("x[0] == 1", "indexing", 2),
    ("x ** 2 > 4", "power operator", 3),
    ("x // 2 > 4", "floor division", 3),
    ("x = 5", "use '=='", 3),
    ("{1: 2}", "dict and set literals", 1),
    ("a; b", "single expression", 2),
    ("x is None", "use '==' or '!='", 3),
    ("x == null", "there is no null", 6),
    ("a && b", "use 'and'", 3),
    ("!a", "use 'not'", 1),
    ("a -> b", "use 'implies'", 3),
    ("", "empty", 1),
    ("(a", "')' to close", 3),
    ("a)", "unbalanced ')'", 2),
    ("a b", "after a complete expression", 3),
    ("1abc", "malformed number", 1),
    (".5", "leading zero", 1),
    ("'open", "not closed", 1),
    (r"'\q'", "unknown escape", 2),
    (r"'\ud800'", "lone surrogate", 2),
    ("a @ b", "decorators", 3),
    ("x $ y", "unexpected character", 3),
    ("x in y", "list of literals after 'in'", 6),
    ("x in [y]", "lists hold constants only", 7),
    ("x in [[1]]", "nested lists", 7),
    ("a < b in [1]", "cannot be chained", 7),
    ("x >= if a then 1 else 2", "in parentheses", 6),
    ("if a b", "'then'", 6),
    ("(a, b)", "tuples are not allowed", 3),
    ("()", "empty parentheses", 2),
    ("1e999 > x", "exponent", 1),
    ("x > 1" + "0" * 100, "longer than", 5),
]


@pytest.mark.parametrize(("text", "fragment", "column"), REJECTIONS)
def test_rejections_name_the_problem_and_column(text: str, fragment: str, column: int) -> None:
    with pytest.raises(ConstraintSyntaxError) as caught:
        parse_expression(text)
    error = caught.value
    assert fragment in str(error)
    assert error.column == column
    assert error.expression == text
    assert isinstance(error, ConfigurationError)
    assert isinstance(error, ValueError)


def test_nesting_is_bounded_without_recursion_errors() -> None:
    with pytest.raises(ConstraintSyntaxError, match="nests deeper"):
        parse_expression("(" * 500 + "x" + ")" * 500)
    with pytest.raises(ConstraintSyntaxError, match="nests deeper"):
        parse_expression("not " * 500 + "x")
    with pytest.raises(ConstraintSyntaxError, match="nested deeper"):
        parse_expression(" + ".join(["x"] * 200))
    with pytest.raises(ConstraintSyntaxError, match="longer than"):
        parse_expression("x" * 5000)
    # Long flat conjunctions stay one node, so they are fine.
    assert isinstance(parse_expression(" and ".join(["a"] * 300)), Logic)


def test_multiline_expressions_report_line_and_column() -> None:
    with pytest.raises(ConstraintSyntaxError, match=r"line 2, column 4"):
        parse_expression("a and\n  b.c")


def test_non_string_input_raises_its_own_error() -> None:
    with pytest.raises(ConstraintSyntaxError, match="must be a string"):
        parse_expression(42)  # type: ignore[arg-type]


# ── type checking ────────────────────────────────────────────────────────────

VARS = {
    "n": VarType.INT,
    "x": VarType.REAL,
    "flag": VarType.BOOL,
    "env": VarType.STRING,
}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("env < 'b'", "compares numbers only"),
        ("flag + 1 > 0", "must be a number"),
        ("n", "must be a condition (Bool), but it is Int"),
        ("amount > 0", "unknown variable 'amount'"),
        ("nn > 0", "did you mean 'n'"),
        ("x / n > 1", "non-zero number constant"),
        ("x / 0 > 1", "non-zero number constant"),
        ("n % 0 == 1", "positive Int constant"),
        ("x % 2 == 1", "positive Int constant"),
        ("env == 1", "cannot compare String with Int"),
        ("n in ['a']", "the list holds String"),
        ("if flag then n", "needs a Bool after 'then'"),
        ("(if flag then n else env) == 1", "different types"),
        ("not n", "Bool condition"),
        ("n and flag", "Bool condition"),
    ],
)
def test_type_errors(text: str, fragment: str) -> None:
    with pytest.raises(ConstraintSyntaxError) as caught:
        check_types(parse_expression(text), text, VARS, expect=VarType.BOOL)
    assert fragment in str(caught.value)


def test_types_are_inferred() -> None:
    typed = check_types(
        parse_expression("(if flag then n else x) + n / 2 > 1"), "", VARS, expect=VarType.BOOL
    )
    assert isinstance(typed, Compare)
    total = typed.operands[0]
    assert isinstance(total, Arith)
    assert total.type is VarType.REAL
    assert isinstance(total.left, Conditional)
    assert total.left.type is VarType.REAL
    assert check_types(parse_expression("n * 2 - 1"), "", VARS, expect=None).type is VarType.INT
