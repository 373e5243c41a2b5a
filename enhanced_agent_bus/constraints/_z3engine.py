"""The ``z3`` engine: each check asks a prepared Z3 solver, in a thread pool, with a timeout.

Per message type and per worker thread there is one prepared solver (Z3
contexts are not thread-safe, so a thread never shares one). It holds, for
each constraint, definitions ``sel_c == when_c`` and ``ok_c_i == assertion_i``
over the constraint's variables. A check passes the bound values as
*assumptions* (``amount == 12000``...) together with the trackers
``not sel_c or ok_c_i``; nothing is added to or removed from the solver, so
there is no per-message solver construction (a fresh solver costs an order of
magnitude more). ``sat`` means every constraint holds; only a denial pays for a
second check that reads the model to name each false assertion.

Z3 releases the GIL while it solves, so checks run in a thread pool without
stalling the event loop. Z3's own ``timeout`` bounds every solve (cancelling
an ``await`` cannot stop a thread); an ``unknown`` answer, a solver error, an
overloaded pool or a missed deadline denies with ``constraint_error``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final

import z3

from ..models import MessageType, Reason
from ._ast import VarType
from ._binding import MISSING, BadValue, Participant
from ._model import ConstraintSet, Variable
from ._runtime import (
    CODE_ERROR,
    RuntimeConstraint,
    error_reason,
    input_reason,
    violation_reason,
)
from ._z3terms import Translator, constant, value_term

if TYPE_CHECKING:
    from ..models import AgentMessage

logger = logging.getLogger(__name__)

_TIMEOUT_REASONS: Final = frozenset({"timeout", "canceled", "max. resource limit exceeded"})
#: Any value of each type: stands in for a variable whose value cannot matter.
_PLACEHOLDER: Final[dict[VarType, object]] = {
    VarType.INT: 0,
    VarType.REAL: 0,
    VarType.BOOL: False,
    VarType.STRING: "",
}
_WARM_BARRIER_S: Final = 10.0


class _Prepared:
    """One thread's solver for one message type."""

    def __init__(self, runtimes: tuple[RuntimeConstraint, ...], timeout_ms: int) -> None:
        ctx = z3.Context()
        self.ctx = ctx
        self.solver = z3.Solver(ctx=ctx)
        self.solver.set("timeout", timeout_ms)
        self.variables: list[dict[str, z3.ExprRef]] = []
        self.selected: list[z3.BoolRef] = []
        self.holds: list[tuple[z3.BoolRef, ...]] = []
        self.pass_trackers: list[tuple[z3.BoolRef, ...]] = []
        self.unselected_tracker: list[z3.BoolRef] = []
        for index, runtime in enumerate(runtimes):
            constraint = runtime.constraint
            consts = {
                name: constant(f"c{index}.{name}", var.type, ctx)
                for name, var in constraint.variables.items()
            }
            translate = Translator(ctx, consts.__getitem__).translate
            selected = z3.Bool(f"c{index}.selected", ctx)
            when = z3.BoolVal(True, ctx) if constraint.when is None else translate(constraint.when)
            self.solver.add(selected == when)
            holds = []
            for number, assertion in enumerate(constraint.assertions):
                ok = z3.Bool(f"c{index}.ok{number}", ctx)
                self.solver.add(ok == translate(assertion.expr))
                holds.append(ok)
            self.variables.append(consts)
            self.selected.append(selected)
            self.holds.append(tuple(holds))
            self.pass_trackers.append(tuple(z3.Or(z3.Not(selected), ok) for ok in holds))
            self.unselected_tracker.append(z3.Not(selected))


class _Candidate:
    __slots__ = ("index", "problem", "values")

    def __init__(
        self, index: int, values: dict[str, object], problem: tuple[Variable, object] | None
    ) -> None:
        self.index = index
        self.values = values
        self.problem = problem


class Z3Checker:
    """Checks messages against a :class:`ConstraintSet` with Z3, off the event loop.

    ``check`` returns ``()`` at once for a message type no constraint selects,
    and otherwise an awaitable that runs the solver in the checker's thread
    pool. ``evaluate`` is the blocking check itself (thread-safe).

    Example::

        checker = Z3Checker(constraints, timeout_ms=50, threads=2)
        reasons = await checker.check(message, sender, recipient)
        checker.close()
    """

    engine: Final = "z3"

    def __init__(
        self,
        constraints: ConstraintSet,
        *,
        timeout_ms: int = 50,
        threads: int = 2,
        max_pending: int = 1024,
        queue_timeout_ms: int = 1000,
    ) -> None:
        self.constraints = constraints
        self.timeout_ms = timeout_ms
        self._runtimes: dict[MessageType, tuple[RuntimeConstraint, ...]] = {}
        prepared = {c.id: RuntimeConstraint(c) for c in constraints}
        for message_type in constraints.message_types:
            self._runtimes[message_type] = tuple(
                prepared[c.id] for c in constraints.for_message_type(message_type)
            )
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="agentbus-z3")
        self._threads = threads
        self._max_pending = max_pending
        self._deadline_s = (timeout_ms + queue_timeout_ms) / 1000
        self._in_flight = 0
        self._closed = False
        self._lock = threading.Lock()
        self._solver_timeouts = 0
        self._solver_unknowns = 0
        self._solvers_built = 0
        self.checks_total = 0
        self.denied_total = 0
        self.errors_total = 0
        self._deadline_misses = 0
        self.overloaded_total = 0

    # ── blocking check (runs in a worker thread) ─────────────────────────────

    def _prepared(self, message_type: MessageType, *, keep: bool) -> _Prepared:
        cache: dict[MessageType, _Prepared] | None = getattr(self._local, "prepared", None)
        if cache is None:
            cache = {}
            if keep:
                self._local.prepared = cache
        prepared = cache.get(message_type)
        if prepared is None:
            prepared = _Prepared(self._runtimes[message_type], self.timeout_ms)
            with self._lock:  # worker threads; once per thread and type
                self._solvers_built += 1
            if keep:
                cache[message_type] = prepared
        return prepared

    def evaluate(
        self,
        message: AgentMessage,
        sender: Participant | None,
        recipient: Participant | None,
    ) -> tuple[Reason, ...]:
        """The denial reasons for ``message``; blocks while Z3 solves (call it off the loop)."""
        runtimes = self._runtimes.get(message.message_type)
        if runtimes is None:
            return ()
        outcome, candidates = self._bind_all(runtimes, message, sender, recipient)
        return self._decide(runtimes, outcome, candidates, message, sender, recipient, True)

    def _bind_all(
        self,
        runtimes: tuple[RuntimeConstraint, ...],
        message: AgentMessage,
        sender: Participant | None,
        recipient: Participant | None,
    ) -> tuple[list[Reason | None], list[_Candidate]]:
        """Bind every constraint's fields (cheap Python, no Z3): input reasons and candidates."""
        outcome: list[Reason | None] = [None] * len(runtimes)
        candidates: list[_Candidate] = []
        for index, runtime in enumerate(runtimes):
            candidate = self._bind(index, runtime, message, sender, recipient, outcome)
            if candidate is not None:
                candidates.append(candidate)
        return outcome, candidates

    def _decide(
        self,
        runtimes: tuple[RuntimeConstraint, ...],
        outcome: list[Reason | None],
        candidates: list[_Candidate],
        message: AgentMessage,
        sender: Participant | None,
        recipient: Participant | None,
        keep: bool,
    ) -> tuple[Reason, ...]:
        """Let Z3 decide the candidates. ``keep``: reuse this thread's prepared solver."""
        if not candidates:
            return tuple(r for r in outcome if r is not None)
        try:
            return self._solve(runtimes, outcome, candidates, message, sender, recipient, keep)
        except z3.Z3Exception as exc:
            return (error_reason(f"the Z3 solver failed ({exc})"),)

    def _solve(
        self,
        runtimes: tuple[RuntimeConstraint, ...],
        outcome: list[Reason | None],
        candidates: list[_Candidate],
        message: AgentMessage,
        sender: Participant | None,
        recipient: Participant | None,
        keep: bool,
    ) -> tuple[Reason, ...]:
        prepared = self._prepared(message.message_type, keep=keep)
        ctx = prepared.ctx
        assumptions: list[z3.BoolRef] = []
        trackers: list[z3.BoolRef] = []
        for candidate in candidates:
            constraint = runtimes[candidate.index].constraint
            consts = prepared.variables[candidate.index]
            for name, value in candidate.values.items():
                kind = constraint.variables[name].type
                assumptions.append(consts[name] == value_term(kind, value, ctx))
            if candidate.problem is None:
                trackers.extend(prepared.pass_trackers[candidate.index])
            else:
                trackers.append(prepared.unselected_tracker[candidate.index])
        verdict = prepared.solver.check(*assumptions, *trackers)
        if verdict == z3.sat:
            return tuple(r for r in outcome if r is not None)
        if verdict == z3.unknown:
            return (*filter(None, outcome), self._undecided(prepared))
        # Some constraint denies: solve once more without trackers and read the model.
        if prepared.solver.check(*assumptions) != z3.sat:
            return (*filter(None, outcome), self._undecided(prepared))
        model = prepared.solver.model()
        found = False
        for candidate in candidates:
            index = candidate.index
            if not z3.is_true(model.eval(prepared.selected[index], model_completion=True)):
                continue
            runtime = runtimes[index]
            if candidate.problem is not None:
                variable, value = candidate.problem
                outcome[index] = input_reason(runtime.constraint, variable, value)
                found = True
                continue
            failed = [
                assertion
                for assertion, ok in zip(
                    runtime.constraint.assertions, prepared.holds[index], strict=True
                )
                if not z3.is_true(model.eval(ok, model_completion=True))
            ]
            if failed:
                outcome[index] = violation_reason(
                    runtime.constraint, failed, candidate.values, message, sender, recipient
                )
                found = True
        if not found:
            # The trackers were unsatisfiable but no definition is false: never allow on that.
            return (error_reason("the Z3 engine could not explain its own denial"),)
        return tuple(r for r in outcome if r is not None)

    @staticmethod
    def _bind(
        index: int,
        runtime: RuntimeConstraint,
        message: AgentMessage,
        sender: Participant | None,
        recipient: Participant | None,
        outcome: list[Reason | None],
    ) -> _Candidate | None:
        values: dict[str, object] = {}
        bad: tuple[Variable, object] | None = None
        for _slot, variable, bind in runtime.selector_slots:
            value = bind(message, sender, recipient)
            if value is MISSING:
                return None
            if type(value) is BadValue:
                bad = bad or (variable, value)
                continue
            values[variable.name] = value
        if bad is not None:
            outcome[index] = input_reason(runtime.constraint, *bad)
            return None
        problem: tuple[Variable, object] | None = None
        for _slot, variable, bind in runtime.other_slots:
            value = bind(message, sender, recipient)
            if value is MISSING or type(value) is BadValue:
                if runtime.constraint.when is None:
                    outcome[index] = input_reason(runtime.constraint, variable, value)
                    return None
                problem = problem or (variable, value)
                continue
            values[variable.name] = value
        if problem is not None:
            # Whether the constraint selects the message is all Z3 must decide now (if
            # it does, the bad input is the reason), and that rests on the selector's
            # variables alone. Pin the unbound rest so Z3 gets a ground problem: a free
            # variable in nonlinear arithmetic could keep it busy until the timeout.
            for _slot, variable, _bind in runtime.other_slots:
                values.setdefault(variable.name, _PLACEHOLDER[variable.type])
        return _Candidate(index, values, problem)

    def _undecided(self, prepared: _Prepared) -> Reason:
        why = prepared.solver.reason_unknown()
        timed_out = why in _TIMEOUT_REASONS
        with self._lock:  # worker threads; error path only
            if timed_out:
                self._solver_timeouts += 1
            else:
                self._solver_unknowns += 1
        if timed_out:
            return error_reason(
                f"Z3 did not decide the constraints within {self.timeout_ms} ms "
                f"(constraint_timeout_ms; Z3 said {why!r})"
            )
        return error_reason(f"Z3 could not decide the constraints (it answered unknown: {why!r})")

    # ── async check (runs on the event loop) ─────────────────────────────────

    def check(
        self,
        message: AgentMessage,
        sender: Participant | None,
        recipient: Participant | None,
    ) -> tuple[Reason, ...] | Awaitable[tuple[Reason, ...]]:
        """The reasons now when Z3 is not needed (no constraint selects the message, or its
        input is bad), else an awaitable of them (a hop to the engine's thread pool)."""
        runtimes = self._runtimes.get(message.message_type)
        if runtimes is None:
            return ()
        self.checks_total += 1
        outcome, candidates = self._bind_all(runtimes, message, sender, recipient)
        if not candidates:
            reasons = tuple(r for r in outcome if r is not None)
            self._count(reasons, message)
            return reasons
        return self._offload(runtimes, outcome, candidates, message, sender, recipient)

    async def _offload(
        self,
        runtimes: tuple[RuntimeConstraint, ...],
        outcome: list[Reason | None],
        candidates: list[_Candidate],
        message: AgentMessage,
        sender: Participant | None,
        recipient: Participant | None,
    ) -> tuple[Reason, ...]:
        if self._in_flight >= self._max_pending:
            self.errors_total += 1
            self.overloaded_total += 1
            return (
                error_reason(
                    f"the z3 constraint engine already has {self._in_flight} checks in flight "
                    "(z3_max_pending); add z3_threads or use engine='compiled'"
                ),
            )
        self._in_flight += 1
        loop = asyncio.get_running_loop()
        # After close() a message that picked up this stage just before a reload still gets
        # a real answer: a one-off solver (keep=False) in the loop's default executor.
        executor = None if self._closed else self._pool
        keep = not self._closed
        try:
            future = loop.run_in_executor(
                executor,
                self._decide,
                runtimes,
                outcome,
                candidates,
                message,
                sender,
                recipient,
                keep,
            )
            try:
                async with asyncio.timeout(self._deadline_s):
                    reasons = await future
            except TimeoutError:
                future.cancel()
                self.errors_total += 1
                self._deadline_misses += 1
                logger.warning(
                    "z3 constraint check of message %s missed its %.0f ms deadline",
                    message.message_id,
                    self._deadline_s * 1000,
                    extra={"stage": "constraints", "message_id": message.message_id},
                )
                return (
                    error_reason(
                        "the z3 constraint check did not finish within "
                        f"{self._deadline_s * 1000:.0f} ms (solver timeout plus queueing)"
                    ),
                )
        finally:
            self._in_flight -= 1
        self._count(reasons, message)
        return reasons

    def _count(self, reasons: tuple[Reason, ...], message: AgentMessage) -> None:
        if not reasons:
            return
        self.denied_total += 1
        for reason in reasons:
            if reason.code == CODE_ERROR:
                self.errors_total += 1
                logger.warning(
                    "z3 constraint check failed closed for message %s",
                    message.message_id,
                    extra={"stage": "constraints", "message_id": message.message_id},
                )
                break

    async def warm(self) -> None:
        """Build every worker thread's prepared solvers now, not on its first message.

        One job per thread, held at a barrier until all have started, so each
        lands on its own thread. A barrier that breaks (a busy pool) just ends
        the warm-up early: the remaining threads build on first use.
        """
        if self._closed or not self._runtimes:
            return
        barrier = threading.Barrier(self._threads, timeout=_WARM_BARRIER_S)

        def build() -> None:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return
            for message_type in self._runtimes:
                self._prepared(message_type, keep=True)

        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._pool, build) for _ in range(self._threads))
        )

    def stats(self) -> dict[str, int | float]:
        return {
            "checks_total": self.checks_total,
            "denied_total": self.denied_total,
            "errors_total": self.errors_total,
            "timeouts_total": self._deadline_misses + self._solver_timeouts,
            "solver_unknown_total": self._solver_unknowns,
            "overloaded_total": self.overloaded_total,
            "in_flight": self._in_flight,
            "solvers_built": self._solvers_built,
        }

    def close(self) -> None:
        """Retire the thread pool. Checks already queued still finish (their callers are
        waiting); later checks use one-off solvers, so a stage replaced by a reload never
        denies a message only because it was closed."""
        self._closed = True
        self._pool.shutdown(wait=False)

    def __del__(self) -> None:
        # A replaced stage nobody closed must not keep idle threads alive.
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)
