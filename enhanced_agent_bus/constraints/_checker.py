"""The contract both per-message engines implement."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol

from ..models import Reason
from ._binding import Participant

if TYPE_CHECKING:
    from ..models import AgentMessage


class ConstraintChecker(Protocol):
    """Checks one message against a constraint set.

    ``check`` returns the denial reasons (``()`` when the message passes)
    directly when no I/O is needed, or an awaitable of them (the z3 engine's
    thread hop). Reasons use stage ``"constraints"`` and the codes
    ``constraint_violated``, ``constraint_input`` and ``constraint_error``.
    """

    @property
    def engine(self) -> str: ...

    def check(
        self,
        message: AgentMessage,
        sender: Participant | None,
        recipient: Participant | None,
    ) -> tuple[Reason, ...] | Awaitable[tuple[Reason, ...]]: ...

    async def warm(self) -> None:
        """Prepare what the first checks would otherwise build (before taking traffic)."""

    def stats(self) -> dict[str, int | float]: ...

    def close(self) -> None: ...
