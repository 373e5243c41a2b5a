"""Field sources and value coercion (shared by both engines)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from constraint_helpers import RECIPIENT, SENDER, message

from enhanced_agent_bus.constraints import (
    MISSING,
    BadValue,
    VarType,
    parse_field_source,
)
from enhanced_agent_bus.constraints._binding import make_binder, supplying_source
from enhanced_agent_bus.models import Priority


def bind(field: str | list[str], kind: VarType, msg: Any, default: object = MISSING) -> object:
    texts = [field] if isinstance(field, str) else field
    sources = [parse_field_source(t) for t in texts]
    return make_binder(sources, kind, default)(msg, SENDER, RECIPIENT)


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("5000", 5000, VarType.REAL),
        ("-12", -12, VarType.REAL),
        ("+3.25", 3.25, VarType.REAL),
        ("1e3", 1000.0, VarType.REAL),
        (".5", 0.5, VarType.REAL),
        ("42", 42, VarType.INT),
        ("-7", -7, VarType.INT),
        ("true", True, VarType.BOOL),
        ("false", False, VarType.BOOL),
        (" padded ", " padded ", VarType.STRING),
    ],
)
def test_metadata_text_is_parsed(text: str, value: object, kind: VarType) -> None:
    got = bind("metadata.v", kind, message(metadata={"v": text}))
    assert got == value
    assert type(got) is type(value)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (" 5", VarType.REAL),
        ("1_000", VarType.INT),
        ("1_000", VarType.REAL),
        ("\u0663", VarType.INT),  # an Arabic-Indic digit: int() would accept it
        ("nan", VarType.REAL),
        ("inf", VarType.REAL),
        ("1e400", VarType.REAL),
        ("2.0", VarType.INT),
        ("True", VarType.BOOL),
        ("1" * 41, VarType.INT),
    ],
)
def test_metadata_text_that_is_not_a_clean_value_is_bad(text: str, kind: VarType) -> None:
    assert isinstance(bind("metadata.v", kind, message(metadata={"v": text})), BadValue)


@pytest.mark.parametrize(
    ("value", "kind", "ok"),
    [
        (3, VarType.INT, True),
        (3.0, VarType.INT, False),
        (True, VarType.INT, False),
        (3, VarType.REAL, True),
        (3.5, VarType.REAL, True),
        ("3.5", VarType.REAL, False),
        (False, VarType.BOOL, True),
        (0, VarType.BOOL, False),
        ("s", VarType.STRING, True),
        (["s"], VarType.STRING, False),
        ({"a": 1}, VarType.REAL, False),
    ],
)
def test_payload_values_are_typed_strictly(value: object, kind: VarType, ok: bool) -> None:
    got = bind("payload.v", kind, message({"v": value}))
    assert (got == value) if ok else isinstance(got, BadValue)


def test_missing_null_and_defaults() -> None:
    assert bind("payload.v", VarType.INT, message({})) is MISSING
    assert bind("payload.v", VarType.INT, message({"v": None})) is MISSING
    assert bind("payload.v", VarType.INT, message({}), default=7) == 7
    assert bind(["metadata.v", "payload.v"], VarType.INT, message({"v": 2})) == 2
    assert bind(["metadata.v", "payload.v"], VarType.INT, message({"v": 2}, {"v": "3"})) == 3
    assert bind(["metadata.v", "payload.v"], VarType.INT, message(), default=0) == 0


def test_envelope_and_participant_fields() -> None:
    msg = message({"a": 1}, priority=Priority.HIGH, topic="ops/alerts")
    assert bind("message.priority", VarType.STRING, msg) == "high"
    assert bind("message.message_type", VarType.STRING, msg) == "command"
    assert bind("message.topic", VarType.STRING, msg) == "ops/alerts"
    assert bind("message.correlation_id", VarType.STRING, msg) is MISSING
    assert bind("message.payload_size_bytes", VarType.INT, msg) == len(b'{"a":1}')
    assert bind("sender.role", VarType.STRING, msg) == "planner"
    assert bind("recipient.agent_id", VarType.STRING, msg) == "worker-1"
    sources = [parse_field_source("metadata.x"), parse_field_source("payload.a")]
    assert supplying_source(sources, msg, SENDER, RECIPIENT) == sources[1]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("amount", "must be '<root>.<name>'"),
        ("body.amount", "unknown root 'body'"),
        ("payload.a b", "payload keys"),
        ("payload." + ".".join("k" * 9), "payload keys"),
        ("message.secret", "message attributes are"),
        ("sender.capabilities", "sender attributes are"),
        ("metadata.", "metadata key"),
    ],
)
def test_field_source_errors(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_field_source(text)
