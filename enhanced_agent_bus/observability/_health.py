"""Health aggregation: component states combined into healthy / degraded / unhealthy.

Components report in one of two ways:

* push: ``health.set("policy", HealthState.UNHEALTHY, "engine failed to load")``;
* pull: ``health.register_probe("cache_l2", breaker_probe(cache.stats), critical=False)``,
  a cheap synchronous callable run whenever a report is built (``/readyz``, a scrape).

The overall state is the worst component state, except that a *non-critical*
component (one the bus can run without, such as the L2 cache, which degrades
to L1) makes the bus at most *degraded*. ``/readyz`` answers 503 only when the
overall state is unhealthy.

Listeners added with :meth:`HealthAggregator.add_listener` are told about every
change of a component's state. They never run inside ``set()``: on the event
loop they are scheduled with ``loop.call_soon`` (async listeners are spawned on
the :class:`~enhanced_agent_bus.tasks.TaskSupervisor`), from another thread
with ``call_soon_threadsafe``. A listener that raises is logged and counted in
``stats()["callback_errors"]``; the exception never reaches the component.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..tasks import TaskSupervisor

logger = logging.getLogger(__name__)

DEFAULT_MAX_COMPONENTS: Final = 32


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"

    @property
    def severity(self) -> int:
        """0 healthy, 1 degraded, 2 unhealthy (the value of the health gauges)."""
        return _SEVERITY[self]


_SEVERITY: Final = {HealthState.HEALTHY: 0, HealthState.DEGRADED: 1, HealthState.UNHEALTHY: 2}
_BY_SEVERITY: Final = (HealthState.HEALTHY, HealthState.DEGRADED, HealthState.UNHEALTHY)

#: A probe returns a state, or a state and a reason. It must be cheap and must not block.
Probe: TypeAlias = Callable[[], "HealthState | tuple[HealthState, str]"]


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """The current state of one component."""

    component: str
    state: HealthState
    reason: str
    critical: bool
    #: Monotonic time (the aggregator's clock) when the component entered ``state``.
    since_s: float


@dataclass(frozen=True, slots=True)
class HealthChange:
    """One component changed state; ``overall`` is the aggregate after the change."""

    component: str
    previous: HealthState | None
    current: HealthState
    reason: str
    overall_previous: HealthState
    overall: HealthState


#: ``def listener(change: HealthChange) -> None`` or ``async def listener(change) -> None``.
HealthListener: TypeAlias = Callable[[HealthChange], "Awaitable[None] | None"]


@dataclass(frozen=True, slots=True)
class HealthReport:
    """A snapshot: the overall state and every component."""

    state: HealthState
    components: tuple[ComponentHealth, ...]
    #: Monotonic time the report was taken at.
    at_s: float

    @property
    def is_ready(self) -> bool:
        """True unless unhealthy (degraded still serves traffic)."""
        return self.state is not HealthState.UNHEALTHY

    @property
    def reasons(self) -> tuple[str, ...]:
        """``"component: reason"`` for every component that is not healthy."""
        return tuple(
            f"{c.component}: {c.reason or c.state.value}"
            for c in self.components
            if c.state is not HealthState.HEALTHY
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of ``/readyz``."""
        return {
            "status": self.state.value,
            "reasons": list(self.reasons),
            "components": {
                c.component: {
                    "state": c.state.value,
                    "reason": c.reason,
                    "critical": c.critical,
                    "for_s": round(max(0.0, self.at_s - c.since_s), 3),
                }
                for c in self.components
            },
        }


def _overall(components: Mapping[str, ComponentHealth]) -> HealthState:
    worst = 0
    for health in components.values():
        severity = health.state.severity
        if not health.critical:
            severity = min(severity, 1)
        worst = max(worst, severity)
    return _BY_SEVERITY[worst]


def _coerce_state(state: HealthState | str, component: str) -> HealthState:
    try:
        return HealthState(state)
    except ValueError:
        raise ConfigurationError(
            f"health state {state!r} for component {component!r} is not one of "
            f"{[s.value for s in HealthState]}; pass a HealthState."
        ) from None


class HealthAggregator:
    """Combines component states into one health state, and tells listeners of changes.

    Args:
        clock: monotonic time source (for how long a component has been in its state).
        supervisor: spawns async listeners; without one only sync listeners are allowed.
        max_components: bound on distinct components (each one is a metric series).

    Example::

        health = HealthAggregator(supervisor=bus_tasks)
        health.register_probe("cache_l2", breaker_probe(cache.stats), critical=False)
        health.set("policy", HealthState.HEALTHY)
        health.add_listener(lambda change: print(change.component, change.current))
        print(health.report().to_dict())
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        supervisor: TaskSupervisor | None = None,
        max_components: int = DEFAULT_MAX_COMPONENTS,
    ) -> None:
        if max_components < 1:
            raise ConfigurationError(f"max_components={max_components!r} must be >= 1")
        self._clock = clock or SystemClock()
        self._supervisor = supervisor
        self._max_components = max_components
        self._components: dict[str, ComponentHealth] = {}
        self._probes: dict[str, Probe] = {}
        self._listeners: list[HealthListener] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.transitions_total = 0
        self.callback_errors_total = 0
        self.probe_errors_total = 0
        self.notifications_total = 0

    # -- reporting ------------------------------------------------------------------------

    def set(
        self,
        component: str,
        state: HealthState | str,
        reason: str = "",
        *,
        critical: bool | None = None,
    ) -> None:
        """Record ``component``'s state. Cheap when nothing changed; never raises to a caller
        that passes a valid state.

        Args:
            critical: whether an unhealthy ``component`` makes the bus unhealthy; defaults
                to the value it was registered with, or True for a new component.

        Raises:
            ConfigurationError: for an unknown state or too many components.
        """
        self._remember_loop()
        self._update(component, _coerce_state(state, component), reason, critical)

    def register_probe(self, component: str, probe: Probe, *, critical: bool = True) -> None:
        """Poll ``probe`` for ``component``'s state whenever a report is built.

        Raises:
            ConfigurationError: if ``component`` already has a probe, or too many components.
        """
        if component in self._probes:
            raise ConfigurationError(
                f"health component {component!r} already has a probe; remove() it first."
            )
        self._remember_loop()
        self._probes[component] = probe
        self._update(component, HealthState.HEALTHY, "not probed yet", critical)
        self._run_probe(component, probe)

    def remove(self, component: str) -> None:
        """Forget ``component`` (and its probe). Unknown names are ignored."""
        with self._lock:
            self._probes.pop(component, None)
            self._components.pop(component, None)

    def add_listener(self, listener: HealthListener) -> None:
        """Call ``listener(change)`` after every component state change (never inline).

        Raises:
            ConfigurationError: for an ``async def`` listener without a supervisor.
        """
        if inspect.iscoroutinefunction(listener) and self._supervisor is None:
            raise ConfigurationError(
                "an async health listener needs a TaskSupervisor to run on: build the "
                "HealthAggregator with supervisor=..., or pass a plain function."
            )
        self._remember_loop()
        self._listeners.append(listener)

    def report(self) -> HealthReport:
        """Run the probes and return a snapshot."""
        for component, probe in tuple(self._probes.items()):
            self._run_probe(component, probe)
        with self._lock:
            components = dict(self._components)
        return HealthReport(
            state=_overall(components),
            components=tuple(components[name] for name in sorted(components)),
            at_s=self._clock.monotonic(),
        )

    @property
    def state(self) -> HealthState:
        """The overall state (runs the probes)."""
        return self.report().state

    def stats(self) -> dict[str, int | float]:
        with self._lock:
            components = dict(self._components)
        overall = _overall(components)
        return {
            "state": overall.severity,
            "components": len(components),
            "unhealthy_components": sum(
                1 for c in components.values() if c.state is HealthState.UNHEALTHY
            ),
            "transitions": self.transitions_total,
            "notifications": self.notifications_total,
            "callback_errors": self.callback_errors_total,
            "probe_errors": self.probe_errors_total,
        }

    # -- internals ------------------------------------------------------------------------

    def _run_probe(self, component: str, probe: Probe) -> None:
        try:
            outcome = probe()
            if isinstance(outcome, tuple):
                state, reason = _coerce_state(outcome[0], component), str(outcome[1])
            else:
                state, reason = _coerce_state(outcome, component), ""
        except Exception as exc:
            self.probe_errors_total += 1
            state, reason = HealthState.UNHEALTHY, f"health probe raised {type(exc).__name__}"
            logger.warning(
                "health probe for %s raised %s",
                component,
                type(exc).__name__,
                extra={"component": component},
            )
        if component in self._probes:
            self._update(component, state, reason, None)

    def _update(
        self, component: str, state: HealthState, reason: str, critical: bool | None
    ) -> None:
        with self._lock:
            previous = self._components.get(component)
            if previous is None and len(self._components) >= self._max_components:
                raise ConfigurationError(
                    f"health component {component!r} would exceed max_components="
                    f"{self._max_components}; reuse component names or raise the bound."
                )
            is_critical = (
                critical
                if critical is not None
                else (previous.critical if previous is not None else True)
            )
            if (
                previous is not None
                and previous.state is state
                and previous.reason == reason
                and previous.critical == is_critical
            ):
                return
            overall_previous = _overall(self._components)
            since = (
                previous.since_s
                if previous is not None and previous.state is state
                else self._clock.monotonic()
            )
            self._components[component] = ComponentHealth(
                component, state, reason, is_critical, since
            )
            if previous is not None and previous.state is state:
                return  # reason or criticality changed: no transition to announce
            if previous is None and state is HealthState.HEALTHY:
                return  # a component joining healthy is not news
            overall = _overall(self._components)
            self.transitions_total += 1
        change = HealthChange(
            component,
            previous.state if previous is not None else None,
            state,
            reason,
            overall_previous,
            overall,
        )
        if state is HealthState.HEALTHY:
            logger.info("health: %s recovered (overall %s)", component, overall.value)
        else:
            logger.warning(
                "health: %s is %s: %s (overall %s)",
                component,
                state.value,
                reason,
                overall.value,
                extra={"component": component},
            )
        self._notify(change)

    def _remember_loop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()

    def _notify(self, change: HealthChange) -> None:
        if not self._listeners:
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            running.call_soon(self._dispatch, change)
        elif self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._dispatch, change)
        else:
            # No loop anywhere (a synchronous program): nothing to block, call directly.
            self._dispatch(change)

    def _dispatch(self, change: HealthChange) -> None:
        for listener in tuple(self._listeners):
            self.notifications_total += 1
            try:
                outcome = listener(change)
            except Exception as exc:
                self._listener_failed(listener, exc)
                continue
            if inspect.isawaitable(outcome):
                self._spawn(listener, outcome)

    def _spawn(self, listener: HealthListener, outcome: Awaitable[None]) -> None:
        if self._supervisor is None or not _has_running_loop():
            self.callback_errors_total += 1
            if inspect.iscoroutine(outcome):
                outcome.close()
            logger.warning(
                "async health listener %r could not run: no supervisor or event loop",
                listener,
            )
            return
        self._supervisor.spawn(self._guarded(listener, outcome), name="agentbus:health-listener")

    async def _guarded(self, listener: HealthListener, outcome: Awaitable[None]) -> None:
        try:
            await outcome
        except Exception as exc:
            self._listener_failed(listener, exc)

    def _listener_failed(self, listener: HealthListener, exc: Exception) -> None:
        self.callback_errors_total += 1
        logger.warning(
            "health listener %r raised %s; ignored",
            listener,
            type(exc).__name__,
            exc_info=exc,
        )


def _has_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
