"""Settings of the constraint stage (mounted as ``BusSettings.constraints``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ConstraintEngineName = Literal["compiled", "z3"]


class ConstraintSettings(BaseModel):
    """How constraints are checked per message and verified at load.

    ``compiled`` (the default) evaluates the constraint AST with plain Python
    closures on the event loop, about a microsecond per constraint. ``z3`` asks a
    prepared Z3 solver in a thread pool, with a timeout: tens to hundreds of
    microseconds per message, for deployments that want the solver itself in
    the loop. Both engines give the same verdicts (a differential test proves it).

    Example::

        ConstraintSettings(engine="z3", constraint_timeout_ms=20, z3_threads=4)
        # AGENTBUS_CONSTRAINTS__ENGINE=z3 AGENTBUS_CONSTRAINTS__CONSTRAINT_TIMEOUT_MS=20
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Per-message engine.
    engine: ConstraintEngineName = "compiled"
    #: Z3's time limit for one per-message check (z3 engine); on expiry the message is denied.
    constraint_timeout_ms: int = Field(50, ge=1, le=60_000)
    #: Prove the constraints consistent when a constitution loads (refuse it on errors).
    verify_on_load: bool = True
    #: Z3's time limit per load-time verification query.
    verify_timeout_ms: int = Field(5_000, ge=1, le=600_000)
    #: Worker threads of the z3 engine (Z3 releases the GIL while it solves).
    z3_threads: int = Field(2, ge=1, le=64)
    #: Checks queued or running in the z3 engine before new ones are denied (backpressure).
    z3_max_pending: int = Field(1_024, ge=1, le=1_000_000)
    #: Extra time a z3 check may wait for a free thread before it is denied.
    z3_queue_timeout_ms: int = Field(1_000, ge=0, le=600_000)
    #: The declarations file inside the bundle; a bundle without it has no constraints.
    file: str = Field("constraints.yaml", min_length=1, max_length=255, pattern=r"^[^/\\][^\\]*$")
