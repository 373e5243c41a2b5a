"""Property: the constraint parser only ever raises its own error, whatever text it is fed."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enhanced_agent_bus.constraints import (
    ConstraintDeclarationError,
    ConstraintSyntaxError,
    VarType,
    check_types,
    parse_constraints,
    parse_expression,
    unparse,
)

# Fragments of the language and of Python, so random sequences get deep into the parser.
TOKENS = [
    "x", "y", "amount", "budget", "_", "__import__", "os", "lambda", "for", "in", "not",
    "and", "or", "implies", "if", "then", "else", "true", "false", "None", "import",
    "0", "1", "-1", "2.5", "1e3", "1_000", "007", "1e99999", ".5", "5.",
    '"s"', "'t'", '"\\u0041"', '"\\q"', '"open',
    "+", "-", "*", "/", "%", "**", "//", "==", "!=", "<", "<=", ">", ">=", "=",
    "(", ")", "[", "]", "{", "}", ",", ".", ":", ";", "!", "&&", "||", "@", "~", "^",
    " ", "\n", "\t", "\x00", "\u2028", "\u0663", "é", "\U0001f600",
]  # fmt: skip

VARIABLES = {
    "x": VarType.INT,
    "y": VarType.REAL,
    "amount": VarType.REAL,
    "budget": VarType.REAL,
    "flag": VarType.BOOL,
    "env": VarType.STRING,
}


def _parse_only_raises_its_own_error(text: str) -> None:
    error: ConstraintSyntaxError | None = None
    try:
        expr = parse_expression(text)
    except ConstraintSyntaxError as caught:
        error = caught
    if error is not None:
        assert 1 <= error.column <= max(len(text), 1) + 1
        assert error.expression == text
        return
    # Whatever parses unparses to text that parses back to the same tree...
    assert parse_expression(unparse(expr)) == expr
    # ...and type checking, too, fails only with the parser's error.
    with contextlib.suppress(ConstraintSyntaxError):
        check_types(expr, text, VARIABLES, expect=VarType.BOOL)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    _parse_only_raises_its_own_error(text)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_random_token_soup(text: str) -> None:
    _parse_only_raises_its_own_error(text)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_random_glued_tokens(text: str) -> None:
    _parse_only_raises_its_own_error(text)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=3000), st.sampled_from(["(", "not ", "-", "if x then "]))
def test_deep_nesting_is_refused_not_a_crash(depth: int, opener: str) -> None:
    _parse_only_raises_its_own_error(opener * depth + "x")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.text(max_size=300))
def test_random_declaration_files_raise_only_declaration_errors(text: str) -> None:
    with contextlib.suppress(ConstraintDeclarationError):
        parse_constraints(text)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=5000), st.sampled_from(["[", "{a: ", "- ", "a:\n  "]))
def test_deeply_nested_yaml_is_refused_not_a_crash(depth: int, opener: str) -> None:
    with contextlib.suppress(ConstraintDeclarationError):
        parse_constraints("version: 1\nconstraints: " + opener * depth)
