"""The policy input: the one JSON document the constitution's Rego policy decides on.

Contract (also in ``policies/README.md``)::

    {
      "sender":    {"id": str, "tenant_id": str, "role": str, "capabilities": [str, ...]},
      "recipient": {"id": str, "tenant_id": str, "role": str, "capabilities": [str, ...]} | null,
      "message": {
        "type":       "command" | "query" | ... (MessageType value),
        "priority":   "low" | "normal" | "high" | "critical",
        "tenant_id":  str,          # the tenant the message claims
        "size_bytes": int,          # bytes of the payload's canonical JSON encoding
        "topic":      str | null,   # set when the message was published to a topic
        "metadata":   {key: str}    # only the keys data.policy_input.metadata_keys names
      },
      "payload": {...}              # only the fields data.policy_input.payload_fields names
    }

``recipient`` is null when the bus decides a message for a topic or broadcast
as a whole rather than per recipient. ``capabilities`` are sorted so that the
same agent always produces the same document.

Why only a subset of metadata and payload: the decision cache is keyed by the
exact input, so every field in it multiplies the number of distinct decisions.
Per-message values (trace ids, timestamps, free text) would make every
message a cache miss and would carry content the policy has no business
reading. The constitution declares what its policy needs, in ``data.json``::

    "policy_input": {"metadata_keys": ["action", "proposed_by"], "payload_fields": ["amount"]}

A payload field is a dotted path (``"order.amount"``); it appears in the input
at the same path when the payload has it, and is absent otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ._data import DEFAULT_METADATA_KEYS, ConstitutionData
from ._key import CANONICAL_JSON_OPTIONS as _CANONICAL

if TYPE_CHECKING:
    from ..models import AgentMessage
    from ..pipeline._stage import StageContext
    from ..registry import AgentRecord


@dataclass(frozen=True, slots=True)
class PolicyInputSpec:
    """Which metadata keys and payload fields the policy sees."""

    metadata_keys: tuple[str, ...] = DEFAULT_METADATA_KEYS
    payload_fields: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def from_data(cls, data: ConstitutionData) -> PolicyInputSpec:
        return cls(
            metadata_keys=data.policy_input.metadata_keys,
            payload_fields=tuple(
                tuple(path.split(".")) for path in data.policy_input.payload_fields
            ),
        )

    def select_metadata(self, metadata: Mapping[str, str]) -> dict[str, str]:
        if not metadata:
            return {}
        return {key: metadata[key] for key in self.metadata_keys if key in metadata}

    def select_payload(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        if not self.payload_fields or not payload:
            return {}
        selected: dict[str, Any] = {}
        for path in self.payload_fields:
            value: Any = payload
            for part in path:
                if not isinstance(value, dict) or part not in value:
                    break
                value = value[part]
            else:
                target = selected
                for part in path[:-1]:
                    target = target.setdefault(part, {})
                target[path[-1]] = value
        return selected


def agent_document(record: AgentRecord) -> dict[str, Any]:
    """The ``sender`` / ``recipient`` part of the input for a registered agent."""
    return {
        "id": record.agent_id,
        "tenant_id": record.tenant_id,
        "role": record.role,
        "capabilities": sorted(record.capabilities),
    }


def build_policy_input(
    message: AgentMessage, ctx: StageContext, spec: PolicyInputSpec
) -> dict[str, Any]:
    """The policy input for ``message`` as the bus resolved it in ``ctx``.

    Example::

        doc = build_policy_input(message, StageContext(sender, recipient), PolicyInputSpec())
        doc["message"]["type"]  # "command"
    """
    return policy_input_document(
        ctx.sender,
        ctx.recipient,
        message_type=message.message_type.value,
        priority=message.priority.value,
        tenant_id=message.tenant_id,
        size_bytes=message.payload_size_bytes,
        topic=ctx.topic if ctx.topic is not None else message.topic,
        metadata=spec.select_metadata(message.metadata),
        payload=spec.select_payload(message.payload),
    )


def policy_input_document(
    sender: AgentRecord,
    recipient: AgentRecord | None,
    *,
    message_type: str,
    priority: str,
    tenant_id: str,
    size_bytes: int,
    topic: str | None = None,
    metadata: dict[str, str] | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A policy input from its parts (what cache warming uses; no message needed)."""
    return {
        "sender": agent_document(sender),
        "recipient": agent_document(recipient) if recipient is not None else None,
        "message": {
            "type": message_type,
            "priority": priority,
            "tenant_id": tenant_id,
            "size_bytes": size_bytes,
            "topic": topic,
            "metadata": metadata or {},
        },
        "payload": payload or {},
    }


class PolicyInputEncoder:
    """Encodes the policy input straight to its canonical JSON - the policy stage's hot path.

    ``encoder.encode(message, ctx) == canonical_json(build_policy_input(message, ctx, spec))``
    byte for byte (a property test holds it to that), in about two thirds of
    the time: the canonical top-level key order is written out by hand, and each
    agent's fragment is encoded once and reused. Fragments are keyed by every
    field they contain, so a re-registered agent with another role or tenant
    gets a new one; the memo is bounded and starts over when full.
    """

    __slots__ = ("_agents", "_max_agents", "spec")

    def __init__(self, spec: PolicyInputSpec, *, max_agents: int = 4_096) -> None:
        self.spec = spec
        self._max_agents = max_agents
        self._agents: dict[tuple[str, str, str, frozenset[str]], bytes] = {}

    def encode(self, message: AgentMessage, ctx: StageContext) -> bytes:
        metadata = self.spec.select_metadata(message.metadata)
        envelope = orjson.dumps(
            {
                "type": message.message_type.value,
                "priority": message.priority.value,
                "tenant_id": message.tenant_id,
                "size_bytes": message.payload_size_bytes,
                "topic": ctx.topic if ctx.topic is not None else message.topic,
                "metadata": metadata,
            },
            option=_CANONICAL,
        )
        payload = (
            orjson.dumps(self.spec.select_payload(message.payload), option=_CANONICAL)
            if self.spec.payload_fields
            else b"{}"
        )
        recipient = ctx.recipient
        return b"".join(
            (
                b'{"message":',
                envelope,
                b',"payload":',
                payload,
                b',"recipient":',
                self.agent_json(recipient) if recipient is not None else b"null",
                b',"sender":',
                self.agent_json(ctx.sender),
                b"}",
            )
        )

    def agent_json(self, record: AgentRecord) -> bytes:
        """The canonical JSON of :func:`agent_document` for ``record``, memoized."""
        key = (record.agent_id, record.tenant_id, record.role, record.capabilities)
        fragment = self._agents.get(key)
        if fragment is None:
            if len(self._agents) >= self._max_agents:
                self._agents.clear()
            fragment = orjson.dumps(agent_document(record), option=_CANONICAL)
            self._agents[key] = fragment
        return fragment
