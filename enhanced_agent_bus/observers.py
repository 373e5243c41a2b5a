"""Hooks that see every outcome: audit, metering and metrics plug in here.

Observers are called synchronously on the hot path, so they must only hand
work off (append to a bounded queue, bump a counter) and never block or
raise. The bus counts and logs an observer that raises, and carries on: an
observer failure never changes a message's outcome.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .models import AgentMessage, DeadLetter, DeliveryResult


@runtime_checkable
class BusObserver(Protocol):
    """Receives every decision and every dead letter."""

    def on_decision(self, message: AgentMessage, result: DeliveryResult) -> None:
        """Called once per (message, recipient) decision, after routing."""

    def on_dead_letter(self, dead_letter: DeadLetter) -> None:
        """Called once per message moved to the dead-letter store."""
