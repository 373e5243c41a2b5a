"""Property: the compiled engine and the z3 engine give the same verdict, reason for reason.

Hypothesis draws random typed constraints (arithmetic, comparisons, chains,
membership, and/or/not/implies, if/then/else, exact decimals, Int modulo and
division by constants), an optional selector, and random messages whose
fields are sometimes missing or of the wrong type; both engines must return
exactly the same reasons. Z3 runs for real, with a generous timeout.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enhanced_agent_bus.constraints import (
    CompiledChecker,
    Z3Checker,
    constraints_from_data,
    parse_expression,
    unparse,
)
from enhanced_agent_bus.constraints._ast import (
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
    names_in,
)
from enhanced_agent_bus.models import AgentMessage
from enhanced_agent_bus.registry import AgentRecord

# name -> (field, type)
VARIABLES: dict[str, tuple[str, VarType]] = {
    "n1": ("payload.n1", VarType.INT),
    "n2": ("metadata.n2", VarType.INT),
    "x1": ("payload.x1", VarType.REAL),
    "x2": ("metadata.x2", VarType.REAL),
    "b1": ("payload.b1", VarType.BOOL),
    "s1": ("payload.s1", VarType.STRING),
    "s2": ("metadata.s2", VarType.STRING),
}
INTS = [n for n, (_, t) in VARIABLES.items() if t is VarType.INT]
REALS = [n for n, (_, t) in VARIABLES.items() if t is VarType.REAL]
STRINGS = [n for n, (_, t) in VARIABLES.items() if t is VarType.STRING]
SAMPLE_STRINGS = ["", "a", "prod", "A", "\\u{41}", "é", "\U0001f600", "x\x00y", "a\\b"]

int_literals = st.one_of(st.integers(-20, 20), st.integers(-(2**70), 2**70)).map(
    lambda v: Literal(v, VarType.INT)
)
decimal_literals = st.integers(-(10**6), 10**6).map(
    lambda k: Literal(Fraction(k, 100), VarType.REAL)
)
string_literals = st.one_of(st.sampled_from(SAMPLE_STRINGS), st.text(max_size=4)).map(
    lambda s: Literal(s, VarType.STRING)
)
COMPARE_OPS = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


def numbers(depth: int, *, int_only: bool) -> st.SearchStrategy[Expr]:
    names = INTS if int_only else INTS + REALS
    leaves: list[st.SearchStrategy[Expr]] = [st.sampled_from(names).map(Name), int_literals]
    if not int_only:
        leaves.append(decimal_literals)
    leaf = st.one_of(*leaves)
    if depth == 0:
        return leaf
    sub = numbers(depth - 1, int_only=int_only)
    options: list[st.SearchStrategy[Expr]] = [
        leaf,
        st.builds(Arith, st.sampled_from(["+", "-", "*"]), sub, sub),
        st.builds(lambda e: Unary("-", e), sub),
        st.builds(lambda c, a, b: Conditional(c, a, b), booleans(depth - 1), sub, sub),
        st.builds(
            lambda e, k: Arith("%", e, Literal(k, VarType.INT)),
            numbers(depth - 1, int_only=True),
            st.integers(1, 9),
        ),
    ]
    if not int_only:
        nonzero = st.one_of(int_literals, decimal_literals).filter(lambda lit: lit.value != 0)
        options.append(st.builds(lambda e, d: Arith("/", e, d), sub, nonzero))
    return st.one_of(*options)


def booleans(depth: int) -> st.SearchStrategy[Expr]:
    leaf = st.one_of(
        st.just(Name("b1")),
        st.booleans().map(lambda b: Literal(b, VarType.BOOL)),
        st.builds(
            lambda name, op, lit: Compare((op,), (Name(name), lit)),
            st.sampled_from(STRINGS),
            st.sampled_from(["==", "!="]),
            string_literals,
        ),
        st.builds(
            lambda a, b: Compare(("==",), (Name(a), Name(b))),
            st.sampled_from(STRINGS),
            st.sampled_from(STRINGS),
        ),
        st.builds(
            lambda name, items, neg: Membership(Name(name), tuple(items), neg),
            st.sampled_from(STRINGS),
            st.lists(string_literals, max_size=3),
            st.booleans(),
        ),
    )
    if depth == 0:
        return leaf
    sub = booleans(depth - 1)
    num = numbers(depth - 1, int_only=False)
    return st.one_of(
        leaf,
        st.builds(lambda op, a, b: Compare((op,), (a, b)), COMPARE_OPS, num, num),
        st.builds(
            lambda o1, o2, a, b, c: Compare((o1, o2), (a, b, c)),
            COMPARE_OPS,
            COMPARE_OPS,
            num,
            num,
            num,
        ),
        st.builds(
            lambda e, items, neg: Membership(e, tuple(items), neg),
            num,
            st.lists(st.one_of(int_literals, decimal_literals), max_size=3),
            st.booleans(),
        ),
        st.builds(
            lambda op, ops: Logic(op, tuple(ops)),
            st.sampled_from(["and", "or"]),
            st.lists(sub, min_size=2, max_size=3),
        ),
        st.builds(lambda e: Unary("not", e), sub),
        st.builds(Implies, sub, sub),
        st.builds(lambda c, a: Conditional(c, a, None), sub, sub),
        st.builds(lambda c, a, b: Conditional(c, a, b), sub, sub, sub),
    )


def _value(kind: VarType, textual: bool) -> st.SearchStrategy[Any]:
    if kind is VarType.INT:
        base: st.SearchStrategy[Any] = st.one_of(
            st.integers(-30, 30), st.integers(-(2**63), 2**63 - 1)
        )
        return base.map(str) if textual else base
    if kind is VarType.REAL:
        base = st.one_of(
            st.integers(-(10**6), 10**6),
            st.integers(-(10**6), 10**6).map(lambda k: k / 100),
            st.floats(allow_nan=False, allow_infinity=False),
        )
        return base.map(repr) if textual else base
    if kind is VarType.BOOL:
        return st.booleans()
    return st.one_of(st.sampled_from(SAMPLE_STRINGS), st.text(max_size=4))


def field_values(textual: bool, kind: VarType) -> st.SearchStrategy[Any]:
    """Mostly a well-typed value; sometimes missing (None) or of the wrong type."""
    wrong = st.sampled_from(["oops", [1], {"a": 1}]) if not textual else st.just("oops")
    return st.one_of(
        _value(kind, textual),
        _value(kind, textual),
        _value(kind, textual),
        _value(kind, textual),
        st.none(),
        wrong,
    )


@st.composite
def constraint_entry(draw: st.DrawFn, cid: str) -> dict[str, Any]:
    assertions = draw(st.lists(booleans(2), min_size=1, max_size=3))
    when = draw(st.one_of(st.none(), booleans(1)))
    used: dict[str, None] = {}
    for expr in ([when] if when is not None else []) + assertions:
        for name in names_in(expr):
            used[name] = None
    variables: dict[str, Any] = {}
    for name in used:
        field, kind = VARIABLES[name]
        spec: dict[str, Any] = {"field": field, "type": kind.value}
        if draw(st.booleans()):
            spec["default"] = draw(_value(kind, textual=False))
        variables[name] = spec
    entry: dict[str, Any] = {
        "id": cid,
        "description": f"random constraint {cid}",
        "vars": variables,
        "assert": [unparse(a) for a in assertions],
    }
    if when is not None:
        entry["applies_to"] = {"when": unparse(when)}
    return entry


@st.composite
def scenario(draw: st.DrawFn) -> tuple[dict[str, Any], AgentMessage]:
    count = draw(st.integers(1, 3))
    entries = [draw(constraint_entry(f"c{index}")) for index in range(count)]
    payload: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for field, kind in VARIABLES.values():
        root, key = field.split(".")
        value = draw(field_values(root == "metadata", kind))
        if value is None:
            continue
        if root == "metadata":
            metadata[key] = value if isinstance(value, str) else "oops"
        else:
            payload[key] = value
    message = AgentMessage(
        from_agent="planner-1",
        to_agent="worker-1",
        tenant_id="acme",
        payload=payload,
        metadata=metadata,
    )
    return {"version": 1, "constraints": entries}, message


async def _handler(message: AgentMessage, context: Any) -> None:
    return None


SENDER = AgentRecord("planner-1", "acme", "planner", frozenset(), _handler, None)  # type: ignore[arg-type]
RECIPIENT = AgentRecord("worker-1", "acme", "worker", frozenset(), _handler, None)  # type: ignore[arg-type]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario())
def test_compiled_and_z3_engines_agree(case: tuple[dict[str, Any], AgentMessage]) -> None:
    document, message = case
    checks = constraints_from_data(document)
    compiled = CompiledChecker(checks).check(message, SENDER, RECIPIENT)
    z3_engine = Z3Checker(checks, timeout_ms=20_000)
    try:
        solved = z3_engine.evaluate(message, SENDER, RECIPIENT)
    finally:
        z3_engine.close()
    assert solved == compiled


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(booleans(3))
def test_unparse_then_parse_is_the_identity(expr: Expr) -> None:
    assert parse_expression(unparse(expr)) == expr
