"""Where the embedded policy runs: inline on the event loop, in a thread pool, or in a process pool.

Offload by evidence (measured on this 2-core host, ``benchmarks/bench_policy.py``):
an embedded decision on the default constitution costs ~30 µs compiled, a
thread-pool hop 50-130 µs on top, and regorus holds the GIL, so a thread buys
no parallelism. ``inline`` is therefore the default; cache hits never get
here at all. ``process`` runs replicas of the engine in worker processes,
each loaded from the same bundle files, with inputs and decisions passed as
JSON; it pays ~100+ µs of IPC per decision and wins only for expensive
policies on hosts with idle cores. ``thread`` exists for completeness.

Work waiting for a thread or process is bounded (``executor_max_pending``);
the stage's ``eval_timeout_s`` bounds how long a decision may wait. A crashed
worker process breaks the pool: the decision in flight fails closed and the
next one starts a fresh pool.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Final

import orjson

from ._decision import PolicyDecision
from ._embedded import PROBE_INPUT, EmbeddedPolicy, decide
from ._errors import PolicyEngineUnavailableError, PolicyEvaluationError, detached
from ._key import canonical_json
from ._settings import PolicySettings

logger = logging.getLogger(__name__)


class InlinePolicyEngine:
    """The embedded policy evaluated synchronously on the caller's thread."""

    name: Final = "embedded/inline"

    def __init__(self, policy: EmbeddedPolicy) -> None:
        self.policy = policy
        self.evaluations = 0

    def evaluate(self, input_json: bytes) -> PolicyDecision:
        self.evaluations += 1
        return self.policy.evaluate_json(input_json)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        # Runs on the loop thread, the thread whose replica evaluated inline.
        self.policy.release()

    def stats(self) -> dict[str, int | float]:
        return {"engine_evaluations": self.evaluations}


class _PooledEngine(ABC):
    """Shared bookkeeping of the thread and process engines; each one implements ``_decide``.

    A slot is taken before work is handed to a worker and given back only when
    the worker has finished it - not when the waiter gives up - so work that
    timed out still counts against ``executor_max_pending`` until it is done.
    """

    def __init__(self, settings: PolicySettings) -> None:
        self._workers = settings.executor_workers
        self._slots = asyncio.Semaphore(settings.executor_max_pending)
        self._max_pending = settings.executor_max_pending
        self._pending = 0
        self.evaluations = 0
        self.failures = 0
        self._closed = False

    def evaluate(self, input_json: bytes) -> Awaitable[PolicyDecision]:
        self._check_open()
        return self._evaluate(input_json)

    async def _evaluate(self, input_json: bytes) -> PolicyDecision:
        decision = await self._decide(input_json)
        self.evaluations += 1
        return decision

    @abstractmethod
    async def _decide(self, input_json: bytes) -> PolicyDecision:
        """One decision by a worker; counts it in ``failures`` when it fails."""

    def _check_open(self) -> None:
        if self._closed:
            raise PolicyEngineUnavailableError(
                "the policy executor is closed; build a new policy stage (the bus does this on "
                "start and reload)"
            )

    async def _take_slot(self) -> None:
        await self._slots.acquire()
        self._pending += 1

    def _give_slot(self) -> None:
        self._pending -= 1
        self._slots.release()

    def stats(self) -> dict[str, int | float]:
        return {
            "engine_evaluations": self.evaluations,
            "engine_failures": self.failures,
            "executor_pending": self._pending,
            "executor_max_pending": self._max_pending,
            "executor_workers": self._workers,
        }


_Job = tuple[bytes, "asyncio.Future[PolicyDecision]"]


class ThreadPolicyEngine(_PooledEngine):
    """The embedded policy evaluated by dedicated worker threads, one engine replica each.

    Not a ``ThreadPoolExecutor``: regorus objects must be created, used and
    dropped on one thread, so each worker builds its replica when it starts and
    drops it when it stops, and nothing else ever touches it.
    """

    name: Final = "embedded/thread"

    def __init__(self, policy: EmbeddedPolicy, settings: PolicySettings) -> None:
        super().__init__(settings)
        self.policy = policy
        # Unbounded type, bounded use: at most executor_max_pending jobs hold a slot.
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._ready: list[asyncio.Future[None]] = []

    async def _decide(self, input_json: bytes) -> PolicyDecision:
        loop = asyncio.get_running_loop()
        self._spawn_workers(loop)
        await self._take_slot()
        future: asyncio.Future[PolicyDecision] = loop.create_future()
        self._jobs.put((input_json, future))
        try:
            return await future
        except PolicyEvaluationError:
            self.failures += 1
            raise

    def _spawn_workers(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._threads:
            return
        for number in range(self._workers):
            ready: asyncio.Future[None] = loop.create_future()
            thread = threading.Thread(
                target=self._work,
                args=(loop, ready),
                name=f"agentbus-policy-{number}",
                daemon=True,
            )
            self._ready.append(ready)
            self._threads.append(thread)
            thread.start()

    def _work(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            replica = self.policy.new_replica()
        except Exception as exc:
            _call_on_loop(loop, functools.partial(_settle, ready, None, detached(exc)))
            return
        _call_on_loop(loop, functools.partial(_settle, ready, None, None))
        rule = self.policy.decision_rule
        while True:
            job = self._jobs.get()
            if job is None:
                break
            input_json, future = job
            result: PolicyDecision | None = None
            error: Exception | None = None
            # A waiter that already gave up needs no answer (a benign racy read).
            if not future.cancelled():
                try:
                    result = decide(replica, input_json, rule)
                except Exception as exc:
                    # Its frames reference this thread's replica: cut them before it leaves.
                    error = detached(exc)
            _call_on_loop(loop, functools.partial(self._finish, future, result, error))
        del replica  # dropped here, on its own thread

    def _finish(
        self,
        future: asyncio.Future[PolicyDecision],
        result: PolicyDecision | None,
        error: Exception | None,
    ) -> None:
        self._give_slot()
        _settle(future, result, error)

    async def start(self) -> None:
        """Start the workers and wait until each has built its replica."""
        self._check_open()
        self._spawn_workers(asyncio.get_running_loop())
        await asyncio.gather(*self._ready)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        threads, self._threads = self._threads, []
        for thread in threads:
            await asyncio.to_thread(thread.join)


def _settle(future: asyncio.Future[Any], result: object, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _call_on_loop(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """Run ``callback`` on the loop's thread (nothing to do once the loop is closed)."""
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:
        return


# --- process pool -----------------------------------------------------------
# Each worker process loads its own replica in the pool initializer. The policy
# lives in this module global only inside worker processes, never in the bus's.
_WORKER_POLICY: EmbeddedPolicy | None = None


def _load_worker(files: dict[str, bytes], origin: str, settings_json: bytes) -> None:
    global _WORKER_POLICY
    settings = PolicySettings.model_validate_json(settings_json)
    _WORKER_POLICY = EmbeddedPolicy.from_files(files, origin=origin, settings=settings)


def _evaluate_in_worker(input_json: bytes) -> bytes:
    """Runs in a worker: JSON in, a JSON envelope out (exceptions do not cross as objects)."""
    if _WORKER_POLICY is None:
        return orjson.dumps({"error": "policy worker has no policy loaded"})
    try:
        return _WORKER_POLICY.evaluate_json(input_json).to_bytes()
    except PolicyEvaluationError as exc:
        return orjson.dumps({"error": str(exc)})


class ProcessPolicyEngine(_PooledEngine):
    """The embedded policy evaluated by a pool of worker processes, each with its own replica."""

    name: Final = "embedded/process"

    def __init__(self, policy: EmbeddedPolicy, settings: PolicySettings) -> None:
        super().__init__(settings)
        self._files = dict(policy.files)
        self._origin = policy.origin
        # Workers load with the same settings, but always inline: they are the executor.
        self._settings_json = settings.model_copy(update={"executor": "inline"}).model_dump_json()
        self._start_method = settings.process_start_method
        self._pool: ProcessPoolExecutor | None = None
        self.restarts = 0

    async def _decide(self, input_json: bytes) -> PolicyDecision:
        raw = await self._submit(input_json)
        if raw.startswith(b'{"error"'):
            self.failures += 1
            raise PolicyEvaluationError(str(orjson.loads(raw)["error"]))
        try:
            return PolicyDecision.from_bytes(raw)
        except ValueError as exc:
            self.failures += 1
            raise PolicyEvaluationError(f"policy worker answered garbage: {exc}") from None

    async def _submit(self, input_json: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        await self._take_slot()
        pool = self._executor()
        try:
            work = pool.submit(_evaluate_in_worker, input_json)
        except BrokenProcessPool as exc:
            self._give_slot()
            raise self._broken(pool, exc) from exc
        except BaseException:
            self._give_slot()
            raise
        work.add_done_callback(lambda _: _call_on_loop(loop, self._give_slot))
        try:
            return await asyncio.wrap_future(work)
        except BrokenProcessPool as exc:
            raise self._broken(pool, exc) from exc

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context(self._start_method),
                initializer=_load_worker,
                initargs=(self._files, self._origin, self._settings_json.encode()),
            )
        return self._pool

    def _broken(self, pool: ProcessPoolExecutor, exc: BrokenProcessPool) -> Exception:
        self.failures += 1
        if self._pool is pool:
            self._pool = None
            self.restarts += 1
            logger.warning("policy process pool broke; restarting it (restart #%d)", self.restarts)
            pool.shutdown(wait=False, cancel_futures=True)
        return PolicyEngineUnavailableError(
            f"a policy worker process died ({exc}); the pool restarts on the next decision"
        )

    async def start(self) -> None:
        """Spawn every worker and load its replica before the first message."""
        self._check_open()
        probe = canonical_json(PROBE_INPUT)
        await asyncio.gather(*(self._decide(probe) for _ in range(self._workers)))

    async def aclose(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            # shutdown(wait=True) blocks until the workers exit; keep it off the loop.
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)

    def stats(self) -> dict[str, int | float]:
        return {**super().stats(), "executor_restarts": self.restarts}
