"""Single flight: concurrent calls for the same key share one execution.

When 100 tasks miss the cache on the same key at once, one of them (the
leader) runs the loader and the other 99 wait for its result. If the loader
raises, every waiter gets that exception and nothing is remembered: the next
call runs the loader again. If the leader is cancelled, the loader's work is
abandoned and one of the waiters becomes the new leader (a waiter that was
not itself cancelled never sees a ``CancelledError`` that was not meant for it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from enum import Enum
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Outcome(Enum):
    ABANDONED = "abandoned"


class SingleFlight(Generic[K, V]):
    """Coalesces concurrent calls per key.

    The map of flights holds only keys with a call in progress, so its size is
    bounded by the number of concurrent callers.

    Example::

        flights: SingleFlight[bytes, Decision] = SingleFlight()
        decision = await flights.do(key, lambda: engine.evaluate(document))
    """

    __slots__ = ("_flights", "coalesced", "leads")

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Future[V | _Outcome]] = {}
        self.leads = 0
        self.coalesced = 0

    def __len__(self) -> int:
        return len(self._flights)

    async def do(self, key: K, fn: Callable[[], Awaitable[V]]) -> V:
        """``await fn()``, or the result of the call already in flight for ``key``.

        Raises:
            Exception: whatever the shared ``fn()`` raised.
        """
        while True:
            flight = self._flights.get(key)
            if flight is None:
                return await self._lead(key, fn)
            self.coalesced += 1
            # shield: cancelling this waiter must not cancel the shared future.
            outcome = await asyncio.shield(flight)
            if not isinstance(outcome, _Outcome):
                return outcome

    async def _lead(self, key: K, fn: Callable[[], Awaitable[V]]) -> V:
        flight: asyncio.Future[V | _Outcome] = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        self.leads += 1
        settled = False
        try:
            value = await fn()
        except Exception as exc:
            flight.set_exception(exc)
            # Mark it retrieved: with no waiters asyncio would log "never retrieved".
            flight.exception()
            settled = True
            raise
        else:
            flight.set_result(value)
            settled = True
            return value
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
            if not settled:
                # Cancelled (or another BaseException): waiters retry, one leads.
                flight.set_result(_Outcome.ABANDONED)

    def stats(self) -> dict[str, int | float]:
        """Counters: leads (calls that ran ``fn``), coalesced (calls that waited), in_flight."""
        return {"leads": self.leads, "coalesced": self.coalesced, "in_flight": len(self._flights)}
