"""Circuit breaker state as health: a mapping and a ready-made probe."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from ..errors import ConfigurationError
from ._health import HealthState, Probe

_BREAKER_STATES: Final[dict[object, HealthState]] = {
    0: HealthState.HEALTHY,
    1: HealthState.DEGRADED,
    2: HealthState.UNHEALTHY,
    "closed": HealthState.HEALTHY,
    "half_open": HealthState.DEGRADED,
    "half-open": HealthState.DEGRADED,
    "open": HealthState.UNHEALTHY,
}


def breaker_health(state: int | str) -> HealthState:
    """Map a circuit breaker state (0/1/2 or closed/half-open/open) onto a health state.

    Raises:
        ConfigurationError: for a value that is not a breaker state.
    """
    key = state.lower() if isinstance(state, str) else state
    health = _BREAKER_STATES.get(key)
    if health is None:
        raise ConfigurationError(
            f"circuit breaker state {state!r} is not 0/1/2 or closed/half-open/open"
        )
    return health


def breaker_probe(stats: Callable[[], Mapping[str, object]], key: str = "breaker_state") -> Probe:
    """A probe reading ``stats()[key]`` (a breaker state) from a component's stats.

    Example::

        health.register_probe("cache_l2", breaker_probe(cache.stats), critical=False)
    """

    def probe() -> tuple[HealthState, str]:
        value = stats().get(key)
        if not isinstance(value, int | str):
            return HealthState.UNHEALTHY, f"stats have no {key!r}"
        state = breaker_health(value)
        if state is HealthState.HEALTHY:
            return state, ""
        return state, "circuit breaker half-open" if state is HealthState.DEGRADED else (
            "circuit breaker open"
        )

    return probe
