"""Stage 1: the constitutional hash, compared in constant time."""

from __future__ import annotations

import hmac

from ..constitution import HashRotation, HashStatus
from ..models import AgentMessage
from ._stage import ALLOW, StageContext, Verdict

_ADVICE = "build messages with bus.message(...) or set constitutional_hash=bus.constitutional_hash"


class ConstitutionalHashStage:
    """Accepts the active hash, and the previous one inside its rotation grace window."""

    name = "constitution"

    def __init__(self, rotation: HashRotation) -> None:
        self._rotation = rotation

    def check(self, message: AgentMessage, ctx: StageContext) -> Verdict:
        candidate = message.constitutional_hash
        # The common case first, without a call: the active hash (ASCII, constant-time).
        if candidate.isascii() and hmac.compare_digest(candidate, self._rotation.active_hash):
            return ALLOW
        status = self._rotation.status(candidate)
        if status is HashStatus.ACTIVE or status is HashStatus.PREVIOUS:
            return ALLOW
        if status is HashStatus.MISSING:
            return Verdict.deny(
                self.name, "hash_missing", f"message has no constitutional_hash; {_ADVICE}"
            )
        if status is HashStatus.STALE:
            return Verdict.deny(
                self.name,
                "hash_stale",
                f"constitutional_hash {message.constitutional_hash[:16]!r}... belongs to a "
                f"retired constitution whose grace window has passed; {_ADVICE}",
            )
        return Verdict.deny(
            self.name,
            "hash_mismatch",
            f"constitutional_hash {message.constitutional_hash[:16]!r}... is not the bus's "
            f"constitution; {_ADVICE}",
        )
