"""The metric catalogue: every ``agentbus_*`` family, and how component stats map onto them.

This is the one table to edit when a component renames a stat key. Two kinds
of families live here:

* **Hot-path families** (``source="hot"``) are updated per message by
  :class:`~enhanced_agent_bus.observability.MetricsObserver` and
  ``BusMetrics.observe_*`` through label children bound once and cached.
* **Scrape-time families** (``source="stats"``) cost nothing per message: at
  each scrape :class:`~enhanced_agent_bus.observability.StatsCollector` calls
  ``bus.stats()`` (``{component: {key: value}}``) and turns the keys listed in
  :data:`STAT_METRICS` into samples. A component or key that is missing is
  skipped, so a bus without (say) deliberation simply has no deliberation series.
* **Usage families** (``source="usage"``) are metering's per-tenant totals
  (``Metering.snapshot()``), summed per tenant label and message type at scrape
  time, so cost attribution adds nothing to the send path.
* **Health families** (``source="health"``) are read from a
  :class:`~enhanced_agent_bus.observability.HealthAggregator` at scrape time.

Label cardinality (per bus registry; every bound below is enforced in code):

=========================================  ==============================================
family                                     series (label values)
=========================================  ==============================================
agentbus_messages_total                    <= 2,000: outcome (4) x stage x code x
                                           message_type (8); stage/code are the
                                           pipeline's fixed reason codes
agentbus_send_duration_seconds             4 outcomes x (22 buckets + sum + count)
agentbus_pipeline_stage_duration_seconds   <= 64 stages x 22
agentbus_dead_letters_total                <= 2,000 codes (handler_error, handler_timeout, ...)
agentbus_tenant_messages_total and         8 message types x (T + 1) tenant values, from
agentbus_tenant_payload_bytes_total        metering at scrape time: "_all" when tenant
                                           labels are off; the allow-list or the first T
                                           tenants, then "_other"
agentbus_workflow_step_duration_seconds    <= 64 outcomes x 19 (succeeded, failed, timed_out)
agentbus_metrics_series_overflow_total     <= 4 families
all scrape-time families together          about 60 (fixed label values from this table)
agentbus_circuit_breaker_state             one per bus component that reports breaker_state
agentbus_health_component_state            <= 32 registered health components
=========================================  ==============================================

Agent ids are never labels. ``T`` is ``max_tenant_label_values`` (default 100).
A label combination beyond a bound is folded into ``_other`` and counted in
``agentbus_metrics_series_overflow_total{family=...}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

MetricKind = Literal["counter", "gauge", "histogram", "summary", "info"]
MetricSource = Literal["hot", "stats", "usage", "health", "self"]
StatPart = Literal["value", "sum", "count"]

#: In a :class:`StatSpec` label value, replaced by the name of the stats component.
COMPONENT: Final = "{component}"
#: A :class:`StatSpec` with this component matches every component that has the key.
ANY_COMPONENT: Final = "*"


@dataclass(frozen=True, slots=True)
class FamilySpec:
    """One metric family: its name, type, label names and help text."""

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = ()
    source: MetricSource = "stats"


@dataclass(frozen=True, slots=True)
class StatSpec:
    """``stats()[component][key]`` becomes one sample of ``family`` with fixed ``labels``.

    ``part`` is ``"sum"`` or ``"count"`` for the two halves of a summary; the
    collector emits a summary only when both halves are present.
    """

    component: str
    key: str
    family: str
    labels: tuple[tuple[str, str], ...] = ()
    part: StatPart = "value"


# Buckets are in seconds. A cached in-process send decides in ~3-5 µs (measured on the bus),
# a deliberation or a slow remote policy takes seconds: 2.5 µs .. 10 s at 1-2.5-5 steps.
SEND_DURATION_BUCKETS_S: Final = (
    0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Single stages are cheaper: a hash compare is ~1 µs, a Rego decision ~10-30 µs, a Z3 check
# or an L2 round trip around a millisecond.
STAGE_DURATION_BUCKETS_S: Final = (
    0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005,
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
# Workflow steps are agent calls: milliseconds to minutes.
WORKFLOW_STEP_DURATION_BUCKETS_S: Final = (
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip

FAMILIES: Final[tuple[FamilySpec, ...]] = (
    # --- hot path: one update per decision / stage / step --------------------------------
    FamilySpec(
        "agentbus_messages_total", "counter",
        "Message decisions by outcome, deciding stage, reason code and message type "
        "(stage and code are 'none' when the message was delivered).",
        ("outcome", "stage", "code", "message_type"), "hot",
    ),
    FamilySpec(
        "agentbus_send_duration_seconds", "histogram",
        "Time from send to decision (validation, routing and enqueue) per message and recipient.",
        ("outcome",), "hot",
    ),
    FamilySpec(
        "agentbus_pipeline_stage_duration_seconds", "histogram",
        "Time one validation stage took for one message (sampled: one message in "
        "stage_timing_sample_every is timed).",
        ("stage",), "hot",
    ),
    FamilySpec(
        "agentbus_dead_letters_total", "counter",
        "Messages moved to the dead-letter store, by cause code.",
        ("code",), "hot",
    ),
    FamilySpec(
        "agentbus_workflow_step_duration_seconds", "histogram",
        "Duration of workflow steps that ran, by outcome.",
        ("outcome",), "hot",
    ),
    FamilySpec(
        "agentbus_metrics_series_overflow_total", "counter",
        "Label combinations folded into '_other' because a family reached its series bound.",
        ("family",), "self",
    ),
    # --- scrape time: read from bus.stats() -----------------------------------------------
    FamilySpec("agentbus_messages_submitted_total", "counter",
               "Messages submitted to the bus (send, request, publish, broadcast)."),
    FamilySpec("agentbus_backpressure_events_total", "counter",
               "Full-mailbox events by the action taken (reject or drop_oldest).", ("action",)),
    FamilySpec("agentbus_mailbox_depth_messages", "gauge",
               "Messages waiting in all agent mailboxes."),
    FamilySpec("agentbus_agents_registered", "gauge", "Agents registered on the bus."),
    FamilySpec("agentbus_constitution", "info",
               "The active constitutional hash.", ("hash",)),
    FamilySpec("agentbus_cache_requests_total", "counter",
               "Decision-cache lookups by layer (l1, l2) and result (hit, miss).",
               ("layer", "result")),
    FamilySpec("agentbus_cache_evictions_total", "counter",
               "Decision-cache entries removed by layer and reason (capacity, ttl).",
               ("layer", "reason")),
    FamilySpec("agentbus_cache_entries", "gauge", "Decision-cache entries held, by layer.",
               ("layer",)),
    FamilySpec("agentbus_cache_l2_errors_total", "counter",
               "L2 (Redis) cache failures by kind: backend (unreachable, timeout) or "
               "integrity (HMAC check failed; the value was discarded).", ("kind",)),
    FamilySpec("agentbus_circuit_breaker_state", "gauge",
               "Circuit breaker state per component: 0 closed, 1 half-open, 2 open.",
               ("component",)),
    FamilySpec("agentbus_policy_evaluations_total", "counter",
               "Policy engine evaluations (cache misses that reached the engine)."),
    FamilySpec("agentbus_policy_denials_total", "counter", "Policy evaluations that denied."),
    FamilySpec("agentbus_policy_errors_total", "counter",
               "Policy evaluations that failed closed, by kind (error, timeout).", ("kind",)),
    FamilySpec("agentbus_constraint_checks_total", "counter", "Constraint checks run."),
    FamilySpec("agentbus_constraint_violations_total", "counter",
               "Constraint checks that found a violation."),
    FamilySpec("agentbus_constraint_errors_total", "counter",
               "Constraint checks that failed closed (solver error or timeout)."),
    FamilySpec("agentbus_background_queue_depth_items", "gauge",
               "Items waiting in a background queue.", ("queue",)),
    FamilySpec("agentbus_background_items_submitted_total", "counter",
               "Items accepted by a background queue.", ("queue",)),
    FamilySpec("agentbus_background_items_written_total", "counter",
               "Items a background sink wrote.", ("queue",)),
    FamilySpec("agentbus_background_items_dropped_total", "counter",
               "Items a background queue dropped (queue full or retries exhausted).",
               ("queue",)),
    FamilySpec("agentbus_background_batches_total", "counter",
               "Batches flushed to a background sink.", ("queue",)),
    FamilySpec("agentbus_background_sink_errors_total", "counter",
               "Failed background sink writes (each retry counts).", ("queue",)),
    FamilySpec("agentbus_background_retries_total", "counter",
               "Background sink write retries.", ("queue",)),
    FamilySpec("agentbus_background_retry_buffer_items", "gauge",
               "Items held for a retry after a failed sink write.", ("queue",)),
    FamilySpec("agentbus_background_flush_duration_seconds", "summary",
               "Time to flush one batch to a background sink.", ("queue",)),
    FamilySpec("agentbus_deliberation_pending_messages", "gauge",
               "Messages waiting for a deliberation decision."),
    FamilySpec("agentbus_deliberation_resolved_total", "counter",
               "Deliberations resolved, by outcome (approved, denied, timed_out).",
               ("outcome",)),
    FamilySpec("agentbus_workflow_runs_started_total", "counter", "Workflow runs started."),
    FamilySpec("agentbus_workflow_runs_finished_total", "counter",
               "Workflow runs finished, by outcome (succeeded, failed, cancelled).",
               ("outcome",)),
    FamilySpec("agentbus_workflow_runs_active", "gauge", "Workflow runs in progress."),
    FamilySpec("agentbus_workflow_steps_total", "counter",
               "Workflow steps finished, by outcome (succeeded, failed, timed_out, skipped).",
               ("outcome",)),
    FamilySpec("agentbus_workflow_step_retries_total", "counter", "Workflow step retries."),
    FamilySpec("agentbus_stats_collection_errors_total", "counter",
               "Scrapes where bus.stats() raised, or a stat had a value of the wrong type.",
               (), "self"),
    # --- scrape time: metering's usage totals --------------------------------------------
    FamilySpec(
        "agentbus_tenant_messages_total", "counter",
        "Metered messages (decisions and dead letters) per tenant and message type.",
        ("tenant", "message_type"), "usage",
    ),
    FamilySpec(
        "agentbus_tenant_payload_bytes_total", "counter",
        "Metered payload bytes (orjson encoding) per tenant and message type.",
        ("tenant", "message_type"), "usage",
    ),
    FamilySpec(
        "agentbus_usage_collection_errors_total", "counter",
        "Scrapes where the metering usage source raised.", (), "self",
    ),
    # --- scrape time: read from the HealthAggregator ---------------------------------------
    FamilySpec("agentbus_health_state", "gauge",
               "Overall health: 0 healthy, 1 degraded, 2 unhealthy.", (), "health"),
    FamilySpec("agentbus_health_component_state", "gauge",
               "Health per component: 0 healthy, 1 degraded, 2 unhealthy.",
               ("component",), "health"),
    FamilySpec("agentbus_health_transitions_total", "counter",
               "Changes of any component's or the overall health state.", (), "health"),
    FamilySpec("agentbus_health_callback_errors_total", "counter",
               "Health change callbacks and probes that raised (counted, never propagated).",
               (), "health"),
)  # fmt: skip

FAMILIES_BY_NAME: Final = {family.name: family for family in FAMILIES}


def _background_stats(component: str) -> tuple[StatSpec, ...]:
    """The stats of one batching worker (audit, metering), labelled ``queue=<component>``."""
    queue = (("queue", component),)
    return (
        StatSpec(component, "queue_depth", "agentbus_background_queue_depth_items", queue),
        StatSpec(component, "submitted", "agentbus_background_items_submitted_total", queue),
        StatSpec(component, "written", "agentbus_background_items_written_total", queue),
        StatSpec(component, "dropped", "agentbus_background_items_dropped_total", queue),
        StatSpec(component, "batches", "agentbus_background_batches_total", queue),
        StatSpec(component, "sink_errors", "agentbus_background_sink_errors_total", queue),
        StatSpec(component, "retries", "agentbus_background_retries_total", queue),
        StatSpec(component, "retry_buffer_depth", "agentbus_background_retry_buffer_items", queue),
        StatSpec(component, "flush_seconds_sum", "agentbus_background_flush_duration_seconds",
                 queue, "sum"),
        StatSpec(component, "flush_seconds_count", "agentbus_background_flush_duration_seconds",
                 queue, "count"),
    )  # fmt: skip


STAT_METRICS: Final[tuple[StatSpec, ...]] = (
    # bus
    StatSpec("bus", "sent_total", "agentbus_messages_submitted_total"),
    StatSpec("bus", "backpressure_rejections_total", "agentbus_backpressure_events_total",
             (("action", "reject"),)),
    StatSpec("bus", "backpressure_drops_total", "agentbus_backpressure_events_total",
             (("action", "drop_oldest"),)),
    StatSpec("bus", "mailbox_depth", "agentbus_mailbox_depth_messages"),
    StatSpec("bus", "agents", "agentbus_agents_registered"),
    StatSpec("bus", "constitutional_hash", "agentbus_constitution"),
    # cache
    StatSpec("cache", "l1_hits", "agentbus_cache_requests_total",
             (("layer", "l1"), ("result", "hit"))),
    StatSpec("cache", "l1_misses", "agentbus_cache_requests_total",
             (("layer", "l1"), ("result", "miss"))),
    StatSpec("cache", "l2_hits", "agentbus_cache_requests_total",
             (("layer", "l2"), ("result", "hit"))),
    StatSpec("cache", "l2_misses", "agentbus_cache_requests_total",
             (("layer", "l2"), ("result", "miss"))),
    StatSpec("cache", "l1_evictions", "agentbus_cache_evictions_total",
             (("layer", "l1"), ("reason", "capacity"))),
    StatSpec("cache", "l1_expirations", "agentbus_cache_evictions_total",
             (("layer", "l1"), ("reason", "ttl"))),
    StatSpec("cache", "l1_size", "agentbus_cache_entries", (("layer", "l1"),)),
    StatSpec("cache", "l2_errors", "agentbus_cache_l2_errors_total", (("kind", "backend"),)),
    StatSpec("cache", "l2_tampered", "agentbus_cache_l2_errors_total", (("kind", "integrity"),)),
    # any component with a circuit breaker (cache L2, remote OPA, transports, ...)
    StatSpec(ANY_COMPONENT, "breaker_state", "agentbus_circuit_breaker_state",
             (("component", COMPONENT),)),
    # policy
    StatSpec("policy", "evaluations", "agentbus_policy_evaluations_total"),
    StatSpec("policy", "denials", "agentbus_policy_denials_total"),
    StatSpec("policy", "errors", "agentbus_policy_errors_total", (("kind", "error"),)),
    StatSpec("policy", "timeouts", "agentbus_policy_errors_total", (("kind", "timeout"),)),
    # constraints
    StatSpec("constraints", "checks_total", "agentbus_constraint_checks_total"),
    StatSpec("constraints", "violations_total", "agentbus_constraint_violations_total"),
    StatSpec("constraints", "engine_errors_total", "agentbus_constraint_errors_total"),
    # background queues: audit and metering share one worker type and one set of keys
    *_background_stats("audit"),
    *_background_stats("metering"),
    # deliberation
    StatSpec("deliberation", "pending", "agentbus_deliberation_pending_messages"),
    StatSpec("deliberation", "approved", "agentbus_deliberation_resolved_total",
             (("outcome", "approved"),)),
    StatSpec("deliberation", "denied", "agentbus_deliberation_resolved_total",
             (("outcome", "denied"),)),
    StatSpec("deliberation", "timed_out", "agentbus_deliberation_resolved_total",
             (("outcome", "timed_out"),)),
    # workflow
    StatSpec("workflow", "runs_started", "agentbus_workflow_runs_started_total"),
    StatSpec("workflow", "runs_succeeded", "agentbus_workflow_runs_finished_total",
             (("outcome", "succeeded"),)),
    StatSpec("workflow", "runs_failed", "agentbus_workflow_runs_finished_total",
             (("outcome", "failed"),)),
    StatSpec("workflow", "runs_cancelled", "agentbus_workflow_runs_finished_total",
             (("outcome", "cancelled"),)),
    StatSpec("workflow", "runs_active", "agentbus_workflow_runs_active"),
    StatSpec("workflow", "steps_succeeded", "agentbus_workflow_steps_total",
             (("outcome", "succeeded"),)),
    StatSpec("workflow", "steps_failed", "agentbus_workflow_steps_total",
             (("outcome", "failed"),)),
    StatSpec("workflow", "steps_timed_out", "agentbus_workflow_steps_total",
             (("outcome", "timed_out"),)),
    StatSpec("workflow", "steps_skipped", "agentbus_workflow_steps_total",
             (("outcome", "skipped"),)),
    StatSpec("workflow", "step_retries", "agentbus_workflow_step_retries_total"),
)  # fmt: skip

#: Stat keys that are deliberately not exported, and why.
IGNORED_STATS: Final[dict[tuple[str, str], str]] = {
    ("bus", "delivered_total"): "agentbus_messages_total{outcome='delivered'} (observer) counts it",
    ("bus", "denied_total"): "agentbus_messages_total{outcome='denied'} (observer) counts it",
    ("bus", "dead_lettered_total"): "agentbus_dead_letters_total (observer) counts it",
}


def check_catalogue() -> None:
    """Raise ``ValueError`` if a stat mapping is inconsistent with its family.

    Runs once when a :class:`StatsCollector` is built (cheap), so a bad edit to
    this table fails at startup instead of producing a broken scrape.
    """
    seen: set[tuple[str, str]] = set()
    for spec in STAT_METRICS:
        family = FAMILIES_BY_NAME.get(spec.family)
        if family is None:
            raise ValueError(
                f"stat {spec.component}.{spec.key} maps to unknown family {spec.family!r}; "
                "add a FamilySpec for it to FAMILIES."
            )
        if family.source != "stats":
            raise ValueError(
                f"stat {spec.component}.{spec.key} maps to {family.name!r}, which is a "
                f"{family.source!r} family; scrape-time stats need a source='stats' family."
            )
        label_names = tuple(name for name, _ in spec.labels)
        # An info family's last label carries the stat's string value itself.
        expected = family.labels[:-1] if family.kind == "info" else family.labels
        if label_names != expected:
            raise ValueError(
                f"stat {spec.component}.{spec.key} sets labels {label_names!r} but "
                f"{family.name!r} expects {expected!r}; make them match."
            )
        if (spec.part != "value") != (family.kind == "summary"):
            raise ValueError(
                f"stat {spec.component}.{spec.key} has part {spec.part!r} but {family.name!r} "
                f"is a {family.kind}; use part='sum'/'count' exactly for summaries."
            )
        if (spec.component, spec.key) in seen:
            raise ValueError(f"stat {spec.component}.{spec.key} is mapped twice in STAT_METRICS")
        seen.add((spec.component, spec.key))


_SAMPLE_SUFFIXES: Final[dict[MetricKind, tuple[str, ...]]] = {
    "counter": ("",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
    "info": ("_info",),
}


def sample_names(family: FamilySpec) -> tuple[str, ...]:
    """The sample names a family exposes (what PromQL selects), e.g. ``x_bucket``."""
    return tuple(family.name + suffix for suffix in _SAMPLE_SUFFIXES[family.kind])


def family_of_sample(name: str) -> FamilySpec | None:
    """The catalogue family that exposes sample ``name``, or None."""
    for family in FAMILIES:
        if name in sample_names(family):
            return family
    return None
