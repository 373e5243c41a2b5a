"""Where a constraint variable's value comes from, and how it is read and type-checked.

A variable is bound to one or more *field sources*; the first source present
in the message supplies the value (so ``[metadata.budget, payload.budget]``
reads the metadata first). Sources:

* ``payload.<key>[.<key>...]`` a JSON value in the payload (nested objects by dots)
* ``metadata.<key>``           a metadata string (numbers and booleans are parsed from it)
* ``message.<attribute>``      ``payload_size_bytes`` (Int), ``message_type``, ``priority``,
                               ``from_agent``, ``to_agent``, ``tenant_id``, ``topic``,
                               ``correlation_id`` (String)
* ``sender.<attribute>`` / ``recipient.<attribute>``: ``agent_id``, ``tenant_id``, ``role``

JSON ``null`` counts as missing. Payload values are typed strictly (an Int is
a JSON integer, a Real an integer or a float, never a numeric string); metadata
is text by definition, so ``"5000"`` reads as the number 5000 there.

Both engines bind through this module, so they see exactly the same values
and report exactly the same ``constraint_input`` problems.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, TypeAlias

from ._ast import VarType

if TYPE_CHECKING:
    from ..models import AgentMessage


class Participant(Protocol):
    """What the binding layer reads from a sender or recipient (``registry.AgentRecord`` fits)."""

    @property
    def agent_id(self) -> str: ...

    @property
    def tenant_id(self) -> str: ...

    @property
    def role(self) -> str: ...


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


#: A field that is absent (or JSON null) in the message.
MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True)
class BadValue:
    """A present field whose value does not fit the declared type."""

    problem: str


#: A bound value: a Python value of the declared type, MISSING, or a BadValue.
Bound: TypeAlias = object
Binder: TypeAlias = Callable[["AgentMessage", Participant | None, Participant | None], Bound]
_Getter: TypeAlias = Callable[["AgentMessage", Participant | None, Participant | None], object]
_Coercer: TypeAlias = Callable[[object], object]

_MESSAGE_ATTRIBUTES: Final = {
    "payload_size_bytes": VarType.INT,
    "message_type": VarType.STRING,
    "priority": VarType.STRING,
    "from_agent": VarType.STRING,
    "to_agent": VarType.STRING,
    "tenant_id": VarType.STRING,
    "topic": VarType.STRING,
    "correlation_id": VarType.STRING,
}
_PARTICIPANT_ATTRIBUTES: Final = ("agent_id", "tenant_id", "role")
_PAYLOAD_KEY: Final = re.compile(r"[A-Za-z0-9_-]{1,128}\Z")
_ROOTS: Final = ("payload", "metadata", "message", "sender", "recipient")


@dataclass(frozen=True, slots=True)
class FieldSource:
    """One place a value can come from, e.g. ``payload.amount``."""

    root: str
    path: tuple[str, ...]

    @property
    def text(self) -> str:
        return ".".join((self.root, *self.path))

    @property
    def natural_type(self) -> VarType | None:
        """The type the field always has (envelope attributes), or None for payload/metadata."""
        if self.root == "message":
            return _MESSAGE_ATTRIBUTES[self.path[0]]
        if self.root in ("sender", "recipient"):
            return VarType.STRING
        return None

    def __str__(self) -> str:
        return self.text


def parse_field_source(text: str) -> FieldSource:
    """Parse ``payload.amount``-style text.

    Raises:
        ValueError: naming what is wrong with the text and what is allowed.
    """
    if not isinstance(text, str) or "." not in text:
        raise ValueError(
            f"field {text!r} must be '<root>.<name>' with root one of {list(_ROOTS)}, "
            "e.g. payload.amount or metadata.budget"
        )
    root, _, rest = text.partition(".")
    if root == "payload":
        keys = tuple(rest.split("."))
        bad = [k for k in keys if not _PAYLOAD_KEY.match(k)]
        if bad or len(keys) > 8:
            raise ValueError(
                f"field {text!r}: payload keys are 1-128 characters of [A-Za-z0-9_-], at most "
                f"8 levels deep (bad part: {bad[0] if bad else rest!r})"
            )
        return FieldSource("payload", keys)
    if root == "metadata":
        if not rest or len(rest) > 128:
            raise ValueError(f"field {text!r}: a metadata key is 1-128 characters")
        return FieldSource("metadata", (rest,))
    if root == "message":
        if rest not in _MESSAGE_ATTRIBUTES:
            raise ValueError(
                f"field {text!r}: message attributes are {sorted(_MESSAGE_ATTRIBUTES)}"
            )
        return FieldSource("message", (rest,))
    if root in ("sender", "recipient"):
        if rest not in _PARTICIPANT_ATTRIBUTES:
            raise ValueError(
                f"field {text!r}: {root} attributes are {list(_PARTICIPANT_ATTRIBUTES)}"
            )
        return FieldSource(root, (rest,))
    raise ValueError(f"field {text!r} has unknown root {root!r}; use one of {list(_ROOTS)}")


# ── describing values (for explanations, never for logs) ─────────────────────

_SHOWN_CHARS: Final = 60


def format_value(value: object) -> str:
    """A short, readable rendering of a bound value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= _SHOWN_CHARS else value[: _SHOWN_CHARS - 3] + "..."
        return repr(shown)
    return describe(value)


def describe(value: object) -> str:
    """What kind of value this is, for 'expected X, got Y' messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the Bool {format_value(value)}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {format_value(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# ── getters ──────────────────────────────────────────────────────────────────


def _payload_getter(keys: tuple[str, ...]) -> _Getter:
    if len(keys) == 1:
        (key,) = keys

        def get_one(message: AgentMessage, _s: object, _r: object) -> object:
            value = message.payload.get(key, MISSING)
            return MISSING if value is None else value

        return get_one

    def get_nested(message: AgentMessage, _s: object, _r: object) -> object:
        node: object = message.payload
        walked = "payload"
        for key in keys:
            if not isinstance(node, dict):
                return BadValue(f"{walked} is {describe(node)}, not an object holding {key!r}")
            node = node.get(key, MISSING)
            if node is MISSING or node is None:
                return MISSING
            walked = f"{walked}.{key}"
        return node

    return get_nested


def _metadata_getter(key: str) -> _Getter:
    def get(message: AgentMessage, _s: object, _r: object) -> object:
        return message.metadata.get(key, MISSING)

    return get


def _message_getter(attribute: str) -> _Getter:
    if attribute == "payload_size_bytes":
        return lambda message, _s, _r: message.payload_size_bytes
    if attribute in ("message_type", "priority"):

        def get_enum(message: AgentMessage, _s: object, _r: object) -> object:
            return str(getattr(message, attribute).value)

        return get_enum

    def get(message: AgentMessage, _s: object, _r: object) -> object:
        value = getattr(message, attribute)
        return MISSING if value is None else value

    return get


def _participant_getter(which: str, attribute: str) -> _Getter:
    def get(_m: AgentMessage, sender: Participant | None, recipient: Participant | None) -> object:
        who = sender if which == "sender" else recipient
        if who is None:
            return MISSING
        value: object = getattr(who, attribute)
        return MISSING if value is None else value

    return get


def make_getter(source: FieldSource) -> _Getter:
    """A function reading the raw value of ``source`` (or MISSING) from a message."""
    if source.root == "payload":
        return _payload_getter(source.path)
    if source.root == "metadata":
        return _metadata_getter(source.path[0])
    if source.root == "message":
        return _message_getter(source.path[0])
    return _participant_getter(source.root, source.path[0])


# ── coercion ─────────────────────────────────────────────────────────────────

_INT_TEXT: Final = re.compile(r"[+-]?\d{1,40}\Z", re.ASCII)
_REAL_TEXT: Final = re.compile(
    r"[+-]?(?:\d{1,40}(?:\.\d{0,40})?|\.\d{1,40})(?:[eE][+-]?\d{1,3})?\Z", re.ASCII
)


def _passthrough_bad(value: object, expected: str) -> BadValue:
    if isinstance(value, BadValue):
        return value
    return BadValue(f"expected {expected}, got {describe(value)}")


def _json_int(value: object) -> object:
    if type(value) is int:
        return value
    return _passthrough_bad(value, "an integer (Int)")


def _json_real(value: object) -> object:
    kind = type(value)
    if kind is int or kind is float:
        return value
    return _passthrough_bad(value, "a number (Real)")


def _json_bool(value: object) -> object:
    if type(value) is bool:
        return value
    return _passthrough_bad(value, "true or false (Bool)")


def _json_string(value: object) -> object:
    if type(value) is str:
        return value
    return _passthrough_bad(value, "a string (String)")


def _text_int(value: object) -> object:
    if type(value) is str and (
        (value.isdigit() and value.isascii() and len(value) <= 40) or _INT_TEXT.match(value)
    ):
        return int(value)
    return _passthrough_bad(value, "an integer written as text, e.g. '3' (Int)")


def _text_real(value: object) -> object:
    if type(value) is str and value.isdigit() and value.isascii() and len(value) <= 40:
        return int(value)  # the common case, "5000", without a regex
    if type(value) is str and _REAL_TEXT.match(value):
        if _INT_TEXT.match(value):
            return int(value)
        number = float(value)
        if math.isfinite(number):
            return number
    return _passthrough_bad(value, "a finite number written as text, e.g. '5000.50' (Real)")


def _text_bool(value: object) -> object:
    if value == "true":
        return True
    if value == "false":
        return False
    return _passthrough_bad(value, "'true' or 'false' (Bool)")


_JSON_COERCERS: Final[dict[VarType, _Coercer]] = {
    VarType.INT: _json_int,
    VarType.REAL: _json_real,
    VarType.BOOL: _json_bool,
    VarType.STRING: _json_string,
}
_TEXT_COERCERS: Final[dict[VarType, _Coercer]] = {
    VarType.INT: _text_int,
    VarType.REAL: _text_real,
    VarType.BOOL: _text_bool,
    VarType.STRING: _json_string,
}


def coercer_for(source: FieldSource, var_type: VarType) -> _Coercer:
    """How a raw value from ``source`` becomes a value of ``var_type`` (or a BadValue)."""
    if source.root == "metadata":
        return _TEXT_COERCERS[var_type]
    return _JSON_COERCERS[var_type]


def coerce(source: FieldSource, var_type: VarType, raw: object) -> object:
    """Coerce one raw value as a binder would (used for plan steps given as data)."""
    if raw is None:
        return MISSING
    return coercer_for(source, var_type)(raw)


_JSON_TYPES: Final[dict[VarType, frozenset[type]]] = {
    VarType.INT: frozenset({int}),
    VarType.REAL: frozenset({int, float}),
    VarType.BOOL: frozenset({bool}),
    VarType.STRING: frozenset({str}),
}


def _source_binder(source: FieldSource, var_type: VarType, default: object) -> Binder:
    """Read and coerce one source in one call (the per-message hot path)."""
    convert = coercer_for(source, var_type)
    if source.root == "payload" and len(source.path) == 1:
        key = source.path[0]
        accepted = _JSON_TYPES[var_type]

        def bind_payload(message: AgentMessage, _s: object, _r: object) -> Bound:
            value = message.payload.get(key)
            if value is None:
                return default
            if type(value) in accepted:
                return value
            return convert(value)

        return bind_payload
    if source.root == "metadata" and var_type.is_numeric:
        key = source.path[0]

        def bind_metadata_number(message: AgentMessage, _s: object, _r: object) -> Bound:
            value = message.metadata.get(key)
            if value is None:
                return default
            if value.isdigit() and value.isascii() and len(value) <= 40:
                return int(value)  # "5000": the common case, without a regex
            return convert(value)

        return bind_metadata_number
    if source.root == "metadata":
        key = source.path[0]

        def bind_metadata(message: AgentMessage, _s: object, _r: object) -> Bound:
            value = message.metadata.get(key)
            if value is None:
                return default
            return convert(value)

        return bind_metadata
    if source.text == "message.payload_size_bytes":
        return lambda message, _s, _r: message.payload_size_bytes
    get = make_getter(source)

    def bind_other(
        message: AgentMessage, sender: Participant | None, recipient: Participant | None
    ) -> Bound:
        raw = get(message, sender, recipient)
        if raw is MISSING:
            return default
        return convert(raw)

    return bind_other


def make_binder(sources: Sequence[FieldSource], var_type: VarType, default: object) -> Binder:
    """A function returning the variable's value, MISSING, or a BadValue for one message.

    ``default`` is used when every source is missing (pass MISSING for "required").
    """
    if len(sources) == 1:
        return _source_binder(sources[0], var_type, default)
    parts = tuple(_source_binder(s, var_type, MISSING) for s in sources)
    if len(parts) == 2:
        first, second = parts

        def bind_either(
            message: AgentMessage, sender: Participant | None, recipient: Participant | None
        ) -> Bound:
            value = first(message, sender, recipient)
            if value is not MISSING:
                return value
            value = second(message, sender, recipient)
            return default if value is MISSING else value

        return bind_either

    def bind_first(
        message: AgentMessage, sender: Participant | None, recipient: Participant | None
    ) -> Bound:
        for part in parts:
            value = part(message, sender, recipient)
            if value is not MISSING:
                return value
        return default

    return bind_first


def supplying_source(
    sources: Sequence[FieldSource],
    message: AgentMessage,
    sender: Participant | None,
    recipient: Participant | None,
) -> FieldSource | None:
    """Which source supplied the value (None: the default was used). Explanations only."""
    for source in sources:
        if make_getter(source)(message, sender, recipient) is not MISSING:
            return source
    return None
