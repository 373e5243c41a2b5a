"""Observability: Prometheus metrics, the /metrics endpoint, health, structured logging.

Public names::

    BusMetrics, MetricsObserver       metric families of one bus; per-decision observer
    StatsCollector, stats_source_of   scrape-time export of component stats()
    UsageCollector                    scrape-time per-tenant cost from metering
    HealthAggregator, HealthState     component health -> healthy / degraded / unhealthy
    MetricsServer                     /metrics, /healthz, /readyz (aiohttp)
    JsonFormatter, RedactionFilter    structured, payload-free logging
    ObservabilitySettings             mounted as BusSettings.observability
"""

from ._breaker_health import breaker_health, breaker_probe
from ._catalogue import (
    ANY_COMPONENT,
    COMPONENT,
    FAMILIES,
    IGNORED_STATS,
    SEND_DURATION_BUCKETS_S,
    STAGE_DURATION_BUCKETS_S,
    STAT_METRICS,
    WORKFLOW_STEP_DURATION_BUCKETS_S,
    FamilySpec,
    StatSpec,
    check_catalogue,
    family_of_sample,
    sample_names,
)
from ._health import (
    ComponentHealth,
    HealthAggregator,
    HealthChange,
    HealthListener,
    HealthReport,
    HealthState,
    Probe,
)
from ._health_collector import HealthCollector
from ._labels import ALL_TENANTS, OTHER, TenantLabeler
from ._logging import (
    DEFAULT_SECRET_PATTERN,
    REDACTED,
    JsonFormatter,
    KeyValueFormatter,
    RedactionFilter,
    configure_logging,
    message_log_fields,
    redact,
)
from ._metrics import NO_REASON, BusMetrics, MetricsObserver, stats_source_of
from ._promql import (
    DashboardQuery,
    Selector,
    dashboard_queries,
    label_values_as_promql,
    metric_names,
    render,
    selectors,
)
from ._server import MetricsServer
from ._settings import ObservabilitySettings, TenantLabelPolicy
from ._stats_collector import StatsCollector, StatsSource, StatValue
from ._usage_collector import UsageCollector, UsageSource

__all__ = [
    "ALL_TENANTS",
    "ANY_COMPONENT",
    "COMPONENT",
    "DEFAULT_SECRET_PATTERN",
    "FAMILIES",
    "IGNORED_STATS",
    "NO_REASON",
    "OTHER",
    "REDACTED",
    "SEND_DURATION_BUCKETS_S",
    "STAGE_DURATION_BUCKETS_S",
    "STAT_METRICS",
    "WORKFLOW_STEP_DURATION_BUCKETS_S",
    "BusMetrics",
    "ComponentHealth",
    "DashboardQuery",
    "FamilySpec",
    "HealthAggregator",
    "HealthChange",
    "HealthCollector",
    "HealthListener",
    "HealthReport",
    "HealthState",
    "JsonFormatter",
    "KeyValueFormatter",
    "MetricsObserver",
    "MetricsServer",
    "ObservabilitySettings",
    "Probe",
    "RedactionFilter",
    "Selector",
    "StatSpec",
    "StatValue",
    "StatsCollector",
    "StatsSource",
    "TenantLabelPolicy",
    "TenantLabeler",
    "UsageCollector",
    "UsageSource",
    "breaker_health",
    "breaker_probe",
    "check_catalogue",
    "configure_logging",
    "dashboard_queries",
    "family_of_sample",
    "label_values_as_promql",
    "message_log_fields",
    "metric_names",
    "redact",
    "render",
    "sample_names",
    "selectors",
    "stats_source_of",
]
