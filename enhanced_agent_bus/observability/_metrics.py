"""Prometheus metrics of one bus: the families, the hot-path observer, and scrape wiring.

Each :class:`BusMetrics` owns a fresh ``CollectorRegistry`` by default, so
several buses in one process never collide; pass
``prometheus_client.REGISTRY`` to opt into the process-wide registry (only one
bus may do that). Per-message updates go to lock-free cells (``_hot.py``) bound
once per label combination and cached in a dict keyed by what the caller has at
hand, so a decision costs two dict lookups and four attribute updates;
everything else is read from ``bus.stats()`` only when Prometheus scrapes.
The family catalogue and label cardinality are documented in ``_catalogue.py``.
Hot-path methods must be called from the bus's event loop thread.

Example::

    metrics = BusMetrics(tenant_labels=frozenset({"acme"}))
    bus = AgentBus(settings, observers=[metrics.observer])   # per-decision counts, latency
    metrics.attach_stats(bus.stats)            # scrape-time component stats
    metrics.attach_usage(metering.snapshot)    # scrape-time per-tenant cost
    print(metrics.exposition().decode())
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from ..errors import ConfigurationError
from ..models import AgentMessage, DeadLetter, DeliveryResult
from ._catalogue import (
    SEND_DURATION_BUCKETS_S,
    STAGE_DURATION_BUCKETS_S,
    WORKFLOW_STEP_DURATION_BUCKETS_S,
)
from ._health_collector import HealthCollector
from ._hot import (
    CounterCell,
    HistogramCell,
    HotCollector,
    decision_latency,
    hot_counter,
    hot_histogram,
)
from ._labels import OTHER, BoundedChildren, TenantLabeler
from ._settings import ObservabilitySettings, TenantLabelPolicy
from ._stats_collector import StatsCollector, StatsSource
from ._usage_collector import UsageCollector, UsageKeyT, UsageSource

if TYPE_CHECKING:
    from ._health import HealthAggregator

logger = logging.getLogger(__name__)

#: ``stage`` / ``code`` label value of a decision without reasons (a plain delivery).
NO_REASON: Final = "none"
_MAX_STAGES: Final = 64
_MAX_STEP_OUTCOMES: Final = 64


class MetricsObserver:
    """A :class:`~enhanced_agent_bus.observers.BusObserver` that counts decisions and dead letters.

    ``on_decision`` costs about 0.25 µs (``benchmarks/bench_metrics.py``): one
    dict lookup for the cell bound to (outcome, message type, stage, code), a C
    bisect and two attribute updates; that one cell yields both the decision
    count and the send latency histogram at scrape time (``_hot.py``).
    Per-tenant cost comes from metering at scrape time, not from here. It never
    blocks and never raises for well-formed results. Call it on the event loop
    thread (see ``_hot.py``).
    """

    __slots__ = ("_cells", "_dead_letters", "_decisions")

    def __init__(self, metrics: BusMetrics) -> None:
        self._decisions = metrics._decisions
        self._dead_letters = metrics._dead_letters
        # Keyed by what the hot path has at hand; bounded by BoundedChildren's own key cap.
        self._cells = metrics._decisions.children

    def on_decision(self, message: AgentMessage, result: DeliveryResult) -> None:
        # Keys hold the enum members themselves: measured cheaper than their string values.
        reasons = result.reasons
        if reasons:
            first = reasons[0]
            key: Hashable = (result.status, message.message_type, first.stage, first.code)
        else:
            key = (result.status, message.message_type)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._bind(key, message, result)
        # HistogramCell.observe inlined (bounds in µs): "le" buckets, first bound >= latency.
        latency_us = result.latency_us
        cell.counts[bisect_left(cell.bounds, latency_us)] += 1
        cell.sum += latency_us

    def _bind(self, key: Hashable, message: AgentMessage, result: DeliveryResult) -> HistogramCell:
        if result.reasons:
            stage = result.reasons[0].stage or NO_REASON
            code = result.reasons[0].code or NO_REASON
        else:
            stage = code = NO_REASON
        values = (str(result.status), stage, code, str(message.message_type))
        return self._decisions.bind(key, values)

    def on_dead_letter(self, dead_letter: DeadLetter) -> None:
        code = dead_letter.code
        child = self._dead_letters.children.get(code)
        if child is None:
            child = self._dead_letters.bind(code, (code or NO_REASON,))
        child.inc()


class BusMetrics:
    """Every ``agentbus_*`` metric family of one bus, on a registry it owns.

    Args:
        registry: where to register; None creates a private ``CollectorRegistry``.
            Pass ``prometheus_client.REGISTRY`` to use the process-wide one.
        tenant_labels: for the cost-attribution families: ``"off"`` (default: every
            tenant is ``_all``), ``"all"``, or a frozenset allow-list of tenant ids
            (others are ``_other``).
        max_tenant_label_values: under ``"all"``, the cap on distinct tenant values.
        max_series_per_family: the cap on label combinations of one hot-path family.
        stage_sample_every: :meth:`should_time_stages` is True once per this many calls
            (1 = time every message's stages).

    Raises:
        ConfigurationError: for a bad tenant policy, or when ``registry`` already holds
            ``agentbus_*`` families (another bus registered there).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        tenant_labels: TenantLabelPolicy = "off",
        max_tenant_label_values: int = 100,
        max_series_per_family: int = 2_000,
        stage_sample_every: int = 16,
    ) -> None:
        if max_series_per_family < 16:
            raise ConfigurationError(
                f"max_series_per_family={max_series_per_family!r} is too small; use >= 16."
            )
        if stage_sample_every < 1:
            raise ConfigurationError(
                f"stage_sample_every={stage_sample_every!r} must be >= 1 (1 = every message)"
            )
        self._stage_sample_every = stage_sample_every
        self._stage_countdown = 1  # the first message is timed
        self.registry = registry if registry is not None else CollectorRegistry()
        self._tenant_labeler = TenantLabeler(tenant_labels, max_tenant_label_values)
        self._collectors: list[Collector] = []
        self._stats_collector: StatsCollector | None = None
        self._usage_collector: UsageCollector | None = None
        try:
            self._build_families(max_series_per_family)
        except ValueError as exc:
            self._unregister_all()
            raise ConfigurationError(
                f"cannot register agentbus metrics: {exc}. Each bus needs its own registry: "
                "leave registry=None (the default) unless exactly one bus uses the "
                "process-wide prometheus_client.REGISTRY."
            ) from exc
        self.observer = MetricsObserver(self)

    @classmethod
    def from_settings(
        cls, settings: ObservabilitySettings, registry: CollectorRegistry | None = None
    ) -> BusMetrics:
        """Build from :class:`ObservabilitySettings` (``use_process_registry`` picks REGISTRY)."""
        if registry is None and settings.use_process_registry:
            from prometheus_client import REGISTRY

            registry = REGISTRY
        return cls(
            registry,
            tenant_labels=settings.tenant_label_policy(),
            max_tenant_label_values=settings.max_tenant_label_values,
            max_series_per_family=settings.max_series_per_family,
            stage_sample_every=settings.stage_timing_sample_every,
        )

    def _register(self, collector: Collector) -> None:
        self.registry.register(collector)
        self._collectors.append(collector)

    def _unregister_all(self) -> None:
        for collector in self._collectors:
            self.registry.unregister(collector)
        self._collectors.clear()

    def _build_families(self, max_series: int) -> None:
        overflow = hot_counter("agentbus_metrics_series_overflow_total")
        decisions = decision_latency(
            "agentbus_messages_total", "agentbus_send_duration_seconds", SEND_DURATION_BUCKETS_S
        )
        dead_letters = hot_counter("agentbus_dead_letters_total")
        stages = hot_histogram("agentbus_pipeline_stage_duration_seconds", STAGE_DURATION_BUCKETS_S)
        steps = hot_histogram(
            "agentbus_workflow_step_duration_seconds", WORKFLOW_STEP_DURATION_BUCKETS_S
        )
        self._register(
            HotCollector(
                (decisions, stages, dead_letters, steps, overflow)
            )
        )  # fmt: skip

        self._decisions: BoundedChildren[HistogramCell] = BoundedChildren(
            "agentbus_messages_total",
            decisions.labels,
            max_series=max_series,
            fold=lambda v: (v[0], OTHER, OTHER, v[3]),
            overflow=overflow,
        )
        self._dead_letters: BoundedChildren[CounterCell] = BoundedChildren(
            "agentbus_dead_letters_total",
            dead_letters.labels,
            max_series=max_series,
            fold=lambda v: (OTHER,),
            overflow=overflow,
        )
        self._stages: BoundedChildren[HistogramCell] = BoundedChildren(
            "agentbus_pipeline_stage_duration_seconds",
            stages.labels,
            max_series=_MAX_STAGES,
            fold=lambda v: (OTHER,),
            overflow=overflow,
        )
        self._steps: BoundedChildren[HistogramCell] = BoundedChildren(
            "agentbus_workflow_step_duration_seconds",
            steps.labels,
            max_series=_MAX_STEP_OUTCOMES,
            fold=lambda v: (OTHER,),
            overflow=overflow,
        )

    def should_time_stages(self) -> bool:
        """True once every ``stage_sample_every`` calls: time this message's stages.

        Timing every stage of every message would cost more than the whole metrics
        budget (two clock reads and an observation per stage, ~1 µs for five stages,
        against a ~4 µs send). A uniform 1-in-N sample keeps the stage latency
        quantiles right; the histogram's ``_count`` is then the sampled count.

        Example::

            timed = metrics.should_time_stages()
            for stage in stages:
                started = time.perf_counter() if timed else 0.0
                verdict = stage.check(message, ctx)
                if timed:
                    metrics.observe_stage(stage.name, time.perf_counter() - started)
        """
        self._stage_countdown -= 1
        if self._stage_countdown:
            return False
        self._stage_countdown = self._stage_sample_every
        return True

    def observe_stage(self, stage: str, seconds: float) -> None:
        """Record that pipeline stage ``stage`` took ``seconds`` for one message."""
        child = self._stages.children.get(stage)
        if child is None:
            child = self._stages.bind(stage, (stage,))
        child.observe(seconds)

    def observe_workflow_step(self, outcome: str, seconds: float) -> None:
        """Record a workflow step that ran for ``seconds`` and ended with ``outcome``."""
        child = self._steps.children.get(outcome)
        if child is None:
            child = self._steps.bind(outcome, (outcome,))
        child.observe(seconds)

    def attach_stats(self, source: StatsSource) -> StatsCollector:
        """Export ``source()`` (``{component: {key: value}}``) at every scrape.

        Raises:
            ConfigurationError: if a stats source is already attached.
        """
        if self._stats_collector is not None:
            raise ConfigurationError(
                "a stats source is already attached to these metrics; attach one source "
                "(bus.stats) that returns every component's stats."
            )
        collector = StatsCollector(source)
        self._register(collector)
        self._stats_collector = collector
        return collector

    def attach_usage(self, source: UsageSource[UsageKeyT]) -> UsageCollector:
        """Export metering's totals (``Metering.snapshot``) as per-tenant cost counters.

        Raises:
            ConfigurationError: if a usage source is already attached.
        """
        if self._usage_collector is not None:
            raise ConfigurationError(
                "a usage source is already attached to these metrics; attach the bus's "
                "one Metering.snapshot."
            )
        collector = UsageCollector(source, self._tenant_labeler)
        self._register(collector)
        self._usage_collector = collector
        return collector

    def attach_health(self, health: HealthAggregator) -> HealthCollector:
        """Export ``health`` as ``agentbus_health_*`` gauges at every scrape."""
        collector = HealthCollector(health)
        self._register(collector)
        return collector

    def exposition(self) -> bytes:
        """The registry in Prometheus text format (what ``/metrics`` serves)."""
        return generate_latest(self.registry)

    def close(self) -> None:
        """Unregister every family (needed only on a shared registry such as REGISTRY)."""
        self._unregister_all()
        self._stats_collector = None
        self._usage_collector = None

    def stats(self) -> dict[str, int | float]:
        """Cheap counters about the metrics themselves."""
        stats: dict[str, int | float] = {
            "decision_series": len(self._decisions),
            "decision_keys_cached": len(self._decisions.children),
            "stage_series": len(self._stages),
            "tenant_labels_folded": self._tenant_labeler.folded_total,
        }
        if self._stats_collector is not None:
            stats["stats_collection_errors"] = self._stats_collector.errors_total
            stats["scrapes"] = self._stats_collector.scrapes_total
        if self._usage_collector is not None:
            stats["usage_collection_errors"] = self._usage_collector.errors_total
        return stats


def stats_source_of(
    components: Mapping[str, Callable[[], Mapping[str, float | int | str]]],
) -> StatsSource:
    """Combine per-component ``stats()`` callables into one source for :meth:`attach_stats`.

    A component whose ``stats()`` raises is left out of that scrape (and logged),
    so one broken component never hides the others.

    Example::

        metrics.attach_stats(stats_source_of({"cache": cache.stats, "policy": engine.stats}))
    """
    items = tuple(components.items())

    def source() -> dict[str, Mapping[str, float | int | str]]:
        out: dict[str, Mapping[str, float | int | str]] = {}
        for name, stats in items:
            try:
                out[name] = stats()
            except Exception as exc:
                logger.warning(
                    "stats() of component %s raised %s; left out of this scrape",
                    name,
                    type(exc).__name__,
                    extra={"component": name},
                )
        return out

    return source
