"""Reusable resilience parts: a circuit breaker with an injectable clock.

Example::

    from enhanced_agent_bus.resilience import CircuitBreaker, CircuitOpenError

    breaker = CircuitBreaker("opa", failure_threshold=3, reset_timeout_s=2.0)
    try:
        decision = await breaker.call(lambda: client.evaluate(document))
    except CircuitOpenError:
        ...  # fail closed, or degrade
"""

from ._breaker import BreakerState, CircuitBreaker, CircuitOpenError, StateListener
from ._settings import BreakerSettings

__all__ = [
    "BreakerSettings",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "StateListener",
]
