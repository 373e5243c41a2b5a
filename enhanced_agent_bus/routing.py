"""Routing one message: resolve its recipients, run the pipeline, enqueue, record the outcome.

Every path answers synchronously when nothing has to wait (no coroutine frame at
all for a message whose stages decide in memory and whose mailbox has room), and
hands back an awaitable only when a stage or a full mailbox must wait. Every
outcome is counted and shown to the observers (audit, metering, metrics) here,
exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from typing import Final

from .dead_letters import DeadLetterStore
from .errors import (
    AgentNotRegisteredError,
    BackpressureError,
    ConstitutionalHashMismatchError,
    DeliveryFailedError,
    MessageDeniedError,
    TenantIsolationError,
)
from .mailbox import Envelope, PutOutcome
from .models import AgentMessage, DeadLetter, DeliveryResult, DeliveryStatus, Reason
from .observers import BusObserver
from .pipeline import Pipeline, StageContext, Verdict, VerdictKind
from .registry import AgentRecord, AgentRegistry

logger = logging.getLogger(__name__)

#: What an accepted request() gets back from routing when nobody else reads the result:
#: the caller checks only the status, so no per-message result is built.
ACCEPTED: Final = DeliveryResult("", DeliveryStatus.DELIVERED)


class Router:
    """Decides and enqueues messages for their recipients; records every outcome."""

    def __init__(
        self,
        registry: AgentRegistry,
        pipeline: Pipeline,
        observers: Sequence[BusObserver],
        dead_letter_capacity: int,
    ) -> None:
        self._registry = registry
        self._records = registry.records
        #: The active pipeline; the bus swaps it on a constitution reload.
        self.pipeline = pipeline
        self._observers = tuple(observers)
        self.dead_letters = DeadLetterStore(dead_letter_capacity, self._notify_dead_letter)
        # Per-status counts as plain ints: an Enum-keyed dict pays a Python-level
        # Enum.__hash__ twice per message.
        self._delivered = self._denied = self._dead_lettered = self._deliberating = 0
        self.denied_by_code: Counter[str] = Counter()
        self.observer_errors_total = 0

    def counts(self) -> dict[str, int]:
        return {
            "sent_total": self._delivered + self._denied + self._dead_lettered + self._deliberating,
            "delivered_total": self._delivered,
            "denied_total": self._denied,
            "deliberating_total": self._deliberating,
        }

    async def fan_out(
        self,
        message: AgentMessage,
        sender: AgentRecord,
        recipients: list[AgentRecord],
        empty_code: str,
        started: int,
    ) -> list[DeliveryResult]:
        if not recipients:
            target = f"topic:{message.topic}" if message.topic else f"tenant:{sender.tenant_id}"
            reason = Reason(
                "routing",
                empty_code,
                f"no agent in tenant {sender.tenant_id!r} receives this message ({target})",
            )
            # Observers hear of it once, as the DEAD_LETTERED decision below.
            self.dead_letters.add(
                DeadLetter(
                    message=message,
                    recipient=target,
                    cause=reason.message,
                    code=empty_code,
                    attempts=0,
                ),
                notify=False,
            )
            return [self.finish(message, DeliveryStatus.DEAD_LETTERED, (reason,), None, started)]
        results = []
        for recipient in recipients:
            result = self._route(message, sender, recipient, None, started)
            results.append(result if isinstance(result, DeliveryResult) else await result)
        return results

    def send_to(
        self,
        message: AgentMessage,
        to_agent: str,
        reply: asyncio.Future[AgentMessage] | None,
        started: int,
    ) -> DeliveryResult | Awaitable[DeliveryResult]:
        records = self._records
        sender = records.get(message.from_agent)
        if sender is None:
            return self.unknown_agent(message, message.from_agent, "unknown_sender", started)
        recipient = records.get(to_agent)
        if recipient is None:
            return self.unknown_agent(message, to_agent, "unknown_recipient", started)
        return self._route(message, sender, recipient, reply, started)

    def _route(
        self,
        message: AgentMessage,
        sender: AgentRecord,
        recipient: AgentRecord,
        reply: asyncio.Future[AgentMessage] | None,
        started: int,
    ) -> DeliveryResult | Awaitable[DeliveryResult]:
        """Validate and enqueue; synchronous unless a stage or a full mailbox must wait.

        Like the pipeline, routing answers directly in the common case (no coroutine
        frame at all) and hands back an awaitable only when something has to wait.
        """
        verdict = self.pipeline.check(message, StageContext(sender, recipient, message.topic))
        if not isinstance(verdict, Verdict):
            return self._route_after(verdict, message, recipient, reply, started)
        return self._enqueue(verdict, message, recipient, reply, started)

    async def _route_after(
        self,
        pending: Awaitable[Verdict],
        message: AgentMessage,
        recipient: AgentRecord,
        reply: asyncio.Future[AgentMessage] | None,
        started: int,
    ) -> DeliveryResult:
        outcome = self._enqueue(await pending, message, recipient, reply, started)
        if isinstance(outcome, DeliveryResult):
            return outcome
        return await outcome

    def _enqueue(
        self,
        verdict: Verdict,
        message: AgentMessage,
        recipient: AgentRecord,
        reply: asyncio.Future[AgentMessage] | None,
        started: int,
    ) -> DeliveryResult | Awaitable[DeliveryResult]:
        if verdict.kind is not VerdictKind.ALLOW:
            return self._not_allowed(verdict, message, recipient, started)
        envelope = Envelope(message, reply)
        outcome = recipient.mailbox.try_put(envelope)
        if outcome is PutOutcome.ACCEPTED:
            if reply is not None and not self._observers:
                # A request() reads only the status, and no observer reads the result.
                self._delivered += 1
                return ACCEPTED
            return self.finish(message, DeliveryStatus.DELIVERED, (), recipient, started)
        if outcome is PutOutcome.FULL:
            return self._wait_for_room(envelope, recipient, started)
        return self._mailbox_refused(outcome, message, recipient, started)

    def _not_allowed(
        self, verdict: Verdict, message: AgentMessage, recipient: AgentRecord, started: int
    ) -> DeliveryResult:
        if verdict.kind is VerdictKind.DENY:
            return self.finish(message, DeliveryStatus.DENIED, verdict.reasons, recipient, started)
        reason = Reason(
            "deliberation",
            "deliberation_unavailable",
            "the message needs deliberation but this bus has no deliberation layer; "
            "it was denied (fail closed)",
        )
        return self.finish(
            message, DeliveryStatus.DENIED, (*verdict.reasons, reason), recipient, started
        )

    async def _wait_for_room(
        self, envelope: Envelope, recipient: AgentRecord, started: int
    ) -> DeliveryResult:
        outcome = await recipient.mailbox.put_when_full(envelope)
        if outcome is PutOutcome.ACCEPTED:
            return self.finish(envelope.message, DeliveryStatus.DELIVERED, (), recipient, started)
        return self._mailbox_refused(outcome, envelope.message, recipient, started)

    def _mailbox_refused(
        self, outcome: PutOutcome, message: AgentMessage, recipient: AgentRecord, started: int
    ) -> DeliveryResult:
        mailbox = recipient.mailbox
        if outcome is PutOutcome.CLOSED:
            reason = Reason(
                "mailbox",
                "mailbox_closed",
                f"agent {recipient.agent_id!r} is unregistered or the bus stopped",
            )
        else:
            reason = Reason(
                "mailbox",
                "backpressure",
                f"mailbox of agent {recipient.agent_id!r} is full ({mailbox.maxsize} messages, "
                f"policy {mailbox.backpressure!r}); retry later, consume faster, or raise "
                "mailbox_size",
            )
        return self.finish(message, DeliveryStatus.DENIED, (reason,), recipient, started)

    def unknown_agent(
        self, message: AgentMessage, agent_id: str, code: str, started: int
    ) -> DeliveryResult:
        role = "sender" if code == "unknown_sender" else "recipient"
        reason = Reason(
            "admission",
            code,
            f"{role} {agent_id!r} is not registered; register it with bus.register_agent first",
        )
        return self.finish(
            message,
            DeliveryStatus.DENIED,
            (reason,),
            None,
            started,
            recipient_id=agent_id if role == "recipient" else None,
        )

    def finish(
        self,
        message: AgentMessage,
        status: DeliveryStatus,
        reasons: tuple[Reason, ...],
        recipient: AgentRecord | None,
        started: int,
        recipient_id: str | None = None,
    ) -> DeliveryResult:
        result = DeliveryResult(
            message.message_id,
            status,
            reasons,
            (time.perf_counter_ns() - started) / 1000.0,
            recipient.agent_id if recipient is not None else recipient_id,
        )
        if status is DeliveryStatus.DELIVERED:
            self._delivered += 1
        elif status is DeliveryStatus.DENIED:
            self._denied += 1
            if reasons:
                self.denied_by_code[reasons[0].code] += 1
        elif status is DeliveryStatus.DEAD_LETTERED:
            self._dead_lettered += 1
        else:
            self._deliberating += 1
        for observer in self._observers:
            try:
                observer.on_decision(message, result)
            except Exception:
                self.observer_errors_total += 1
                logger.exception("observer %r failed on_decision", observer)
        return result

    def _notify_dead_letter(self, dead_letter: DeadLetter) -> None:
        for observer in self._observers:
            try:
                observer.on_dead_letter(dead_letter)
            except Exception:
                self.observer_errors_total += 1
                logger.exception("observer %r failed on_dead_letter", observer)


def denial_error(result: DeliveryResult, message: AgentMessage) -> Exception:
    """The exception ``request()`` raises for a result that is not DELIVERED."""
    first = result.reasons[0] if result.reasons else None
    if first is None:
        return MessageDeniedError(result)
    if first.code == "unknown_sender":
        return AgentNotRegisteredError(message.from_agent, result=result)
    if first.code == "unknown_recipient":
        return AgentNotRegisteredError(message.to_agent or "", result=result)
    if first.stage == "constitution":
        return ConstitutionalHashMismatchError(result)
    if first.stage == "tenant":
        return TenantIsolationError(result)
    if first.code == "backpressure":
        return BackpressureError(result)
    if result.status is DeliveryStatus.DEAD_LETTERED:
        return DeliveryFailedError(
            DeadLetter(
                message=message,
                recipient=result.recipient or "",
                cause=first.message,
                code=first.code,
                attempts=0,
            )
        )
    return MessageDeniedError(result)
