"""Runs the stages in order; the first denial stops the run."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Protocol

from ..models import AgentMessage
from ._stage import ALLOW, StageContext, ValidationStage, Verdict, VerdictKind

logger = logging.getLogger(__name__)


class StageTimer(Protocol):
    """Receives per-stage latencies for a sample of messages (the metrics layer)."""

    def should_time_stages(self) -> bool: ...

    def observe_stage(self, stage: str, seconds: float) -> None: ...


class Pipeline:
    """An ordered, immutable list of stages. Cheap stages go first.

    :meth:`check` runs synchronously for as long as stages answer synchronously,
    and only becomes a coroutine at the first stage that needs to wait (a cache
    read from Redis, an executor hop) — a message whose stages are all in-memory
    never suspends and never allocates a coroutine here.

    A stage that raises is a denial with code ``stage_error``: the pipeline fails
    closed and a message is never delivered because of an exception.
    """

    __slots__ = ("_checks", "_count", "_stages", "_timer", "names")

    def __init__(self, stages: Sequence[ValidationStage], timer: StageTimer | None = None) -> None:
        self._stages = tuple(stages)
        # Bound once, not per message and stage.
        self._checks = tuple(stage.check for stage in self._stages)
        self._count = len(self._stages)
        self._timer = timer
        self.names = tuple(stage.name for stage in self._stages)

    @property
    def stages(self) -> tuple[ValidationStage, ...]:
        return self._stages

    def check(self, message: AgentMessage, ctx: StageContext) -> Verdict | Awaitable[Verdict]:
        """The verdict, or an awaitable of it if some stage must wait."""
        timer = self._timer
        if timer is not None and timer.should_time_stages():
            return self._timed(timer, message, ctx)
        return self._from(0, message, ctx, None)

    async def _timed(self, timer: StageTimer, message: AgentMessage, ctx: StageContext) -> Verdict:
        # The sampled path: each stage on its own, so each gets its own latency.
        deliberate: Verdict | None = None
        clock = time.perf_counter
        for stage in self._stages:
            started = clock()
            try:
                verdict = stage.check(message, ctx)
                if not isinstance(verdict, Verdict):
                    verdict = await verdict
            except Exception as exc:
                return _stage_error(stage, message, exc)
            finally:
                timer.observe_stage(stage.name, clock() - started)
            if verdict.kind is VerdictKind.DENY:
                return verdict
            if verdict.kind is VerdictKind.DELIBERATE:
                deliberate = verdict
        return deliberate or ALLOW

    async def run(self, message: AgentMessage, ctx: StageContext) -> Verdict:
        """:meth:`check`, always awaitable."""
        verdict = self.check(message, ctx)
        if isinstance(verdict, Verdict):
            return verdict
        return await verdict

    def _from(
        self, index: int, message: AgentMessage, ctx: StageContext, deliberate: Verdict | None
    ) -> Verdict | Awaitable[Verdict]:
        checks = self._checks
        count = self._count
        while index < count:
            check = checks[index]
            index += 1
            try:
                verdict = check(message, ctx)
            except Exception as exc:
                return _stage_error(self._stages[index - 1], message, exc)
            if verdict is ALLOW:
                continue
            if not isinstance(verdict, Verdict):
                stage = self._stages[index - 1]
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
