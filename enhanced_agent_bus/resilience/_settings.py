"""Settings of a :class:`~enhanced_agent_bus.resilience.CircuitBreaker`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BreakerSettings(BaseModel):
    """When a circuit opens, how long it stays open, and how it probes its way back.

    Example::

        BreakerSettings(failure_threshold=3, reset_timeout_s=5.0)
        # AGENTBUS_CACHE__BREAKER__FAILURE_THRESHOLD=3 once mounted under ``cache``
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Consecutive failures that open the circuit.
    failure_threshold: int = Field(5, ge=1, le=10_000)
    #: How long an open circuit refuses calls before it lets a probe through.
    reset_timeout_s: float = Field(5.0, gt=0, le=3_600)
    #: Probe calls allowed at the same time while half-open.
    half_open_max_calls: int = Field(1, ge=1, le=1_000)
    #: Successful probes needed to close the circuit again.
    success_threshold: int = Field(1, ge=1, le=1_000)
