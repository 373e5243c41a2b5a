"""Generate the Grafana dashboards in grafana/dashboards/ from one readable description.

Run ``python grafana/build_dashboards.py`` after editing, or ``--check`` to verify
that the committed JSON matches (the unit tests do that). The JSON targets
Grafana 10+ (schemaVersion 39): every dashboard has a fixed ``uid``, a
``datasource`` variable (any Prometheus data source) and uses only metric names
from ``enhanced_agent_bus.observability`` (``agent-bus observability catalogue``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
GRID_WIDTH = 24


@dataclass
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass
class Panel:
    title: str
    queries: list[Query]
    description: str
    kind: str = "timeseries"
    unit: str = "short"
    width: int = 12
    height: int = 8
    mappings: list[dict[str, Any]] = field(default_factory=list)
    thresholds: list[tuple[float | None, str]] = field(default_factory=lambda: [(None, "green")])
    stack: bool = False


@dataclass
class Row:
    title: str
    panels: list[Panel]


#: (uid, title, description, extra template variables, rows)
DashboardSpec = tuple[str, str, str, list[dict[str, Any]], list[Row]]

HEALTH_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "healthy", "color": "green", "index": 0},
            "1": {"text": "degraded", "color": "orange", "index": 1},
            "2": {"text": "unhealthy", "color": "red", "index": 2},
        },
    }
]
BREAKER_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "closed", "color": "green", "index": 0},
            "1": {"text": "half-open", "color": "orange", "index": 1},
            "2": {"text": "open", "color": "red", "index": 2},
        },
    }
]
STATE_THRESHOLDS: list[tuple[float | None, str]] = [(None, "green"), (1, "orange"), (2, "red")]


def quantile(q: float, bucket: str, by: str = "", selector: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({bucket}_bucket{selector}[{RATE}])))"


def rate_by(metric: str, by: str, selector: str = "") -> str:
    grouping = f"sum by ({by}) " if by else "sum "
    return f"{grouping}(rate({metric}{selector}[{RATE}]))"


# --- the dashboards ---------------------------------------------------------------------
# fmt: off

BUS_OVERVIEW: DashboardSpec = (
    "agentbus-overview",
    "Agent Bus / Overview",
    "Throughput, send latency, outcomes and denial reasons, mailboxes, dead letters, health.",
    [],
    [
        Row("Traffic", [
            Panel("Decisions per second by outcome",
                  [Query(rate_by("agentbus_messages_total", "outcome"), "{{outcome}}")],
                  "Message decisions (one per message and recipient) per second, by outcome.",
                  unit="ops", stack=True),
            Panel("Submitted messages per second",
                  [Query(rate_by("agentbus_messages_submitted_total", ""), "submitted")],
                  "Calls to send / request / publish / broadcast accepted by the bus.",
                  unit="ops"),
            Panel("Send latency p50 / p99",
                  [Query(quantile(0.5, "agentbus_send_duration_seconds"), "p50"),
                   Query(quantile(0.99, "agentbus_send_duration_seconds"), "p99")],
                  "Time from send to decision (validation, routing, enqueue), all outcomes.",
                  unit="s"),
            Panel("Send latency p99 by outcome",
                  [Query(quantile(0.99, "agentbus_send_duration_seconds", "outcome"),
                         "{{outcome}}")],
                  "Denials are usually fast (an early stage stops the pipeline); "
                  "deliberation and slow policies show up here.",
                  unit="s"),
        ]),
        Row("Denials and stages", [
            Panel("Denials by stage and code",
                  [Query(rate_by("agentbus_messages_total", "stage, code",
                                 '{outcome="denied"}'), "{{stage}} / {{code}}")],
                  "Why messages are denied: the first stage that said no and its reason code.",
                  unit="ops", stack=True),
            Panel("Pipeline stage latency p99",
                  [Query(quantile(0.99, "agentbus_pipeline_stage_duration_seconds", "stage"),
                         "{{stage}}")],
                  "How long each validation stage takes per message (99th percentile).",
                  unit="s"),
        ]),
        Row("Mailboxes and failures", [
            Panel("Mailbox depth",
                  [Query("sum(agentbus_mailbox_depth_messages)", "queued")],
                  "Messages waiting in all agent mailboxes.", width=8),
            Panel("Backpressure events per second",
                  [Query(rate_by("agentbus_backpressure_events_total", "action"), "{{action}}")],
                  "Sends rejected or events dropped (oldest first) because a mailbox was full.",
                  unit="ops", width=8),
            Panel("Dead letters per second by cause",
                  [Query(rate_by("agentbus_dead_letters_total", "code"), "{{code}}")],
                  "Messages whose handler failed every attempt or timed out.",
                  unit="ops", width=8),
        ]),
        Row("Health", [
            Panel("Bus health", [Query("max(agentbus_health_state)", "health")],
                  "Aggregated health: worst critical component (non-critical ones at most "
                  "degrade it).", kind="stat", width=6, height=5, mappings=HEALTH_MAPPINGS,
                  thresholds=STATE_THRESHOLDS),
            Panel("Registered agents", [Query("sum(agentbus_agents_registered)", "agents")],
                  "Agents registered on the bus.", kind="stat", width=6, height=5),
            Panel("Component health", [Query("agentbus_health_component_state",
                                             "{{component}}")],
                  "Health of each component (0 healthy, 1 degraded, 2 unhealthy).",
                  kind="stat", width=6, height=5, mappings=HEALTH_MAPPINGS,
                  thresholds=STATE_THRESHOLDS),
            Panel("Circuit breakers", [Query("agentbus_circuit_breaker_state", "{{component}}")],
                  "Circuit breaker per component (0 closed, 1 half-open, 2 open).",
                  kind="stat", width=6, height=5, mappings=BREAKER_MAPPINGS,
                  thresholds=STATE_THRESHOLDS),
        ]),
    ],
)

CACHES: DashboardSpec = (
    "agentbus-caches",
    "Agent Bus / Caches",
    "Decision cache: hit rate by layer, lookups, evictions, size, L2 (Redis) errors and breaker.",
    [],
    [
        Row("Hit rate", [
            Panel("Hit rate by layer",
                  [Query(f'sum by (layer) (rate(agentbus_cache_requests_total{{result="hit"}}'
                         f"[{RATE}])) / sum by (layer) "
                         f"(rate(agentbus_cache_requests_total[{RATE}]))", "{{layer}}")],
                  "Share of lookups answered by each layer (L2 is asked only on an L1 miss).",
                  unit="percentunit"),
            Panel("Lookups per second by layer and result",
                  [Query(rate_by("agentbus_cache_requests_total", "layer, result"),
                         "{{layer}} {{result}}")],
                  "Cache lookups per second.", unit="ops", stack=True),
        ]),
        Row("Size and evictions", [
            Panel("Entries by layer", [Query("sum by (layer) (agentbus_cache_entries)",
                                             "{{layer}}")],
                  "Decisions held in memory (L1).", width=8),
            Panel("Evictions per second",
                  [Query(rate_by("agentbus_cache_evictions_total", "layer, reason"),
                         "{{layer}} {{reason}}")],
                  "Entries removed because the cache was full (capacity) or expired (ttl).",
                  unit="ops", width=8),
            Panel("L2 errors per second",
                  [Query(rate_by("agentbus_cache_l2_errors_total", "kind"), "{{kind}}")],
                  "Redis failures (backend) and values whose HMAC failed (integrity). "
                  "Errors never fail a send: the cache degrades to L1.",
                  unit="ops", width=8),
        ]),
        Row("L2 circuit breaker", [
            Panel("L2 breaker state",
                  [Query('max(agentbus_circuit_breaker_state{component="cache"})', "cache")],
                  "0 closed (L2 in use), 1 half-open (probing), 2 open (L1 only).",
                  width=24, height=6, mappings=BREAKER_MAPPINGS, thresholds=STATE_THRESHOLDS),
        ]),
    ],
)

POLICY: DashboardSpec = (
    "agentbus-policy",
    "Agent Bus / Policy & constraints",
    "Rego policy and Z3 constraint evaluation: rates, latency, decisions and errors.",
    [],
    [
        Row("Policy (Rego)", [
            Panel("Policy evaluations and denials per second",
                  [Query("sum(rate(agentbus_policy_evaluations_total[$__rate_interval]))",
                         "evaluations"),
                   Query("sum(rate(agentbus_policy_denials_total[$__rate_interval]))",
                         "denials")],
                  "Evaluations that reached the engine (cache misses) and how many denied.",
                  unit="ops", width=8),
            Panel("Policy errors per second",
                  [Query(rate_by("agentbus_policy_errors_total", "kind"), "{{kind}}")],
                  "Evaluations that failed closed (the message was denied).",
                  unit="ops", width=8),
            Panel("Policy stage latency",
                  [Query(quantile(0.5, "agentbus_pipeline_stage_duration_seconds", "",
                                  '{stage="policy"}'), "p50"),
                   Query(quantile(0.99, "agentbus_pipeline_stage_duration_seconds", "",
                                  '{stage="policy"}'), "p99")],
                  "Policy stage time per message, cache hits included.", unit="s", width=8),
            Panel("Denials at the policy stage by code",
                  [Query(rate_by("agentbus_messages_total", "code",
                                 '{outcome="denied", stage="policy"}'), "{{code}}")],
                  "Policy decisions that denied, by reason code.", unit="ops", width=24),
        ]),
        Row("Constraints (Z3)", [
            Panel("Constraint checks, violations, errors per second",
                  [Query("sum(rate(agentbus_constraint_checks_total[$__rate_interval]))",
                         "checks"),
                   Query("sum(rate(agentbus_constraint_violations_total[$__rate_interval]))",
                         "violations"),
                   Query("sum(rate(agentbus_constraint_errors_total[$__rate_interval]))",
                         "errors")],
                  "Per-message constraint checks and their outcomes.", unit="ops"),
            Panel("Constraint stage latency",
                  [Query(quantile(0.5, "agentbus_pipeline_stage_duration_seconds", "",
                                  '{stage="constraints"}'), "p50"),
                   Query(quantile(0.99, "agentbus_pipeline_stage_duration_seconds", "",
                                  '{stage="constraints"}'), "p99")],
                  "Constraint stage time per message.", unit="s"),
        ]),
    ],
)

ASYNC_TASKS: DashboardSpec = (
    "agentbus-async",
    "Agent Bus / Async tasks",
    "Background queues (audit, metering): depth, throughput, drops, flush latency, sink errors.",
    [],
    [
        Row("Queues", [
            Panel("Queue depth", [Query("sum by (queue) (agentbus_background_queue_depth_items)",
                                        "{{queue}}")],
                  "Items waiting to be flushed, per queue.", width=8),
            Panel("Items submitted vs written per second",
                  [Query(rate_by("agentbus_background_items_submitted_total", "queue"),
                         "{{queue}} submitted"),
                   Query(rate_by("agentbus_background_items_written_total", "queue"),
                         "{{queue}} written")],
                  "Written should track submitted; a gap that grows means the sink is slow.",
                  unit="ops", width=8),
            Panel("Dropped items per second",
                  [Query(rate_by("agentbus_background_items_dropped_total", "queue"),
                         "{{queue}}")],
                  "Items dropped because a queue was full or retries ran out. Never silent.",
                  unit="ops", width=8),
        ]),
        Row("Flushing", [
            Panel("Average flush latency",
                  [Query(f"sum by (queue) (rate(agentbus_background_flush_duration_seconds_sum"
                         f"[{RATE}])) / sum by (queue) "
                         f"(rate(agentbus_background_flush_duration_seconds_count[{RATE}]))",
                         "{{queue}}")],
                  "Mean time to write one batch to the sink.", unit="s", width=8),
            Panel("Batches per second",
                  [Query(rate_by("agentbus_background_batches_total", "queue"), "{{queue}}")],
                  "Batches flushed per second.", unit="ops", width=8),
            Panel("Sink errors and retries per second",
                  [Query(rate_by("agentbus_background_sink_errors_total", "queue"),
                         "{{queue}} errors"),
                   Query(rate_by("agentbus_background_retries_total", "queue"),
                         "{{queue}} retries")],
                  "Failed sink writes and the retries they caused.", unit="ops", width=8),
            Panel("Retry buffer",
                  [Query("sum by (queue) (agentbus_background_retry_buffer_items)",
                         "{{queue}}")],
                  "Items held for another write attempt after a sink failure.", width=24,
                  height=6),
        ]),
    ],
)

DELIBERATION_WORKFLOWS: DashboardSpec = (
    "agentbus-deliberation-workflows",
    "Agent Bus / Deliberation & workflows",
    "High-impact messages awaiting approval, and DAG workflow runs and steps.",
    [],
    [
        Row("Deliberation", [
            Panel("Pending deliberations",
                  [Query("sum(agentbus_deliberation_pending_messages)", "pending")],
                  "Messages waiting for a human or reviewer-agent decision.", width=8),
            Panel("Sent to deliberation per second",
                  [Query(rate_by("agentbus_messages_total", "message_type",
                                 '{outcome="deliberating"}'), "{{message_type}}")],
                  "Messages whose impact score reached the threshold.", unit="ops", width=8),
            Panel("Resolved per second by outcome",
                  [Query(rate_by("agentbus_deliberation_resolved_total", "outcome"),
                         "{{outcome}}")],
                  "Approved, denied, or timed out (a timeout denies).", unit="ops", width=8,
                  stack=True),
        ]),
        Row("Workflows", [
            Panel("Active workflow runs", [Query("sum(agentbus_workflow_runs_active)", "active")],
                  "Runs in progress.", width=8),
            Panel("Runs started and finished per second",
                  [Query("sum(rate(agentbus_workflow_runs_started_total[$__rate_interval]))",
                         "started"),
                   Query(rate_by("agentbus_workflow_runs_finished_total", "outcome"),
                         "{{outcome}}")],
                  "Workflow runs by outcome.", unit="ops", width=8),
            Panel("Steps per second by outcome",
                  [Query(rate_by("agentbus_workflow_steps_total", "outcome"), "{{outcome}}")],
                  "Finished steps; skipped steps depend on a failed one.", unit="ops", width=8,
                  stack=True),
            Panel("Step duration p50 / p95 by outcome",
                  [Query(quantile(0.5, "agentbus_workflow_step_duration_seconds", "outcome"),
                         "p50 {{outcome}}"),
                   Query(quantile(0.95, "agentbus_workflow_step_duration_seconds", "outcome"),
                         "p95 {{outcome}}")],
                  "How long steps that ran took.", unit="s"),
            Panel("Step retries per second",
                  [Query("sum(rate(agentbus_workflow_step_retries_total[$__rate_interval]))",
                         "retries")],
                  "Retries after a step failed or timed out (with exponential backoff).",
                  unit="ops"),
        ]),
    ],
)

_TENANT = '{tenant=~"$tenant"}'
COST: DashboardSpec = (
    "agentbus-cost",
    "Agent Bus / Cost attribution",
    "Messages and payload bytes per tenant and message type, from metering's totals "
    "(tenant labels must be on: AGENTBUS_OBSERVABILITY__TENANT_LABELS=all or allow_list).",
    [
        {
            "name": "tenant",
            "label": "Tenant",
            "type": "query",
            "datasource": DATASOURCE,
            "query": {
                "query": "label_values(agentbus_tenant_messages_total, tenant)",
                "refId": "tenants",
            },
            "definition": "label_values(agentbus_tenant_messages_total, tenant)",
            "refresh": 2,
            "multi": True,
            "includeAll": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
            "hide": 0,
            "options": [],
            "regex": "",
        }
    ],
    [
        Row("Per tenant", [
            Panel("Messages per second by tenant",
                  [Query(rate_by("agentbus_tenant_messages_total", "tenant", _TENANT),
                         "{{tenant}}")],
                  "Metered messages per tenant ('_all' when tenant labels are off, "
                  "'_other' for tenants outside the allow-list or the cap).",
                  unit="ops", stack=True),
            Panel("Payload bytes per second by tenant",
                  [Query(rate_by("agentbus_tenant_payload_bytes_total", "tenant", _TENANT),
                         "{{tenant}}")],
                  "Payload volume per tenant (orjson encoding).", unit="Bps", stack=True),
            Panel("Messages in range by tenant",
                  [Query(f"sum by (tenant) (increase(agentbus_tenant_messages_total{_TENANT}"
                         "[$__range]))", "{{tenant}}", instant=True)],
                  "Total metered messages per tenant over the dashboard's time range.",
                  kind="bargauge", width=8),
            Panel("Payload bytes in range by tenant",
                  [Query(f"sum by (tenant) (increase(agentbus_tenant_payload_bytes_total"
                         f"{_TENANT}[$__range]))", "{{tenant}}", instant=True)],
                  "Total payload bytes per tenant over the dashboard's time range.",
                  kind="bargauge", unit="bytes", width=8),
            Panel("Average payload size by tenant",
                  [Query(f"sum by (tenant) (rate(agentbus_tenant_payload_bytes_total{_TENANT}"
                         f"[{RATE}])) / sum by (tenant) "
                         f"(rate(agentbus_tenant_messages_total{_TENANT}[{RATE}]))",
                         "{{tenant}}")],
                  "Bytes per message.", unit="bytes", width=8),
        ]),
        Row("By message type", [
            Panel("Messages per second by message type",
                  [Query(rate_by("agentbus_tenant_messages_total", "message_type", _TENANT),
                         "{{message_type}}")],
                  "Selected tenants' metered messages by message type.", unit="ops",
                  stack=True),
            Panel("Metering pipeline",
                  [Query('sum(rate(agentbus_background_items_written_total{queue="metering"}'
                         "[$__rate_interval]))", "written"),
                   Query('sum(rate(agentbus_background_items_dropped_total{queue="metering"}'
                         "[$__rate_interval]))", "dropped")],
                  "Metering records written to the billing store, and any dropped (which "
                  "would under-count cost).", unit="ops"),
        ]),
    ],
)

# fmt: on

DASHBOARDS = (BUS_OVERVIEW, CACHES, POLICY, ASYNC_TASKS, DELIBERATION_WORKFLOWS, COST)


# --- JSON rendering -----------------------------------------------------------------------


def _thresholds(steps: list[tuple[float | None, str]]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = []
    for index, query in enumerate(panel.queries):
        targets.append({
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "range": not query.instant,
            "instant": query.instant,
            "refId": chr(ord("A") + index),
        })  # fmt: skip
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "mappings": panel.mappings,
        "thresholds": _thresholds(panel.thresholds),
        "color": {"mode": "thresholds" if panel.kind != "timeseries" else "palette-classic"},
    }
    options: dict[str, Any]
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 20 if panel.stack else 0,
            "showPoints": "never",
            "spanNulls": True,
            "stacking": {"mode": "normal" if panel.stack else "none", "group": "A"},
        }
        options = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind == "stat":
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        }
    else:  # bargauge
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "displayMode": "gradient",
            "orientation": "horizontal",
            "showUnfilled": True,
        }
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": targets,
    }


def _layout(rows: Iterable[Row]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    panel_id = 1
    y = 0
    for row in rows:
        panels.append({
            "id": panel_id, "type": "row", "title": row.title, "collapsed": False,
            "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y}, "panels": [],
        })  # fmt: skip
        panel_id += 1
        y += 1
        x = 0
        row_height = 0
        for panel in row.panels:
            if x + panel.width > GRID_WIDTH:
                x, y, row_height = 0, y + row_height, 0
            panels.append(_panel_json(panel, panel_id, x, y))
            panel_id += 1
            x += panel.width
            row_height = max(row_height, panel.height)
        y += row_height
    return panels


def build(spec: DashboardSpec) -> dict[str, Any]:
    uid, title, description, variables, rows = spec
    datasource_variable = {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }
    return {
        "id": None,
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["agentbus"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["agentbus"],
                "asDropdown": True,
                "title": "Agent Bus",
                "includeVars": False,
                "keepTime": True,
            },
        ],
        "templating": {"list": [datasource_variable, *variables]},
        "panels": _layout(rows),
    }


def render_all() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        f"{spec[0]}.json": json.dumps(build(spec), indent=2, ensure_ascii=False) + "\n"
        for spec in DASHBOARDS
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_all().items():
        path = OUT_DIR / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale dashboards (run python {__file__}): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
