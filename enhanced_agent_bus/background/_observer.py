"""The life cycle the audit log and metering share: a sink opened on first use, and a worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from ._worker import BatchingWorker

if TYPE_CHECKING:
    from ..tasks import TaskSupervisor


class _OpenableSink(Protocol):
    async def open(self) -> None: ...

    async def aclose(self) -> None: ...


S = TypeVar("S", bound=_OpenableSink)
E = TypeVar("E")


class BatchedSinkObserver(Generic[S, E]):
    """A bus observer whose events ``worker`` writes, in batches, to ``sink``.

    It opens the sink at :meth:`start`, or at the first :meth:`flush` or
    :meth:`aclose` that has something to write, and closes it in :meth:`aclose`.
    A subclass extends :meth:`_open` to read state back from a freshly opened sink.
    """

    def __init__(self, sink: S, worker: BatchingWorker[E]) -> None:
        self.sink = sink
        self._worker = worker
        self._submit = worker.submit
        self._is_open = False

    async def start(self, supervisor: TaskSupervisor) -> None:
        """Open the sink and start the flush task.

        Raises:
            SinkUnavailableError: the sink cannot be opened or written.
        """
        await self._open()
        self._worker.start(supervisor)

    async def flush(self) -> bool:
        """Write everything accepted so far; True when nothing is left waiting."""
        if not self._is_open:
            await self._open()
        return await self._worker.flush()

    async def aclose(self) -> None:
        """Write everything accepted, then close the sink. Safe to call more than once."""
        if not self._is_open and self._worker.stats()["queue_depth"]:
            await self._open()
        await self._worker.aclose()
        if self._is_open:
            self._is_open = False
            await self.sink.aclose()

    async def _open(self) -> None:
        await self.sink.open()
        self._is_open = True
