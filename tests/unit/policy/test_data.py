from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from enhanced_agent_bus.constitution import Constitution, load_bundle
from enhanced_agent_bus.errors import ConfigurationError
from enhanced_agent_bus.models import MessageType
from enhanced_agent_bus.pipeline import cross_tenant_rules
from enhanced_agent_bus.policy import parse_constitution_data, validate_data_document


def test_default_data_document_is_valid(constitution: Constitution) -> None:
    data = parse_constitution_data(constitution)
    assert set(data.roles) == {"planner", "worker", "reviewer", "governance", "auditor"}
    assert data.limits.max_payload_bytes[MessageType.HEARTBEAT] == 256
    assert set(data.limits.max_payload_bytes) == set(MessageType)
    assert data.cross_tenant.allows("acme", "acme-audit", MessageType.EVENT)
    assert not data.cross_tenant.allows("acme", "acme-audit", MessageType.COMMAND)
    assert not data.cross_tenant.allows("acme-audit", "acme", MessageType.EVENT)


def test_core_tenant_stage_reads_the_same_allow_list(constitution: Constitution) -> None:
    data = parse_constitution_data(constitution)
    core = {
        (from_tenant, to_tenant, message_type)
        for from_tenant, to_tenant, types in cross_tenant_rules(constitution.data_document())
        for message_type in types or ()
    }
    mine = {
        (rule.from_tenant, rule.to_tenant, message_type)
        for rule in data.cross_tenant.allow
        for message_type in rule.message_types or ()
    }
    assert core == mine


def test_entry_without_types_opens_every_type() -> None:
    data = validate_data_document(
        {"cross_tenant": {"allow": [{"from_tenant": "a", "to_tenant": "b"}]}}, origin="d"
    )
    assert all(data.cross_tenant.allows("a", "b", t) for t in MessageType)
    assert not data.cross_tenant.allows("b", "a", MessageType.EVENT)


def test_custom_constitution_may_omit_every_section_and_add_its_own() -> None:
    data = validate_data_document({"budgets": {"acme": 10}}, origin="d")
    assert data.roles == {}
    assert data.model_extra == {"budgets": {"acme": 10}}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"roles": []}, "at roles: Input should be a JSON object (got [])"),
        (
            {"roles": {"p": {"actions": "propose"}}},
            "at roles.p.actions: Input should be a JSON array",
        ),
        ({"roles": {"p": {"act": []}}}, "at roles.p.act: Extra inputs are not permitted"),
        (
            {"roles": {"p": {"send": {"*": ["cmd"]}}}},
            "at roles.p.send.*.0: Input should be 'command'",
        ),
        ({"roles": {"p": {"send": {"q": ["command"]}}}}, "roles.p.send names role 'q'"),
        ({"roles": {"p": {}}, "governance_roles": ["g"]}, "governance_roles names role 'g'"),
        ({"governance_roles": "governance"}, "at governance_roles: Input should be a JSON array"),
        (
            {"limits": {"max_payload_bytes": {"command": "1024"}}},
            "at limits.max_payload_bytes.command: Input should be a JSON integer (got '1024')",
        ),
        ({"limits": {"max_payload_bytes": {"command": True}}}, "Input should be a JSON integer"),
        ({"limits": {"max_payload_bytes": {"command": -1}}}, "greater than or equal to 0"),
        ({"limits": {"max_payload_bytes": {"bulk": 1}}}, "at limits.max_payload_bytes.bulk"),
        ({"cross_tenant": {"allow": {"from_tenant": "a"}}}, "at cross_tenant.allow"),
        ({"cross_tenant": {"allow": [{"from_tenant": "a"}]}}, "cross_tenant.allow.0.to_tenant"),
        (
            {"cross_tenant": {"allow": [{"from_tenant": "a", "to_tenant": "a"}]}},
            "from_tenant and to_tenant are both 'a'",
        ),
        (
            {
                "cross_tenant": {
                    "allow": [{"from_tenant": "a", "to_tenant": "b", "message_types": []}]
                }
            },
            "cross_tenant.allow.0.message_types",
        ),
        (
            {"separation_of_powers": {"branches": {"a": ["x"], "b": ["x"]}}},
            "action 'x' belongs to two branches ('a' and 'b')",
        ),
        ({"policy_input": {"payload_fields": ["a..b"]}}, "at policy_input.payload_fields.0"),
    ],
)
def test_wrong_shapes_name_the_field(document: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        validate_data_document(document, origin="bundle/data.json")
    message = str(info.value)
    assert "'bundle/data.json' does not have the shape the constitution needs" in message
    assert expected in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"{not json", "is not valid JSON"), (b"[1, 2]", "must hold a JSON object, not list")],
)
def test_data_document_that_is_not_an_object(tmp_path: Path, content: bytes, expected: str) -> None:
    (tmp_path / "data.json").write_bytes(content)
    with pytest.raises(ConfigurationError, match=expected):
        parse_constitution_data(load_bundle(tmp_path))


def test_bundle_without_data_document_is_an_empty_document(tmp_path: Path) -> None:
    (tmp_path / "policy.rego").write_bytes(orjson.dumps("unused"))
    data = parse_constitution_data(load_bundle(tmp_path))
    assert data.roles == {}
