"""constraints.yaml: schema, selectors, variables, and errors that name constraint and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from constraint_helpers import SPEND, constraints, write_bundle

from enhanced_agent_bus.constitution import load_bundle
from enhanced_agent_bus.constraints import (
    MISSING,
    ConstraintDeclarationError,
    ConstraintSyntaxError,
    VarType,
    load_constraints,
    parse_constraints,
)
from enhanced_agent_bus.errors import ConfigurationError
from enhanced_agent_bus.models import MessageType


def test_a_declaration_loads_with_types_sources_and_defaults() -> None:
    loaded = constraints(SPEND)
    assert loaded.ids == ("spend",)
    spend = loaded["spend"]
    assert spend.message_types == frozenset({MessageType.COMMAND})
    assert spend.when_text == 'action == "transfer"'
    assert spend.selector_names == ("action",)
    budget = spend.variables["budget"]
    assert budget.type is VarType.REAL
    assert [s.text for s in budget.sources] == ["metadata.budget", "payload.budget"]
    assert budget.default is MISSING
    assert spend.variables["approvals"].default == 0
    assert [a.text for a in spend.assertions] == [
        "amount <= budget",
        "amount > 10000 implies approvals >= 2",
    ]
    assert spend.assertions[0].explain == "within budget"
    assert spend.assertions[1].names == ("amount", "approvals")
    assert loaded.for_message_type(MessageType.COMMAND) == (spend,)
    assert loaded.for_message_type(MessageType.QUERY) == ()


def test_omitted_message_types_select_every_type() -> None:
    loaded = constraints(
        """
        constraints:
          - id: ceiling
            description: small payloads
            vars: {size: {field: message.payload_size_bytes, type: Int}}
            assert: [size <= 1000]
        """
    )
    assert loaded["ceiling"].message_types == frozenset(MessageType)


def test_empty_file_and_missing_file_mean_no_constraints(tmp_path: Path) -> None:
    assert len(parse_constraints("")) == 0
    assert len(parse_constraints("version: 1\nconstraints: []\n")) == 0
    bundle = load_bundle(write_bundle(tmp_path / "b", None))
    assert len(load_constraints(bundle)) == 0


def test_the_default_constitution_declares_constraints() -> None:
    loaded = load_constraints(load_bundle())
    assert {
        "spend_within_budget",
        "large_transfer_approvals",
        "prod_deploy_change_ticket",
        "scaling_rate_of_change",
        "command_payload_ceiling",
    } <= set(loaded.ids)


def _entry(**overrides: str) -> str:
    fields = {
        "id": "c1",
        "description": "d",
        "vars": "{x: {field: payload.x, type: Int}}",
        "assert": "[x > 0]",
    }
    fields.update(overrides)
    body = "".join(f"    {k}: {v}\n" for k, v in fields.items() if v != "<omit>")
    return "version: 1\nconstraints:\n  -\n" + body


@pytest.mark.parametrize(
    ("text", "constraint_id", "field", "fragment"),
    [
        (_entry(description="<omit>"), "c1", "description", "Field required"),
        (_entry(id="'Bad Id'"), "Bad Id", "id", "should match pattern"),
        (_entry(vars="{x: {field: payload.x, type: Float}}"), "c1", "vars.x.type", "Float"),
        (
            _entry(vars="{x: {field: payload.x, type: Int, extra: 1}}"),
            "c1",
            "vars.x.extra",
            "Extra",
        ),
        (_entry(vars="{x: {field: body.x, type: Int}}"), "c1", "vars.x.field", "unknown root"),
        (
            _entry(vars="{x: {field: payload.x, type: Int, default: 'zero'}}"),
            "c1",
            "vars.x.default",
            "not a Int",
        ),
        (
            _entry(vars="{x: {field: message.priority, type: Int}}"),
            "c1",
            "vars.x.type",
            "always a String",
        ),
        (_entry(vars="{and: {field: payload.x, type: Int}}"), "c1", "vars.and", "keyword"),
        (
            _entry(vars="{x: {field: payload.x, type: Int}, y: {field: payload.y, type: Int}}"),
            "c1",
            "vars",
            "not used",
        ),
        (_entry(**{"assert": "[]"}), "c1", "assert", "at least 1"),
        (_entry(**{"assert": "[x.y > 0]"}), "c1", "assert[0]", "attribute access"),
        (_entry(**{"assert": "[x]"}), "c1", "assert[0]", "must be a condition"),
        (
            _entry(applies_to="{message_types: [commnd]}"),
            "c1",
            "applies_to.message_types",
            "unknown message type 'commnd'",
        ),
        (_entry(applies_to="{when: 'x >'}"), "c1", "applies_to.when", "expected a value"),
        (
            _entry(agrees_with="[{var: nope, data: limits.x}]"),
            "c1",
            "agrees_with[0].var",
            "declared Int or Real",
        ),
    ],
)
def test_schema_errors_name_the_constraint_and_field(
    text: str, constraint_id: str, field: str, fragment: str
) -> None:
    with pytest.raises(ConstraintDeclarationError) as caught:
        parse_constraints(text, source="bundle/constraints.yaml")
    error = caught.value
    assert error.constraint_id == constraint_id
    assert error.field == field
    assert fragment in str(error)
    assert str(error).startswith(f"bundle/constraints.yaml, constraint {constraint_id!r}")
    assert isinstance(error, ConfigurationError)


def test_syntax_errors_in_a_file_name_constraint_expression_and_column() -> None:
    text = _entry(**{"assert": "[x > 0, 'x(1) > 0']"})
    with pytest.raises(ConstraintSyntaxError) as caught:
        parse_constraints(text)
    error = caught.value
    assert (error.constraint_id, error.field, error.column) == ("c1", "assert[1]", 2)
    assert "'x(1) > 0'" in str(error)
    assert "function calls are not allowed" in str(error)


def test_duplicate_ids_are_refused() -> None:
    entry = (
        "  - {id: same, description: d, vars: {x: {field: payload.x, type: Int}}, "
        "assert: [x > 0]}\n"
    )
    with pytest.raises(ConstraintDeclarationError, match="declared twice") as caught:
        parse_constraints("version: 1\nconstraints:\n" + entry + entry)
    assert caught.value.constraint_id == "same"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("version: 2\nconstraints: []\n", "version"),
        ("constraints: []\n", "version"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("version: 1\nconstraints: [\n", "not valid YAML at line"),
        ("version: 1\nversion: 1\nconstraints: []\n", "duplicate key 'version'"),
        ("version: 1\nx: &a 1\ny: *a\n", "aliases"),
        ("version: 1\nconstraints: []\nextra: 1\n", "Extra inputs"),
    ],
)
def test_file_level_errors(text: str, fragment: str) -> None:
    with pytest.raises(ConstraintDeclarationError) as caught:
        parse_constraints(text)
    assert fragment in str(caught.value)


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", None)
    (root / "constraints.yaml").write_bytes(b"version: 1\n\xff\xfe")
    with pytest.raises(ConstraintDeclarationError, match="not UTF-8"):
        load_constraints(load_bundle(root))
