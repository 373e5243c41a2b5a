"""Real handlers and builders shared by the end-to-end tests (no fakes of our own code)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from enhanced_agent_bus import AgentBus, AgentContext, AgentMessage, MessageType, Priority
from enhanced_agent_bus.constitution import default_bundle_path

#: The default constitution's data document, read the way a policy author reads it.
DEFAULT_DATA: Final[dict[str, Any]] = orjson.loads(
    (default_bundle_path() / "data.json").read_bytes()
)


class Inbox:
    """A real handler: records what it receives, replies with an echo, and can be awaited."""

    def __init__(self) -> None:
        self.messages: list[AgentMessage] = []
        self._arrived = asyncio.Event()

    async def __call__(self, message: AgentMessage, context: AgentContext) -> dict[str, Any]:
        self.messages.append(message)
        self._arrived.set()
        return {"echo_of": message.message_id, "by": context.agent_id}

    async def wait_for(self, message_id: str, timeout_s: float = 2.0) -> AgentMessage:
        """The received message with ``message_id``, waiting for its worker if needed."""
        async with asyncio.timeout(timeout_s):
            while True:
                for message in self.messages:
                    if message.message_id == message_id:
                        return message
                self._arrived.clear()
                await self._arrived.wait()


async def always_fails(message: AgentMessage, context: AgentContext) -> dict[str, Any]:
    """A handler whose tool is broken: every attempt raises."""
    raise RuntimeError("tool crashed")


@dataclass(frozen=True)
class Send:
    """One message a test sends: who, to whom, and its shape."""

    sender: str
    recipient: str
    message_type: MessageType = MessageType.COMMAND
    priority: Priority = Priority.NORMAL
    metadata: dict[str, str] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=lambda: {"task": "e2e"})

    def build(self, bus: AgentBus) -> AgentMessage:
        return bus.message(
            self.sender,
            self.recipient,
            self.payload,
            message_type=self.message_type,
            priority=self.priority,
            metadata=self.metadata,
        )
