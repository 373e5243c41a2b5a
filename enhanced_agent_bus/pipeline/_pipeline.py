"""Runs the stages in order; the first denial stops the run."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence

from ..models import AgentMessage
from ._stage import ALLOW, StageContext, ValidationStage, Verdict, VerdictKind

logger = logging.getLogger(__name__)


class Pipeline:
    """An ordered, immutable list of stages. Cheap stages go first.

    :meth:`check` runs synchronously for as long as stages answer synchronously,
    and only becomes a coroutine at the first stage that needs to wait (a cache
    read from Redis, an executor hop) — a message whose stages are all in-memory
    never suspends and never allocates a coroutine here.

    A stage that raises is a denial with code ``stage_error``: the pipeline fails
    closed and a message is never delivered because of an exception.
    """

    __slots__ = ("_stages", "names")

    def __init__(self, stages: Sequence[ValidationStage]) -> None:
        self._stages = tuple(stages)
        self.names = tuple(stage.name for stage in self._stages)

    def check(self, message: AgentMessage, ctx: StageContext) -> Verdict | Awaitable[Verdict]:
        """The verdict, or an awaitable of it if some stage must wait."""
        return self._from(0, message, ctx, None)

    async def run(self, message: AgentMessage, ctx: StageContext) -> Verdict:
        """:meth:`check`, always awaitable."""
        verdict = self.check(message, ctx)
        if isinstance(verdict, Verdict):
            return verdict
        return await verdict

    def _from(
        self, index: int, message: AgentMessage, ctx: StageContext, deliberate: Verdict | None
    ) -> Verdict | Awaitable[Verdict]:
        stages = self._stages
        while index < len(stages):
            stage = stages[index]
            index += 1
            try:
                verdict = stage.check(message, ctx)
            except Exception as exc:
                return _stage_error(stage, message, exc)
            if verdict is ALLOW:
                continue
            if not isinstance(verdict, Verdict):
                return self._resume(verdict, stage, index, message, ctx, deliberate)
            if verdict.kind is VerdictKind.DENY:
                return verdict
            if verdict.kind is VerdictKind.DELIBERATE:
                deliberate = verdict
        return deliberate or ALLOW

    async def _resume(
        self,
        pending: Awaitable[Verdict],
        stage: ValidationStage,
        index: int,
        message: AgentMessage,
        ctx: StageContext,
        deliberate: Verdict | None,
    ) -> Verdict:
        try:
            verdict = await pending
        except Exception as exc:
            return _stage_error(stage, message, exc)
        if verdict.kind is VerdictKind.DENY:
            return verdict
        if verdict.kind is VerdictKind.DELIBERATE:
            deliberate = verdict
        rest = self._from(index, message, ctx, deliberate)
        if isinstance(rest, Verdict):
            return rest
        return await rest


def _stage_error(stage: ValidationStage, message: AgentMessage, exc: Exception) -> Verdict:
    # Fail closed: an exception in a stage is a denial, never a pass.
    logger.warning(
        "stage %s failed on message %s: %s",
        stage.name,
        message.message_id,
        type(exc).__name__,
        extra={"stage": stage.name, "message_id": message.message_id},
    )
    return Verdict.deny(
        stage.name,
        "stage_error",
        f"stage {stage.name!r} failed ({type(exc).__name__}: {exc}); "
        "the message was denied (fail closed)",
    )
