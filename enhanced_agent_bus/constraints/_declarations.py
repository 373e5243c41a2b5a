"""Reading ``constraints.yaml``: schema, expressions, and clear errors.

The file format::

    version: 1
    constraints:
      - id: spend_within_budget                 # [a-z][a-z0-9_.-]*, unique
        description: A transfer never spends more than its budget.
        applies_to:
          message_types: [command]              # omitted: every type
          when: action == "transfer"            # optional selector over the vars
        vars:
          action: {field: payload.action, type: String}
          amount: {field: payload.amount, type: Real}
          budget: {field: [metadata.budget, payload.budget], type: Real}
          approvals: {field: metadata.approvals, type: Int, default: 0}
        assert:
          - amount <= budget
          - expr: amount > 0
            explain: a transfer moves a positive amount
        agrees_with:                            # optional: limits mirrored from data.json
          - {var: size, data: limits.max_payload_bytes.command, bound: upper}

A message is *selected* when its type is listed and ``when`` holds. A missing
field read by ``when`` means "not selected"; a missing required field read only
by the assertions of a selected message is a ``constraint_input`` denial.

The YAML is read with a :class:`yaml.SafeLoader` subclass that also refuses
duplicate keys (PyYAML silently keeps the last one) and anchors/aliases (they
let a few lines expand into a huge document); a constitution should say
everything once, in plain sight.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from typing import Any, Final
from typing import Literal as TypingLiteral

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from pydantic import ValidationError as PydanticValidationError

from ..constitution import Constitution
from ..models import MessageType
from ._ast import KEYWORDS, Expr, VarType, names_in
from ._binding import MISSING, FieldSource, parse_field_source
from ._errors import ConstraintDeclarationError, ConstraintSyntaxError
from ._model import Agreement, Assertion, Constraint, ConstraintSet, Variable
from ._parser import parse_expression
from ._typecheck import check_types

DEFAULT_CONSTRAINTS_FILE: Final = "constraints.yaml"
MAX_CONSTRAINTS: Final = 200
MAX_FILE_CHARS: Final = 1_000_000
_MAX_YAML_DEPTH: Final = 32

_ID_PATTERN: Final = r"^[a-z][a-z0-9_.-]{0,63}$"
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


# ── YAML ─────────────────────────────────────────────────────────────────────


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, duplicate mapping keys, and deep nesting."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if self.check_event(yaml.AliasEvent):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "YAML aliases (*name) are not supported here; write the value out",
                event.start_mark,
            )
        # The composer recurses once per level: bound it before Python's stack does.
        if self._depth >= _MAX_YAML_DEPTH:
            raise yaml.constructor.ConstructorError(
                None, None, f"nesting deeper than {_MAX_YAML_DEPTH} levels", event.start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _load_yaml(text: str, source: str) -> object:
    if len(text) > MAX_FILE_CHARS:
        raise ConstraintDeclarationError(
            f"the file is larger than {MAX_FILE_CHARS} characters", source=source
        )
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConstraintDeclarationError(
            f"is not valid YAML{where}: {problem}. Fix the file's syntax.", source=source
        ) from exc


# ── schema ───────────────────────────────────────────────────────────────────

_Scalar = StrictBool | StrictInt | StrictFloat | StrictStr


class _VarSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: StrictStr | list[StrictStr] = Field(min_length=1)
    type: TypingLiteral["Int", "Real", "Bool", "String"]
    default: _Scalar | None = None


class _AssertSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    expr: StrictStr
    explain: StrictStr | None = Field(default=None, max_length=500)


class _SelectorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message_types: list[StrictStr] | None = Field(default=None, min_length=1)
    when: StrictStr | None = None


class _AgreementSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    var: StrictStr
    data: StrictStr = Field(min_length=1, max_length=256)
    bound: TypingLiteral["upper", "lower"] = "upper"


class _ConstraintSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: StrictStr = Field(pattern=_ID_PATTERN)
    description: StrictStr = Field(min_length=1, max_length=1000)
    applies_to: _SelectorSpec = _SelectorSpec()
    vars: dict[StrictStr, _VarSpec] = Field(default_factory=dict, max_length=64)
    assertions: list[StrictStr | _AssertSpec] = Field(alias="assert", min_length=1, max_length=64)
    agrees_with: list[_AgreementSpec] = Field(default_factory=list, max_length=16)


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: TypingLiteral[1]
    constraints: list[dict[StrictStr, Any]] = Field(default_factory=list)


def _first_error(exc: PydanticValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "(top level)"
    shown = first.get("input")
    got = ""
    if shown is not None and not isinstance(shown, dict | list):
        got = f" (got {shown!r})"
    return location, f"{first['msg']}{got}"


# ── building constraints ─────────────────────────────────────────────────────


def _message_types(spec: _ConstraintSpec, source: str) -> frozenset[MessageType]:
    if spec.applies_to.message_types is None:
        return frozenset(MessageType)
    chosen: set[MessageType] = set()
    for name in spec.applies_to.message_types:
        try:
            chosen.add(MessageType(name))
        except ValueError:
            raise ConstraintDeclarationError(
                f"unknown message type {name!r}; use one of {[t.value for t in MessageType]}",
                source=source,
                constraint_id=spec.id,
                field="applies_to.message_types",
            ) from None
    return frozenset(chosen)


def _default_value(var_type: VarType, value: object) -> object:
    if value is None:
        return MISSING
    ok = {
        VarType.INT: type(value) is int,
        VarType.REAL: type(value) in (int, float),
        VarType.BOOL: type(value) is bool,
        VarType.STRING: type(value) is str,
    }[var_type]
    if not ok:
        raise ValueError(f"default {value!r} is not a {var_type}")
    return value


def _variable(cid: str, name: str, spec: _VarSpec, source: str) -> Variable:
    field = f"vars.{name}"
    fail = ConstraintDeclarationError
    if not isinstance(name, str) or name in KEYWORDS or not _NAME.match(name):
        raise fail(
            f"variable name {name!r} must be an identifier ([A-Za-z_][A-Za-z0-9_]*) and not a "
            f"keyword ({sorted(KEYWORDS)})",
            source=source, constraint_id=cid, field=field,
        )  # fmt: skip
    var_type = VarType(spec.type)
    texts = [spec.field] if isinstance(spec.field, str) else spec.field
    if not 1 <= len(texts) <= 4:
        raise fail("list 1 to 4 fields", source=source, constraint_id=cid, field=f"{field}.field")
    sources: list[FieldSource] = []
    for text in texts:
        try:
            parsed = parse_field_source(text)
        except ValueError as exc:
            raise fail(str(exc), source=source, constraint_id=cid, field=f"{field}.field") from None
        natural = parsed.natural_type
        if (
            natural is not None
            and natural is not var_type
            and not (natural is VarType.INT and var_type is VarType.REAL)
        ):
            raise fail(
                f"{parsed.text} is always a {natural}; declare type: {natural}",
                source=source, constraint_id=cid, field=f"{field}.type",
            )  # fmt: skip
        sources.append(parsed)
    try:
        default = _default_value(var_type, spec.default)
    except ValueError as exc:
        raise fail(str(exc), source=source, constraint_id=cid, field=f"{field}.default") from None
    return Variable(name, var_type, tuple(sources), default)


def _expression(
    text: str, types: Mapping[str, VarType], *, source: str, cid: str, field: str
) -> Expr:
    try:
        untyped = parse_expression(text)
        return check_types(untyped, text, types, expect=VarType.BOOL)
    except ConstraintSyntaxError as exc:
        raise exc.in_context(source=source, constraint_id=cid, field=field) from None


def _constraint(spec: _ConstraintSpec, source: str) -> Constraint:
    cid = spec.id
    variables = {name: _variable(cid, name, v, source) for name, v in spec.vars.items()}
    types = {name: v.type for name, v in variables.items()}
    when = None
    if spec.applies_to.when is not None:
        when = _expression(
            spec.applies_to.when, types, source=source, cid=cid, field="applies_to.when"
        )
    assertions: list[Assertion] = []
    for index, entry in enumerate(spec.assertions):
        text, explain = (entry, None) if isinstance(entry, str) else (entry.expr, entry.explain)
        expr = _expression(text, types, source=source, cid=cid, field=f"assert[{index}]")
        assertions.append(Assertion(text.strip(), expr, explain, names_in(expr)))
    used = set(names_in(when) if when is not None else ())
    for assertion in assertions:
        used.update(assertion.names)
    unused = [name for name in variables if name not in used]
    if unused:
        raise ConstraintDeclarationError(
            f"variables {unused} are declared but not used; remove them (a required "
            "variable that nothing reads would still deny messages that lack its field)",
            source=source, constraint_id=cid, field="vars",
        )  # fmt: skip
    agreements = []
    for index, agreement in enumerate(spec.agrees_with):
        variable = variables.get(agreement.var)
        if variable is None or not variable.type.is_numeric:
            raise ConstraintDeclarationError(
                f"agrees_with names {agreement.var!r}, which must be a declared Int or Real "
                f"variable (declared: {sorted(variables)})",
                source=source, constraint_id=cid, field=f"agrees_with[{index}].var",
            )  # fmt: skip
        agreements.append(Agreement(agreement.var, agreement.data, agreement.bound))
    return Constraint(
        id=cid,
        description=spec.description.strip(),
        message_types=_message_types(spec, source),
        variables=variables,
        assertions=tuple(assertions),
        when=when,
        when_text=spec.applies_to.when.strip() if spec.applies_to.when else None,
        agreements=tuple(agreements),
    )


def constraints_from_data(data: object, *, source: str = DEFAULT_CONSTRAINTS_FILE) -> ConstraintSet:
    """Build a :class:`ConstraintSet` from already-parsed YAML/JSON data.

    Raises:
        ConstraintDeclarationError: a wrong shape, naming the constraint and the field.
        ConstraintSyntaxError: an expression outside the language, with its column.
    """
    if data is None:
        return ConstraintSet((), source)
    if not isinstance(data, dict):
        raise ConstraintDeclarationError(
            f"the top level must be a mapping with 'version: 1' and 'constraints: [...]', not "
            f"{type(data).__name__}",
            source=source,
        )
    try:
        document = _FileSpec.model_validate(data)
    except PydanticValidationError as exc:
        location, problem = _first_error(exc)
        raise ConstraintDeclarationError(problem, source=source, field=location) from None
    if len(document.constraints) > MAX_CONSTRAINTS:
        raise ConstraintDeclarationError(
            f"declares {len(document.constraints)} constraints; at most {MAX_CONSTRAINTS} are "
            "allowed (static verification compares every pair)",
            source=source,
        )
    constraints: list[Constraint] = []
    seen: set[str] = set()
    for index, raw in enumerate(document.constraints):
        raw_id = raw.get("id")
        label = raw_id if isinstance(raw_id, str) else f"#{index + 1}"
        try:
            spec = _ConstraintSpec.model_validate(raw)
        except PydanticValidationError as exc:
            location, problem = _first_error(exc)
            raise ConstraintDeclarationError(
                problem, source=source, constraint_id=label, field=location
            ) from None
        if spec.id in seen:
            raise ConstraintDeclarationError(
                "the id is declared twice; constraint ids must be unique",
                source=source, constraint_id=spec.id, field="id",
            )  # fmt: skip
        seen.add(spec.id)
        constraints.append(_constraint(spec, source))
    return ConstraintSet(constraints, source)


def parse_constraints(text: str, *, source: str = DEFAULT_CONSTRAINTS_FILE) -> ConstraintSet:
    """Parse the text of a ``constraints.yaml`` file.

    Example::

        constraints = parse_constraints(Path("policies/constraints.yaml").read_text())

    Raises:
        ConstraintDeclarationError: invalid YAML or a wrong shape (names constraint and field).
        ConstraintSyntaxError: an expression outside the language (names the column).
    """
    return constraints_from_data(_load_yaml(text, source), source=source)


def load_constraints(
    constitution: Constitution, file: str = DEFAULT_CONSTRAINTS_FILE
) -> ConstraintSet:
    """The constraints a constitution bundle declares (an empty set when it has no file).

    Raises:
        ConstraintDeclarationError: the file is invalid.
    """
    if not constitution.has_file(file):
        return ConstraintSet((), file)
    try:
        text = constitution.read_text(file)
    except UnicodeDecodeError as exc:
        raise ConstraintDeclarationError(
            f"is not UTF-8 text ({exc.reason} at byte {exc.start})", source=file
        ) from None
    return parse_constraints(text, source=file)
