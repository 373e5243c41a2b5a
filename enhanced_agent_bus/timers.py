"""Coarse shared timers for the hot path.

Every request carries a reply deadline, every handler call a timeout, and every
idle mailbox worker a linger deadline. With one ``loop.call_later`` each, a
request/reply costs three timer-heap insertions and cancellations (~2 µs each
here) — more than the rest of the pipeline. A :class:`TimerWheel` groups
deadlines into ticks of ``resolution_s`` (10 ms by default) that share one
loop timer, so scheduling and cancelling are a dict insert and a dict pop.
Deadlines fire up to one tick late, never early.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

TimerEntry = tuple[int, int]


class TimerWheel:
    """Deadlines bucketed by tick, one loop timer per non-empty tick."""

    __slots__ = ("_buckets", "_ids", "_loop", "clock", "resolution_s")

    def __init__(self, resolution_s: float = 0.01) -> None:
        if resolution_s <= 0:
            raise ValueError(f"resolution_s={resolution_s!r} must be positive")
        self._loop: asyncio.AbstractEventLoop | None = None
        self.resolution_s = resolution_s
        self._buckets: dict[int, dict[int, tuple[Callable[..., None], tuple[Any, ...]]]] = {}
        self._ids = itertools.count()
        #: The loop's clock, in seconds: deadlines kept beside the wheel (a handler's,
        #: an idle worker's) are read on it. Bound to the running loop on first use.
        self.clock: Callable[[], float] = self._bind_and_read

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())

    def _bind(self) -> asyncio.AbstractEventLoop:
        # Bound on first use: a bus lives on the loop that runs it.
        loop = self._loop = asyncio.get_running_loop()
        # asyncio's own loops read time.monotonic(); calling it directly skips a
        # Python-level method call on every read. Other loops (uvloop) keep theirs.
        if type(loop).time is asyncio.BaseEventLoop.time:
            self.clock = time.monotonic
        else:
            self.clock = loop.time
        return loop

    def _bind_and_read(self) -> float:
        self._bind()
        return self.clock()

    def schedule(self, delay_s: float, callback: Callable[..., None], *args: Any) -> TimerEntry:
        """Call ``callback(*args)`` once, no earlier than ``delay_s`` from now."""
        loop = self._loop
        if loop is None:
            loop = self._bind()
        tick = math.ceil((self.clock() + delay_s) / self.resolution_s)
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = {}
            loop.call_at(tick * self.resolution_s, self._fire, tick)
        entry_id = next(self._ids)
        bucket[entry_id] = (callback, args)
        return tick, entry_id

    def cancel(self, entry: TimerEntry) -> None:
        bucket = self._buckets.get(entry[0])
        if bucket is not None:
            bucket.pop(entry[1], None)

    def _fire(self, tick: int) -> None:
        bucket = self._buckets.pop(tick, None)
        if not bucket:
            return
        for callback, args in bucket.values():
            try:
                callback(*args)
            except Exception:
                logger.exception("timer callback %r failed", callback)

    def close(self) -> None:
        """Drop every pending deadline (their loop timers then fire as no-ops)."""
        self._buckets.clear()
