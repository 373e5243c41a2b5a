"""Builders shared by the constraint tests: messages, participants, bundles, constraint sets."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import orjson

from enhanced_agent_bus.constraints import ConstraintSet, parse_constraints
from enhanced_agent_bus.models import AgentMessage, MessageType
from enhanced_agent_bus.registry import AgentRecord


async def _handler(message: AgentMessage, context: Any) -> None:
    return None


def agent(
    agent_id: str = "planner-1", role: str = "planner", tenant_id: str = "acme"
) -> AgentRecord:
    """A registry record; constraint checks read only its id, tenant and role."""
    return AgentRecord(
        agent_id=agent_id,
        tenant_id=tenant_id,
        role=role,
        capabilities=frozenset(),
        handler=_handler,
        mailbox=None,  # type: ignore[arg-type]
    )


SENDER = agent("planner-1", "planner")
RECIPIENT = agent("worker-1", "worker")


def message(
    payload: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    message_type: MessageType = MessageType.COMMAND,
    **fields: Any,
) -> AgentMessage:
    return AgentMessage(
        from_agent=fields.pop("from_agent", "planner-1"),
        to_agent=fields.pop("to_agent", "worker-1"),
        tenant_id=fields.pop("tenant_id", "acme"),
        message_type=message_type,
        payload=payload or {},
        metadata=metadata or {},
        **fields,
    )


def constraints(yaml_body: str) -> ConstraintSet:
    """Parse a constraints document given without the ``version`` line (dedented)."""
    return parse_constraints("version: 1\n" + textwrap.dedent(yaml_body))


def write_bundle(
    root: Path, constraints_yaml: str | None, data: dict[str, Any] | None = None
) -> Path:
    """A bundle with a data document and (optionally) a constraints.yaml."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.json").write_bytes(orjson.dumps(data if data is not None else {}))
    if constraints_yaml is not None:
        (root / "constraints.yaml").write_text(
            "version: 1\n" + textwrap.dedent(constraints_yaml), encoding="utf-8"
        )
    return root


SPEND = """
constraints:
  - id: spend
    description: A transfer spends at most its budget.
    applies_to:
      message_types: [command]
      when: action == "transfer"
    vars:
      action: {field: payload.action, type: String}
      amount: {field: payload.amount, type: Real}
      budget: {field: [metadata.budget, payload.budget], type: Real}
      approvals: {field: metadata.approvals, type: Int, default: 0}
    assert:
      - expr: amount <= budget
        explain: within budget
      - amount > 10000 implies approvals >= 2
"""
