"""Runs the stages in order; the first denial stops the run."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..models import AgentMessage
from ._stage import ALLOW, StageContext, ValidationStage, Verdict, VerdictKind

logger = logging.getLogger(__name__)


class Pipeline:
    """An ordered, immutable list of stages. Cheap stages go first.

    A stage that raises is treated as a denial with code ``stage_error``: the
    pipeline fails closed and the message is never delivered on an exception.
    """

    __slots__ = ("_stages", "names")

    def __init__(self, stages: Sequence[ValidationStage]) -> None:
        self._stages = tuple(stages)
        self.names = tuple(stage.name for stage in self._stages)

    async def run(self, message: AgentMessage, ctx: StageContext) -> Verdict:
        deliberate: Verdict | None = None
        for stage in self._stages:
            try:
                verdict = stage.check(message, ctx)
                if not isinstance(verdict, Verdict):
                    verdict = await verdict
            except Exception as exc:
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
            if verdict is ALLOW:
                continue
            if verdict.kind is VerdictKind.DENY:
                return verdict
            if verdict.kind is VerdictKind.DELIBERATE:
                deliberate = verdict
        return deliberate or ALLOW
