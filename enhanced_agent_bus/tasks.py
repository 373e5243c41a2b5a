"""Ownership of every background task the bus starts.

The bus does not use ``asyncio.TaskGroup`` here on purpose: a TaskGroup is
bound to the task that entered it and cancels that task when a child fails,
so a host that calls ``start()`` and ``stop()`` from different tasks would see
its own code cancelled at a random await. Instead every task is spawned here,
named, tracked until done, and its failure is recorded, logged with context,
counted, and re-raised by the bus (``send_message`` raises ``BusStateError``
from it; ``stop()`` re-raises it). No task is ever orphaned: ``aclose()``
cancels and awaits whatever is still running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class TaskSupervisor:
    """Spawns named tasks, tracks them, and records the first unexpected failure."""

    def __init__(self, on_failure: Callable[[BaseException], None] | None = None) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_failure = on_failure
        self.failure: BaseException | None = None
        self.failures_total = 0
        self.spawned_total = 0

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Start ``coro`` as a tracked task called ``name``."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        self.spawned_total += 1
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        self.failures_total += 1
        logger.error(
            "background task %s failed",
            task.get_name(),
            exc_info=exc,
            extra={"task": task.get_name()},
        )
        if self.failure is None:
            self.failure = exc
        if self._on_failure is not None:
            self._on_failure(exc)

    async def wait(self, timeout_s: float | None) -> bool:
        """Wait for every tracked task to finish; True if they all did in time."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        return not pending

    async def aclose(self) -> None:
        """Cancel whatever still runs and wait for it to unwind."""
        while self._tasks:
            tasks = set(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
