"""The contract every validation stage implements."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..models import AgentMessage, Reason

if TYPE_CHECKING:
    from ..registry import AgentRecord


class VerdictKind(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    DELIBERATE = "deliberate"  # valid, but must wait for approval before delivery


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a stage decided. Never ``None``, never a bare ``bool``."""

    kind: VerdictKind
    reasons: tuple[Reason, ...] = ()

    @classmethod
    def deny(cls, stage: str, code: str, message: str) -> Verdict:
        return cls(VerdictKind.DENY, (Reason(stage, code, message),))

    @property
    def is_allowed(self) -> bool:
        return self.kind is VerdictKind.ALLOW


#: The shared "allow" verdict: stages return it to avoid an allocation per message.
ALLOW = Verdict(VerdictKind.ALLOW)


class StageContext:
    """Who is talking to whom, resolved once per (message, recipient) by the bus."""

    __slots__ = ("recipient", "sender", "topic")

    def __init__(
        self, sender: AgentRecord, recipient: AgentRecord | None, topic: str | None = None
    ) -> None:
        self.sender = sender
        self.recipient = recipient
        self.topic = topic


@runtime_checkable
class ValidationStage(Protocol):
    """One step of the validation pipeline.

    ``check`` returns a :class:`Verdict` directly when it needs no I/O (the
    pipeline then never suspends), or an awaitable of one when it does (an L2
    cache read, an executor hop). A stage that fails must deny, never allow:
    the pipeline is fail-closed.
    """

    name: str

    def check(self, message: AgentMessage, ctx: StageContext) -> Verdict | Awaitable[Verdict]: ...
