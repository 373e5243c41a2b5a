from __future__ import annotations

from collections.abc import Callable

from enhanced_agent_bus.constitution import Constitution
from enhanced_agent_bus.models import AgentMessage, MessageType, Priority
from enhanced_agent_bus.pipeline import StageContext
from enhanced_agent_bus.policy import (
    PolicyInputSpec,
    build_policy_input,
    parse_constitution_data,
    validate_data_document,
)
from enhanced_agent_bus.registry import AgentRecord

AgentFactory = Callable[..., AgentRecord]


def test_input_document_has_the_documented_shape(agent: AgentFactory) -> None:
    sender = agent("planner-1", "planner", capabilities=("plan", "assign"))
    recipient = agent("worker-1", "worker")
    message = AgentMessage(
        from_agent="planner-1",
        to_agent="worker-1",
        tenant_id="acme",
        message_type=MessageType.QUERY,
        priority=Priority.HIGH,
        payload={"task": "x"},
        metadata={"action": "propose", "trace_id": "t-1"},
    )
    doc = build_policy_input(message, StageContext(sender, recipient), PolicyInputSpec())
    assert doc == {
        "sender": {
            "id": "planner-1",
            "tenant_id": "acme",
            "role": "planner",
            "capabilities": ["assign", "plan"],
        },
        "recipient": {"id": "worker-1", "tenant_id": "acme", "role": "worker", "capabilities": []},
        "message": {
            "type": "query",
            "priority": "high",
            "tenant_id": "acme",
            "size_bytes": len(b'{"task":"x"}'),
            "topic": None,
            "metadata": {"action": "propose"},
        },
        "payload": {},
    }


def test_topic_message_without_recipient(agent: AgentFactory) -> None:
    sender = agent("worker-1", "worker")
    message = AgentMessage(
        from_agent="worker-1", tenant_id="acme", topic="progress", message_type=MessageType.EVENT
    )
    doc = build_policy_input(message, StageContext(sender, None, "progress"), PolicyInputSpec())
    assert doc["recipient"] is None
    assert doc["message"]["topic"] == "progress"


def test_declared_payload_fields_are_selected_by_dotted_path(agent: AgentFactory) -> None:
    data = validate_data_document(
        {"policy_input": {"metadata_keys": ["ticket"], "payload_fields": ["amount", "order.env"]}},
        origin="data.json",
    )
    spec = PolicyInputSpec.from_data(data)
    message = AgentMessage(
        from_agent="planner-1",
        tenant_id="acme",
        payload={"amount": 5, "order": {"env": "prod", "secret": "x"}, "notes": "free text"},
        metadata={"ticket": "CHG-1", "action": "propose"},
    )
    sender = agent("planner-1", "planner")
    doc = build_policy_input(message, StageContext(sender, None), spec)
    assert doc["payload"] == {"amount": 5, "order": {"env": "prod"}}
    assert doc["message"]["metadata"] == {"ticket": "CHG-1"}


def test_absent_payload_fields_are_left_out(agent: AgentFactory) -> None:
    spec = PolicyInputSpec(payload_fields=(("amount",), ("order", "env")))
    message = AgentMessage(from_agent="p", tenant_id="acme", payload={"order": "not an object"})
    doc = build_policy_input(message, StageContext(agent("p", "planner"), None), spec)
    assert doc["payload"] == {}


def test_default_constitution_declares_action_and_proposer(constitution: Constitution) -> None:
    spec = PolicyInputSpec.from_data(parse_constitution_data(constitution))
    assert spec.metadata_keys == ("action", "proposed_by")
    assert spec.payload_fields == ()
