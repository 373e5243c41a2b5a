"""A generic circuit breaker: closed -> open -> half-open -> closed.

The breaker knows nothing about what it protects. Callers either wrap a call
with :meth:`CircuitBreaker.call` (which raises :class:`CircuitOpenError` while
the circuit is open), or use the permit API when raising is not wanted, as the
decision cache does on its hot path::

    permit = breaker.acquire()
    if permit is None:
        ...                           # open: skip the backend
    else:
        try:
            value = await backend()
        except BackendError:
            breaker.record_failure(permit)
        else:
            breaker.record_success(permit)

A permit is the breaker's *generation* (bumped on every state change), so a
result that arrives after the state moved on (a slow call admitted while
closed that fails after the circuit re-closed) is recognised as stale and
changes nothing. There are no timers and no tasks: an open circuit becomes
half-open lazily, on the first ``acquire`` after ``reset_timeout_s``, read
from an injectable :class:`~enhanced_agent_bus.clock.Clock`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import TypeVar

from ..clock import Clock, SystemClock
from ..errors import BackendUnavailableError, ConfigurationError
from ._settings import BreakerSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BreakerState(IntEnum):
    """The circuit's state; the integer value is what metrics export."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


#: ``listener(breaker_name, old_state, new_state)``; must not block.
StateListener = Callable[[str, BreakerState, BreakerState], None]


class CircuitOpenError(BackendUnavailableError):
    """A call was refused because its circuit is open."""

    def __init__(self, name: str, retry_after_s: float) -> None:
        super().__init__(
            f"Circuit {name!r} is open after repeated failures of its backend; calls are "
            f"refused for another {retry_after_s:.3g} s, then one probe is let through. "
            "Check the backend's health, or lower reset_timeout_s to probe sooner."
        )
        self.name = name
        self.retry_after_s = retry_after_s


def _every_exception(exc: BaseException) -> bool:
    return True


class CircuitBreaker:
    """Counts consecutive failures of a backend and stops calling it while it is down.

    Args:
        name: identifies the circuit in logs, errors, listeners and health.
        failure_threshold: consecutive failures (while closed) that open the circuit.
        reset_timeout_s: how long the circuit stays open before a probe is allowed.
        half_open_max_calls: probes allowed concurrently while half-open.
        success_threshold: successful probes that close the circuit again.
        clock: time source (tests pass a manual clock).
        is_failure: decides whether an exception raised inside :meth:`call`
            counts as a backend failure; others count as success (the backend
            answered). Default: every ``Exception``.

    Raises:
        ConfigurationError: a threshold or timeout is out of range.

    Example::

        breaker = CircuitBreaker("opa", failure_threshold=3, reset_timeout_s=2.0)
        decision = await breaker.call(lambda: client.evaluate(document))
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout_s: float = 5.0,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        clock: Clock | None = None,
        is_failure: Callable[[BaseException], bool] | None = None,
    ) -> None:
        for label, value in (
            ("failure_threshold", failure_threshold),
            ("half_open_max_calls", half_open_max_calls),
            ("success_threshold", success_threshold),
        ):
            if value < 1:
                raise ConfigurationError(
                    f"CircuitBreaker {name!r}: {label}={value!r} must be an integer >= 1."
                )
        if not reset_timeout_s > 0:
            raise ConfigurationError(
                f"CircuitBreaker {name!r}: reset_timeout_s={reset_timeout_s!r} must be > 0 seconds."
            )
        self.name = name
        self._failure_threshold = failure_threshold
        self._reset_timeout_s = reset_timeout_s
        self._half_open_max_calls = half_open_max_calls
        self._success_threshold = success_threshold
        self._now = (clock or SystemClock()).monotonic
        self._is_failure = is_failure or _every_exception
        self._listeners: list[StateListener] = []

        self._state = BreakerState.CLOSED
        self._generation = 0
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._probes_in_flight = 0
        self._probe_successes = 0

        self._successes_total = 0
        self._failures_total = 0
        self._rejected_total = 0
        self._stale_total = 0
        self._opened_total = 0
        self._state_changes_total = 0
        self._listener_errors_total = 0

    @classmethod
    def from_settings(
        cls,
        name: str,
        settings: BreakerSettings,
        *,
        clock: Clock | None = None,
        is_failure: Callable[[BaseException], bool] | None = None,
    ) -> CircuitBreaker:
        """Build a breaker from :class:`BreakerSettings`."""
        return cls(
            name,
            failure_threshold=settings.failure_threshold,
            reset_timeout_s=settings.reset_timeout_s,
            half_open_max_calls=settings.half_open_max_calls,
            success_threshold=settings.success_threshold,
            clock=clock,
            is_failure=is_failure,
        )

    @property
    def state(self) -> BreakerState:
        """The current state. An open circuit turns half-open on the next ``acquire``."""
        return self._state

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener(name, old, new)`` on every state change.

        Listeners run synchronously inside the call that caused the change, so
        they must only hand work off. An exception from a listener is logged and
        counted, never propagated.
        """
        self._listeners.append(listener)

    def retry_after_s(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self._reset_timeout_s - self._now())

    def would_allow(self) -> bool:
        """Whether :meth:`acquire` would currently grant a permit (no side effects)."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            return self._now() - self._opened_at >= self._reset_timeout_s
        return self._probes_in_flight < self._half_open_max_calls

    def acquire(self) -> int | None:
        """Ask to call the backend: a permit, or ``None`` while the circuit refuses calls.

        Every permit must be settled with exactly one of :meth:`record_success`,
        :meth:`record_failure` or :meth:`release`.
        """
        if self._state is BreakerState.CLOSED:
            return self._generation
        if (
            self._state is BreakerState.OPEN
            and self._now() - self._opened_at >= self._reset_timeout_s
        ):
            self._transition(BreakerState.HALF_OPEN)
        if (
            self._state is BreakerState.HALF_OPEN
            and self._probes_in_flight < self._half_open_max_calls
        ):
            self._probes_in_flight += 1
            return self._generation
        self._rejected_total += 1
        return None

    def record_success(self, permit: int) -> None:
        """The call made under ``permit`` succeeded."""
        self._successes_total += 1
        if permit != self._generation:
            self._stale_total += 1
            return
        if self._state is BreakerState.CLOSED:
            self._consecutive_failures = 0
        elif self._state is BreakerState.HALF_OPEN:
            self._probes_in_flight -= 1
            self._probe_successes += 1
            if self._probe_successes >= self._success_threshold:
                self._transition(BreakerState.CLOSED)

    def record_failure(self, permit: int) -> None:
        """The call made under ``permit`` failed (error or timeout of the backend)."""
        self._failures_total += 1
        if permit != self._generation:
            self._stale_total += 1
            return
        if self._state is BreakerState.CLOSED:
            self._consecutive_failures += 1
            if self._consecutive_failures >= self._failure_threshold:
                self._transition(BreakerState.OPEN)
        elif self._state is BreakerState.HALF_OPEN:
            self._transition(BreakerState.OPEN)

    def release(self, permit: int) -> None:
        """The call made under ``permit`` ended without a verdict (it was cancelled)."""
        if permit == self._generation and self._state is BreakerState.HALF_OPEN:
            self._probes_in_flight -= 1

    def reset(self) -> None:
        """Force the circuit closed (an operator knows the backend is back)."""
        if self._state is not BreakerState.CLOSED:
            self._transition(BreakerState.CLOSED)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await ``fn()`` under the breaker.

        Raises:
            CircuitOpenError: the circuit is open; ``fn`` was not called.
            Exception: whatever ``fn`` raised (after counting it).
        """
        permit = self.acquire()
        if permit is None:
            raise CircuitOpenError(self.name, self.retry_after_s())
        succeeded: bool | None = None
        try:
            result = await fn()
            succeeded = True
            return result
        except Exception as exc:
            succeeded = not self._is_failure(exc)
            raise
        finally:
            # None here means cancellation (or another BaseException): no verdict on
            # the backend, but a half-open probe slot must be given back.
            if succeeded is None:
                self.release(permit)
            elif succeeded:
                self.record_success(permit)
            else:
                self.record_failure(permit)

    def stats(self) -> dict[str, int | float]:
        """Cheap counters for metrics and health."""
        return {
            "state": int(self._state),
            "consecutive_failures": self._consecutive_failures,
            "successes_total": self._successes_total,
            "failures_total": self._failures_total,
            "rejected_total": self._rejected_total,
            "stale_results_total": self._stale_total,
            "opened_total": self._opened_total,
            "state_changes_total": self._state_changes_total,
            "listener_errors_total": self._listener_errors_total,
            "retry_after_s": self.retry_after_s(),
        }

    def _transition(self, new: BreakerState) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        self._state_changes_total += 1
        self._consecutive_failures = 0
        self._probes_in_flight = 0
        self._probe_successes = 0
        if new is BreakerState.OPEN:
            self._opened_at = self._now()
            self._opened_total += 1
            logger.warning(
                "circuit %s opened (was %s); refusing calls for %.3g s",
                self.name,
                old.name,
                self._reset_timeout_s,
                extra={"circuit": self.name, "state": new.name},
            )
        else:
            logger.info(
                "circuit %s is %s (was %s)",
                self.name,
                new.name,
                old.name,
                extra={"circuit": self.name, "state": new.name},
            )
        for listener in tuple(self._listeners):
            try:
                listener(self.name, old, new)
            except Exception:
                # A broken observer must not change the breaker's behaviour.
                self._listener_errors_total += 1
                logger.exception(
                    "state listener of circuit %s failed",
                    self.name,
                    extra={"circuit": self.name},
                )
