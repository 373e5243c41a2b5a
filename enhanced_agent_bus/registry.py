"""Who is registered on the bus: agents, their tenants and roles, and topic subscriptions."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from .errors import AgentNotRegisteredError, DuplicateAgentError, MessageValidationError
from .models import AGENT_ID_PATTERN, TOPIC_PATTERN, AgentMessage

if TYPE_CHECKING:
    from .context import AgentContext
    from .mailbox import Mailbox

#: ``async def handler(message, context) -> dict | None``
Handler: TypeAlias = Callable[[AgentMessage, "AgentContext"], Awaitable[dict[str, Any] | None]]

_AGENT_ID = re.compile(AGENT_ID_PATTERN)
_TOPIC = re.compile(TOPIC_PATTERN)


def check_identifier(value: object, what: str) -> str:
    """Raise a clear error unless ``value`` is a valid agent or tenant id."""
    if not isinstance(value, str) or not _AGENT_ID.match(value):
        raise MessageValidationError(
            f"{what} {value!r} is not a valid id: use 1-128 characters from "
            "[A-Za-z0-9_.:-], starting with a letter or digit."
        )
    return value


def check_topic(value: object) -> str:
    if not isinstance(value, str) or not _TOPIC.match(value):
        raise MessageValidationError(
            f"topic {value!r} is not valid: use 1-255 characters from [A-Za-z0-9_.:/-], "
            "starting with a letter or digit."
        )
    return value


@dataclass(slots=True, eq=False)
class AgentRecord:
    """One registered agent."""

    agent_id: str
    tenant_id: str
    role: str
    capabilities: frozenset[str]
    handler: Handler
    mailbox: Mailbox
    topics: set[str] = field(default_factory=set)


class AgentRegistry:
    """In-memory registry (a Redis-backed one joins processes in the scale-out issue)."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentRecord] = {}
        #: The records by agent id, read-only: the routing hot path looks ids up here
        #: directly (a C-level ``get`` instead of a method call per lookup).
        self.records: Mapping[str, AgentRecord] = self._agents
        # dicts as ordered sets: delivery order follows subscription order.
        self._by_tenant: dict[str, dict[str, None]] = {}
        self._subscribers: dict[str, dict[str, None]] = {}

    def __len__(self) -> int:
        return len(self._agents)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._agents

    def __iter__(self) -> Iterator[AgentRecord]:
        return iter(list(self._agents.values()))

    def add(self, record: AgentRecord) -> None:
        if record.agent_id in self._agents:
            raise DuplicateAgentError(record.agent_id)
        self._agents[record.agent_id] = record
        self._by_tenant.setdefault(record.tenant_id, {})[record.agent_id] = None

    def remove(self, agent_id: str) -> AgentRecord:
        record = self.get(agent_id)
        del self._agents[agent_id]
        tenant_members = self._by_tenant[record.tenant_id]
        tenant_members.pop(agent_id, None)
        if not tenant_members:
            del self._by_tenant[record.tenant_id]
        for topic in record.topics:
            self._unsubscribe_index(topic, agent_id)
        record.topics.clear()
        return record

    def get(self, agent_id: str) -> AgentRecord:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise AgentNotRegisteredError(agent_id) from None

    def find(self, agent_id: str | None) -> AgentRecord | None:
        if agent_id is None:
            return None
        return self._agents.get(agent_id)

    def tenant_members(self, tenant_id: str) -> list[AgentRecord]:
        return [self._agents[a] for a in self._by_tenant.get(tenant_id, ())]

    def subscribe(self, agent_id: str, topic: str) -> None:
        record = self.get(agent_id)
        check_topic(topic)
        record.topics.add(topic)
        self._subscribers.setdefault(topic, {})[agent_id] = None

    def unsubscribe(self, agent_id: str, topic: str) -> None:
        record = self.get(agent_id)
        record.topics.discard(topic)
        self._unsubscribe_index(topic, agent_id)

    def subscribers(self, topic: str) -> list[AgentRecord]:
        return [self._agents[a] for a in self._subscribers.get(topic, ())]

    def _unsubscribe_index(self, topic: str, agent_id: str) -> None:
        members = self._subscribers.get(topic)
        if members is not None:
            members.pop(agent_id, None)
            if not members:
                del self._subscribers[topic]
