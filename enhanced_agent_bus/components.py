"""The subsystems a bus is assembled from, built from one BusSettings.

``AgentBus`` owns lifecycle and routing; this module owns *what* runs in the
pipeline and in the background, so adding a subsystem never touches routing.
"""

from __future__ import annotations

from .constitution import Constitution, HashRotation
from .observers import BusObserver
from .pipeline import (
    AdmissionStage,
    ConstitutionalHashStage,
    Pipeline,
    TenantIsolationStage,
    ValidationStage,
    cross_tenant_rules,
)
from .registry import AgentRegistry
from .settings import BusSettings
from .tasks import TaskSupervisor


class BusComponents:
    """Builds the pipeline for a constitution and runs the bus's background subsystems."""

    def __init__(self, settings: BusSettings, supervisor: TaskSupervisor) -> None:
        self._settings = settings
        self._supervisor = supervisor
        self.observers: tuple[BusObserver, ...] = ()

    def build_pipeline(self, constitution: Constitution, rotation: HashRotation) -> Pipeline:
        """Compile every stage for ``constitution``; raises ConfigurationError if it is invalid."""
        stages: list[ValidationStage] = [
            AdmissionStage(self._settings.max_payload_bytes),
            ConstitutionalHashStage(rotation),
            TenantIsolationStage(cross_tenant_rules(constitution.data_document())),
        ]
        return Pipeline(stages)

    async def start(self, registry: AgentRegistry, pipeline: Pipeline) -> None:
        """Start background subsystems before the bus accepts messages."""

    async def on_constitution_loaded(self, registry: AgentRegistry, pipeline: Pipeline) -> None:
        """Called after a new constitution is swapped in on a running bus."""

    async def aclose(self) -> None:
        """Flush and stop background subsystems (after mailboxes drained)."""

    def stats(self) -> dict[str, dict[str, float | int | str]]:
        return {}
