"""The subsystems a bus is assembled from, built from one BusSettings.

``AgentBus`` owns lifecycle and routing; this module owns *what* runs in the
pipeline and in the background, so adding a subsystem never touches routing.

Pipelines are built per constitution (possibly on a worker thread), then
*activated* on the loop (engines started, decisions warmed) before the bus
swaps them in, and *retired* after the swap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar, runtime_checkable

from .background import AuditLog, AuditSink, Metering
from .cache import TieredCache
from .clock import Clock
from .constitution import Constitution, HashRotation
from .models import MessageType
from .observability import BusMetrics, HealthAggregator, HealthState, breaker_probe
from .observers import BusObserver
from .pipeline import (
    AdmissionStage,
    ConstitutionalHashStage,
    ConstraintStage,
    Pipeline,
    PolicyStage,
    TenantIsolationStage,
    ValidationStage,
    cross_tenant_rules,
)
from .policy import PolicyDecision, PolicyDecisionCodec
from .registry import AgentRegistry
from .settings import BusSettings
from .tasks import TaskSupervisor

logger = logging.getLogger(__name__)

StatsDict = dict[str, float | int | str]
StageT = TypeVar("StageT")


@runtime_checkable
class LifecycleStage(Protocol):
    """A stage that owns resources (an engine, an executor, a session)."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


def has_policy(constitution: Constitution) -> bool:
    """A bundle with Rego modules gets a policy stage; one without has no policy to apply
    (likewise a bundle without a constraints file gets no constraint stage)."""
    return any(not path.endswith("_test.rego") for path in constitution.files_with_suffix(".rego"))


class BusComponents:
    """Builds the pipeline for a constitution and runs the bus's background subsystems."""

    def __init__(
        self,
        settings: BusSettings,
        supervisor: TaskSupervisor,
        clock: Clock,
        *,
        audit_sink: AuditSink | None = None,
    ) -> None:
        self._settings = settings
        self._supervisor = supervisor
        # One decision cache across reloads: keys contain the constitutional hash, so a
        # decision made under one constitution is never served under another.
        self.decision_cache: TieredCache[PolicyDecision] = TieredCache.from_settings(
            settings.cache, PolicyDecisionCodec(), supervisor=supervisor, clock=clock
        )
        self.health = HealthAggregator(clock=clock, supervisor=supervisor)
        self.metrics: BusMetrics | None = None
        observers: list[BusObserver] = []
        if settings.observability.metrics_enabled:
            self.metrics = BusMetrics.from_settings(settings.observability)
            self.metrics.attach_health(self.health)
            observers.append(self.metrics.observer)
        # Every decision is audited (hash-chained) and metered, in background batches.
        self.audit: AuditLog | None = None
        if audit_sink is not None:
            self.audit = AuditLog(audit_sink, settings.audit, clock=clock)
        elif settings.audit.enabled:
            self.audit = AuditLog.from_settings(settings.audit, redis_url=self._redis_url())
        self.metering: Metering | None = None
        if settings.metering.enabled:
            self.metering = Metering.from_settings(settings.metering, redis_url=self._redis_url())
            if self.metrics is not None:
                self.metrics.attach_usage(self.metering.snapshot)
        observers.extend(o for o in (self.audit, self.metering) if o is not None)
        self.observers: tuple[BusObserver, ...] = tuple(observers)
        self._policy: PolicyStage | None = None
        self._constraints: ConstraintStage | None = None
        if self.decision_cache.has_l2:
            self.health.register_probe(
                "cache_l2", breaker_probe(self.decision_cache.stats), critical=False
            )

    def _redis_url(self) -> str | None:
        url = self._settings.cache.redis_url
        return url.get_secret_value() if url is not None else None

    def attach_stats(
        self, source: Callable[[], Mapping[str, Mapping[str, float | int | str]]]
    ) -> None:
        """Let the metrics exporter read ``bus.stats()`` at scrape time."""
        if self.metrics is not None:
            self.metrics.attach_stats(source)

    def build_pipeline(self, constitution: Constitution, rotation: HashRotation) -> Pipeline:
        """Compile every stage for ``constitution``.

        Raises:
            ConfigurationError: the bundle is invalid (PolicyLoadError names file and line).
        """
        stages: list[ValidationStage] = [
            AdmissionStage(self._settings.max_payload_bytes),
            ConstitutionalHashStage(rotation),
            TenantIsolationStage(cross_tenant_rules(constitution.data_document())),
        ]
        if has_policy(constitution):
            stages.append(
                PolicyStage.from_constitution(
                    constitution, self._settings.policy, cache=self.decision_cache
                )
            )
        if constitution.has_file(self._settings.constraints.file):
            stages.append(
                ConstraintStage.from_constitution(constitution, self._settings.constraints)
            )
        return Pipeline(stages, timer=self.metrics)

    async def activate(self, pipeline: Pipeline, registry: AgentRegistry) -> None:
        """Start a pipeline's engines and warm its decisions, before it takes traffic."""
        started: list[LifecycleStage] = []
        try:
            for stage in pipeline.stages:
                if isinstance(stage, LifecycleStage):
                    await stage.start()
                    started.append(stage)
            policy = _stage_of(pipeline, PolicyStage)
            if policy is not None:
                await policy.warm(list(registry), list(MessageType))
        except BaseException:
            for resource in started:
                await resource.aclose()
            raise
        self._policy = policy
        self._constraints = _stage_of(pipeline, ConstraintStage)
        self.health.set("policy_engine", HealthState.HEALTHY, "")

    async def retire(self, pipeline: Pipeline) -> None:
        """Release what a swapped-out pipeline holds."""
        for stage in pipeline.stages:
            if not isinstance(stage, LifecycleStage):
                continue
            try:
                await stage.aclose()
            except Exception:
                logger.exception("closing retired stage %s failed", stage.name)

    async def start(self, registry: AgentRegistry, pipeline: Pipeline) -> None:
        """Start background subsystems and the first pipeline before the bus takes messages.

        Raises:
            SinkUnavailableError: the audit or metering sink cannot be opened.
        """
        if self.audit is not None:
            await self.audit.start(self._supervisor)
            self.health.set("audit_sink", HealthState.HEALTHY, "")
        if self.metering is not None:
            await self.metering.start(self._supervisor)
        await self.activate(pipeline, registry)

    async def aclose(self, pipeline: Pipeline) -> None:
        """Flush and stop background subsystems (after mailboxes drained): every
        decision accepted for audit or metering is in its sink when this returns."""
        await self.retire(pipeline)
        if self.audit is not None:
            await self.audit.aclose()
        if self.metering is not None:
            await self.metering.aclose()
        # Before the supervisor cancels what is left: L2 writes in flight finish here.
        await self.decision_cache.aclose()
        if self.metrics is not None:
            self.metrics.close()

    def stats(self) -> dict[str, StatsDict]:
        out: dict[str, StatsDict] = {"cache": dict(self.decision_cache.stats())}
        if self._policy is not None:
            out["policy"] = dict(self._policy.stats())
        if self._constraints is not None:
            out["constraints"] = dict(self._constraints.stats())
        if self.audit is not None:
            out["audit"] = dict(self.audit.stats())
        if self.metering is not None:
            out["metering"] = dict(self.metering.stats())
        out["health"] = dict(self.health.stats())
        return out


def _stage_of(pipeline: Pipeline, kind: type[StageT]) -> StageT | None:
    """The pipeline's stage of type ``kind``, if it has one."""
    return next((stage for stage in pipeline.stages if isinstance(stage, kind)), None)
