"""Per-agent bounded mailboxes, drained by a worker that exists only while there is work.

An idle registered agent owns a deque and a few slots — no task, no future.
The first message spawns a worker; the worker delivers messages one at a time
(so order is FIFO per recipient, hence per (sender, recipient)), lingers
``idle_linger_s`` for the next message (a request/reply ping-pong then reuses
one worker instead of spawning a task per message), and exits when idle.

When the mailbox is full the backpressure policy decides:

- ``wait``: the sender waits for room, up to ``put_timeout_s``; then the send is denied.
- ``reject``: the send is denied at once (code ``backpressure``).
- ``drop_oldest``: for EVENT/NOTIFICATION only, the oldest queued EVENT/NOTIFICATION
  is dropped to make room (dead-lettered with code ``dropped_oldest`` and counted);
  any other message type is rejected as under ``reject``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from enum import Enum
from typing import Any

from .models import DROPPABLE_TYPES, AgentMessage
from .settings import BackpressurePolicy
from .timers import TimerWheel

Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]
#: Delivers one envelope; called by the mailbox's worker with the worker's own task
#: (the handler timeout cancels it), so the callee need not look it up per message.
Deliver = Callable[["Envelope", "asyncio.Task[Any]"], Awaitable[None]]


class Envelope:
    """A queued message plus the future a ``request()`` waits on (None for plain sends)."""

    __slots__ = ("message", "reply")

    def __init__(
        self, message: AgentMessage, reply: asyncio.Future[AgentMessage] | None = None
    ) -> None:
        self.message = message
        self.reply = reply


class PutOutcome(Enum):
    ACCEPTED = "accepted"
    FULL = "full"
    CLOSED = "closed"


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


class Mailbox:
    """A bounded FIFO queue for one agent, with its backpressure policy."""

    __slots__ = (
        "_deliver",
        "_idle_since",
        "_idle_waiter",
        "_items",
        "_linger_pending",
        "_on_drop",
        "_putters",
        "_spawn",
        "_timers",
        "_worker",
        "agent_id",
        "backpressure",
        "dropped_total",
        "idle_linger_s",
        "is_closed",
        "maxsize",
        "put_timeout_s",
        "rejected_total",
    )

    def __init__(
        self,
        agent_id: str,
        *,
        maxsize: int,
        backpressure: BackpressurePolicy,
        put_timeout_s: float,
        idle_linger_s: float,
        deliver: Deliver,
        spawn: Spawn,
        on_drop: Callable[[Envelope], None],
        timers: TimerWheel,
    ) -> None:
        self.agent_id = agent_id
        self.maxsize = maxsize
        self.backpressure = backpressure
        self.put_timeout_s = put_timeout_s
        self.idle_linger_s = idle_linger_s
        self.is_closed = False
        self.dropped_total = 0
        self.rejected_total = 0
        self._deliver = deliver
        self._spawn = spawn
        self._on_drop = on_drop
        self._timers = timers
        self._items: deque[Envelope] = deque()
        self._putters: deque[asyncio.Future[bool]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._idle_waiter: asyncio.Future[bool] | None = None
        self._idle_since = 0.0
        self._linger_pending = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def worker(self) -> asyncio.Task[None] | None:
        """The running worker task, or None while the agent is idle."""
        return self._worker

    def try_put(self, envelope: Envelope) -> PutOutcome:
        """Enqueue without waiting; under ``drop_oldest`` make room by dropping an old event."""
        if self.is_closed:
            return PutOutcome.CLOSED
        items = self._items
        if len(items) >= self.maxsize and not self._make_room(envelope):
            return PutOutcome.FULL
        items.append(envelope)
        # Wake the worker (inline: this runs once per message).
        if self._worker is None:
            self._worker = self._spawn(self._run(), f"agentbus:mailbox:{self.agent_id}")
        else:
            waiter = self._idle_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(True)
        return PutOutcome.ACCEPTED

    async def put_when_full(self, envelope: Envelope) -> PutOutcome:
        """Apply the backpressure policy after :meth:`try_put` found the mailbox full.

        ``wait`` waits up to ``put_timeout_s`` for room; the others reject at once.
        """
        if self.backpressure != "wait":
            self.rejected_total += 1
            return PutOutcome.FULL
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.put_timeout_s
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.rejected_total += 1
                return PutOutcome.FULL
            waiter: asyncio.Future[bool] = loop.create_future()
            self._putters.append(waiter)
            handle = loop.call_later(remaining, _resolve, waiter, False)
            try:
                await waiter
            finally:
                handle.cancel()
                if waiter in self._putters:
                    self._putters.remove(waiter)
            outcome = self.try_put(envelope)
            if outcome is not PutOutcome.FULL:
                if outcome is PutOutcome.ACCEPTED and len(self._items) < self.maxsize:
                    self._wake_putter()  # room remains: pass the wake-up on
                return outcome

    def _make_room(self, incoming: Envelope) -> bool:
        if (
            self.backpressure != "drop_oldest"
            or incoming.message.message_type not in DROPPABLE_TYPES
        ):
            return False
        for index, queued in enumerate(self._items):
            if queued.message.message_type in DROPPABLE_TYPES:
                del self._items[index]
                self.dropped_total += 1
                self._on_drop(queued)
                return True
        return False

    def _wake_putter(self) -> None:
        while self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - _run is only ever spawned as a task
            raise RuntimeError("a mailbox worker must run as a task")
        items = self._items
        deliver = self._deliver
        try:
            while True:
                while items:
                    envelope = items.popleft()
                    if self._putters:
                        self._wake_putter()
                    await deliver(envelope, task)
                if self.is_closed or self.idle_linger_s <= 0:
                    return
                waiter: asyncio.Future[bool] = loop.create_future()
                self._idle_waiter = waiter
                self._idle_since = self._timers.clock()
                if not self._linger_pending:
                    # One lazy linger timer per idle *period*, not per message: it re-arms
                    # itself if the worker was busy again in between (see _check_linger).
                    self._linger_pending = True
                    self._timers.schedule(self.idle_linger_s, self._check_linger)
                try:
                    await waiter
                finally:
                    self._idle_waiter = None
                # No await between this check and clearing _worker in `finally`, so a put
                # that lands after the linger expired either sees us running or spawns anew.
                if not self._items:
                    return
        finally:
            self._worker = None

    def _check_linger(self) -> None:
        waiter = self._idle_waiter
        if waiter is None:  # busy: the next idle period arms a new timer
            self._linger_pending = False
            return
        remaining = self._idle_since + self.idle_linger_s - self._timers.clock()
        if remaining > 0:
            self._timers.schedule(remaining, self._check_linger)
            return
        self._linger_pending = False
        _resolve(waiter, False)

    def close(self) -> list[Envelope]:
        """Refuse new messages, release waiting senders, and return what is still queued."""
        self.is_closed = True
        if self._idle_waiter is not None:
            _resolve(self._idle_waiter, False)
        while self._putters:
            _resolve(self._putters.popleft(), False)
        left = list(self._items)
        self._items.clear()
        return left

    def stop_lingering(self) -> None:
        """Let an idle worker exit now instead of waiting out its linger (used by drain)."""
        self.idle_linger_s = 0.0
        if self._idle_waiter is not None:
            _resolve(self._idle_waiter, False)
