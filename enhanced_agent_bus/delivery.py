"""Calling a handler: timeout, retries with backoff, the reply, and dead-lettering.

A handler that raises or overruns ``handler_timeout_s`` is retried
``retry.max_retries`` times with exponential backoff; then the message goes
to the dead-letter store with its cause and a waiting ``request()`` fails
with :class:`DeliveryFailedError`. An invalid reply (not a JSON object, too
large) is dead-lettered at once: retrying a deterministic bug helps no one.
The bus keeps running whatever a handler does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .constitution import HashRotation
from .context import AgentContext
from .errors import DeliveryFailedError, MessageValidationError
from .mailbox import Envelope
from .models import AgentMessage, DeadLetter, MessageType, validate_json_object
from .settings import BusSettings
from .timers import TimerWheel

if TYPE_CHECKING:
    from .bus import AgentBus
    from .registry import AgentRecord

logger = logging.getLogger(__name__)


class HandlerWatchdog:
    """Enforces ``handler_timeout_s`` for one agent's worker with one lazy timer.

    Like ``asyncio.timeout()`` it cancels the worker task at the deadline and the
    dispatcher turns its own cancellation into a timeout; unlike it, it does not
    arm a loop timer per message. The timer re-arms itself for the handler call in
    flight when it fires, so a stream of fast handlers costs one timer per
    ``handler_timeout_s``, not one per message.
    """

    __slots__ = ("_armed", "_deadline", "_timers", "baseline", "expired", "task")

    def __init__(self, timers: TimerWheel) -> None:
        self._timers = timers
        #: The worker task whose handler call is in flight; the dispatcher sets it back
        #: to None when the call returns (a plain store: this runs once per message).
        self.task: asyncio.Task[Any] | None = None
        self._deadline = 0.0
        self._armed = False
        self.expired = False
        #: The task's cancellation count just before the watchdog cancelled it: a
        #: cancellation beyond it came from elsewhere and must propagate.
        self.baseline = 0

    def begin(self, task: asyncio.Task[Any], timeout_s: float) -> None:
        self.task = task
        self._deadline = self._timers.clock() + timeout_s
        self.expired = False
        if not self._armed:
            self._armed = True
            self._timers.schedule(timeout_s, self._fire)

    def _fire(self) -> None:
        task = self.task
        if task is None:
            self._armed = False
            return
        remaining = self._deadline - self._timers.clock()
        if remaining > 0:
            self._timers.schedule(remaining, self._fire)
            return
        self._armed = False
        self.expired = True
        self.baseline = task.cancelling()
        task.cancel()


class Dispatcher:
    """Delivers envelopes from one agent's mailbox to its handler."""

    __slots__ = (
        "_bus",
        "_dead_letter",
        "_max_payload_bytes",
        "_record",
        "_retry",
        "_rotation",
        "_timeout_s",
        "_watchdog",
    )

    def __init__(
        self,
        bus: AgentBus,
        record: AgentRecord,
        settings: BusSettings,
        dead_letter: Callable[[DeadLetter], None],
        rotation: HashRotation,
        timers: TimerWheel,
    ) -> None:
        self._bus = bus
        self._record = record
        # Settings are immutable for a bus's life: read once, not per message.
        self._timeout_s = settings.handler_timeout_s
        self._retry = settings.retry
        self._max_payload_bytes = settings.max_payload_bytes
        self._dead_letter = dead_letter
        #: Replies carry the hash active when they are made.
        self._rotation = rotation
        self._watchdog = HandlerWatchdog(timers)

    async def deliver(self, envelope: Envelope, task: asyncio.Task[Any]) -> None:
        """Call the handler for ``envelope`` in ``task`` (the mailbox worker's own task)."""
        message = envelope.message
        record = self._record
        timeout_s = self._timeout_s
        watchdog = self._watchdog
        attempts = 0
        while True:
            attempts += 1
            if timeout_s is not None:
                watchdog.begin(task, timeout_s)
            try:
                value = await record.handler(
                    message, AgentContext(self._bus, record.agent_id, message)
                )
            except asyncio.CancelledError:
                if not (
                    timeout_s is not None
                    and watchdog.expired
                    and task.uncancel() <= watchdog.baseline
                ):
                    # The bus is stopping past its drain deadline: record, keep cancelling.
                    self.fail(
                        envelope, "handler cancelled while the bus stopped", "cancelled", attempts
                    )
                    raise
                cause, code = f"handler exceeded handler_timeout_s={timeout_s}", "handler_timeout"
            except Exception as exc:
                if timeout_s is not None and watchdog.expired:
                    task.uncancel()  # the handler turned our cancel into an error: withdraw it
                    cause, code = (
                        f"handler exceeded handler_timeout_s={timeout_s}",
                        "handler_timeout",
                    )
                else:
                    cause, code = f"{type(exc).__name__}: {exc}", "handler_error"
            else:
                if timeout_s is not None and watchdog.expired:
                    task.uncancel()  # the handler swallowed our cancel and returned: withdraw it
                cause = code = ""
            finally:
                watchdog.task = None
            if code:
                logger.debug(
                    "handler of %s failed on %s (attempt %d): %s",
                    record.agent_id,
                    message.message_id,
                    attempts,
                    code,
                    extra={"agent_id": record.agent_id, "message_id": message.message_id},
                )
                if attempts > self._retry.max_retries:
                    self.fail(envelope, cause, code, attempts)
                    return
                await asyncio.sleep(self._retry.delay_s(attempts))
                continue
            reply = envelope.reply
            if reply is not None and not reply.done():
                self._resolve_reply(envelope, reply, value, attempts)
            return

    def _resolve_reply(
        self,
        envelope: Envelope,
        reply: asyncio.Future[AgentMessage],
        value: object,
        attempts: int,
    ) -> None:
        message = envelope.message
        try:
            payload, size = validate_json_object(value, what="reply")
        except ValueError as exc:
            self.fail(
                envelope, f"{self._describe_reply(message)}: {exc}", "invalid_reply", attempts
            )
            return
        limit = self._max_payload_bytes
        if size > limit:
            self.fail(
                envelope,
                f"{self._describe_reply(message)} is {size} bytes, over "
                f"max_payload_bytes={limit}; return less data",
                "invalid_reply",
                attempts,
            )
            return
        record = self._record
        response = AgentMessage.from_trusted_fields(
            record.agent_id,
            message.from_agent,
            record.tenant_id,
            payload,
            size,
            self._rotation.active_hash,
            MessageType.RESPONSE,
            message.correlation_id or message.message_id,
        )
        reply.set_result(response)

    def _describe_reply(self, message: AgentMessage) -> str:
        return f"reply of agent {self._record.agent_id!r} to message {message.message_id!r}"

    def fail(self, envelope: Envelope, cause: str, code: str, attempts: int) -> None:
        """Dead-letter ``envelope`` and fail the ``request()`` waiting on it, if any."""
        dead_letter = DeadLetter(
            message=envelope.message,
            recipient=self._record.agent_id,
            cause=cause,
            code=code,
            attempts=attempts,
        )
        self._dead_letter(dead_letter)
        reply = envelope.reply
        if reply is not None and not reply.done():
            if code == "invalid_reply":
                reply.set_exception(MessageValidationError(cause))
            else:
                reply.set_exception(DeliveryFailedError(dead_letter))
