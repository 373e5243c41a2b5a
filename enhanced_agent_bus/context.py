"""What a handler gets besides its message: who it is, and how to talk as itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .models import AgentMessage, DeliveryResult, MessageType

if TYPE_CHECKING:
    from .bus import AgentBus


class AgentContext:
    """Passed to every handler call as ``handler(message, context)``.

    Every helper sends *as this agent*: tenant and constitutional hash are
    filled from the registry, and the message passes the full pipeline.

    Example::

        async def coder(message, ctx):
            await ctx.publish("progress", {"step": "tests written"})
            return {"status": "done"}          # becomes the RESPONSE payload of request()
    """

    __slots__ = ("agent_id", "bus", "message")

    def __init__(self, bus: AgentBus, agent_id: str, message: AgentMessage) -> None:
        self.bus = bus
        self.agent_id = agent_id
        self.message = message

    async def send(
        self, to_agent: str, payload: dict[str, Any] | None = None, **fields: Any
    ) -> DeliveryResult:
        """Send a message from this agent to ``to_agent``."""
        return await self.bus.send_message(
            self.bus.message(self.agent_id, to_agent, payload, **fields)
        )

    async def request(
        self,
        to_agent: str,
        payload: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> AgentMessage:
        """Ask ``to_agent`` and wait for its reply (a QUERY unless ``message_type`` is given)."""
        fields.setdefault("message_type", MessageType.QUERY)
        message = self.bus.message(self.agent_id, to_agent, payload, **fields)
        return await self.bus.request(message, timeout=timeout)

    async def publish(
        self, topic: str, payload: dict[str, Any] | None = None, **fields: Any
    ) -> list[DeliveryResult]:
        """Publish to ``topic`` (subscribers in this agent's tenant only); an EVENT by default."""
        fields.setdefault("message_type", MessageType.EVENT)
        message = self.bus.message(self.agent_id, None, payload, topic=topic, **fields)
        return await self.bus.publish(topic, message)

    async def broadcast(
        self, payload: dict[str, Any] | None = None, **fields: Any
    ) -> list[DeliveryResult]:
        """Send to every other agent of this agent's tenant; a NOTIFICATION by default."""
        fields.setdefault("message_type", MessageType.NOTIFICATION)
        return await self.bus.broadcast(self.bus.message(self.agent_id, None, payload, **fields))

    async def reply(self, payload: dict[str, Any] | None = None, **fields: Any) -> DeliveryResult:
        """Send a RESPONSE to the sender of the message being handled, correlated to it."""
        fields.setdefault("message_type", MessageType.RESPONSE)
        fields.setdefault("correlation_id", self.message.correlation_id or self.message.message_id)
        return await self.send(self.message.from_agent, payload, **fields)
