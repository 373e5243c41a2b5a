"""The one exception hierarchy of enhanced-agent-bus.

::

    AgentBusError
      ├─ ConfigurationError (ValueError)          bad settings or constitution bundle
      ├─ BusStateError (RuntimeError)             lifecycle misuse
      │    └─ BusNotStartedError                  send before start() / after stop()
      ├─ AgentNotRegisteredError (LookupError)
      ├─ DuplicateAgentError (ValueError)
      ├─ MessageValidationError (ValueError)      a message or reply that is malformed
      ├─ MessageDeniedError                       carries the DeliveryResult
      │    ├─ ConstitutionalHashMismatchError
      │    ├─ TenantIsolationError
      │    └─ BackpressureError
      ├─ MessageTimeoutError (TimeoutError)       request() got no reply in time
      ├─ DeliveryFailedError                      the handler failed; the message is dead-lettered
      └─ BackendUnavailableError                  a backend the bus depends on is down

A denial is a normal :class:`~enhanced_agent_bus.DeliveryResult` from
``send_message``; only ``request()`` raises :class:`MessageDeniedError`, because
it has no reply to give. Every message names the offending value, what was
expected, and what to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import DeadLetter, DeliveryResult


class AgentBusError(Exception):
    """Base class of every error raised by enhanced-agent-bus."""


class ConfigurationError(AgentBusError, ValueError):
    """Settings or a constitution bundle are invalid."""


class BusStateError(AgentBusError, RuntimeError):
    """The bus was used in a lifecycle state that does not allow the call."""


class BusNotStartedError(BusStateError):
    """A message was sent while the bus is not running."""

    def __init__(self, state: str, action: str = "send messages") -> None:
        super().__init__(
            f"AgentBus is {state}; it must be running to {action}. "
            "Use 'async with AgentBus() as bus:' or 'await bus.start()' first, "
            "and create a new bus after stop()."
        )
        self.state = state


class AgentNotRegisteredError(AgentBusError, LookupError):
    """An agent id is not in the registry."""

    def __init__(self, agent_id: str, *, result: DeliveryResult | None = None) -> None:
        super().__init__(
            f"Agent {agent_id!r} is not registered on this bus. "
            "Call 'await bus.register_agent(agent_id, handler, tenant_id=...)' first, "
            "or check the spelling of the id."
        )
        self.agent_id = agent_id
        self.result = result


class DuplicateAgentError(AgentBusError, ValueError):
    """An agent id is already registered."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(
            f"Agent {agent_id!r} is already registered. Agent ids are unique per bus: "
            "pick another id or 'await bus.unregister_agent(...)' the existing one first."
        )
        self.agent_id = agent_id


class MessageValidationError(AgentBusError, ValueError):
    """A message, payload or reply does not have the required shape."""


class MessageDeniedError(AgentBusError):
    """The validation pipeline denied a message that needed an answer.

    ``result`` is the :class:`DeliveryResult` with the stage, code and reasons.
    """

    def __init__(self, result: DeliveryResult) -> None:
        reasons = "; ".join(f"[{r.stage}/{r.code}] {r.message}" for r in result.reasons)
        super().__init__(f"Message {result.message_id!r} was {result.status.value}: {reasons}")
        self.result = result


class ConstitutionalHashMismatchError(MessageDeniedError):
    """The message carries a constitutional hash the bus does not accept."""


class TenantIsolationError(MessageDeniedError):
    """The message would cross a tenant boundary."""


class BackpressureError(MessageDeniedError):
    """The recipient's mailbox is full and its policy rejects new messages."""


class MessageTimeoutError(AgentBusError, TimeoutError):
    """``request()`` received no reply within its timeout."""

    def __init__(self, message_id: str, to_agent: str, timeout_s: float) -> None:
        super().__init__(
            f"No reply to message {message_id!r} from agent {to_agent!r} within {timeout_s:g} s. "
            "Raise the timeout, or check that the handler returns (its retries and "
            "handler_timeout_s count against this deadline)."
        )
        self.message_id = message_id
        self.to_agent = to_agent
        self.timeout_s = timeout_s


class DeliveryFailedError(AgentBusError):
    """The recipient's handler failed on every attempt; the message is dead-lettered."""

    def __init__(self, dead_letter: DeadLetter) -> None:
        super().__init__(
            f"Agent {dead_letter.recipient!r} failed to handle message "
            f"{dead_letter.message.message_id!r} after {dead_letter.attempts} attempt(s): "
            f"{dead_letter.cause}. The message is in bus.dead_letters()."
        )
        self.dead_letter = dead_letter


class BackendUnavailableError(AgentBusError):
    """A backend the bus depends on (policy engine, Redis, audit sink) is unavailable."""
