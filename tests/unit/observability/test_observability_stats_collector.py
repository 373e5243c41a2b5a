"""StatsCollector: the (component, key) -> metric table, applied to hand-made stats dicts."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from enhanced_agent_bus.observability import (
    ANY_COMPONENT,
    FAMILIES,
    IGNORED_STATS,
    STAT_METRICS,
    BusMetrics,
    StatsCollector,
    StatValue,
    check_catalogue,
    stats_source_of,
)

Stats = dict[str, Mapping[str, StatValue]]
StatsForRound = Callable[[int], Stats]

#: The stats contract every component was asked to report (DESIGN: observability brief).
CONTRACT: dict[str, tuple[str, ...]] = {
    "bus": (
        "sent_total", "delivered_total", "denied_total", "dead_lettered_total",
        "backpressure_rejections_total", "backpressure_drops_total", "mailbox_depth", "agents",
    ),
    "cache": (
        "l1_hits", "l1_misses", "l1_evictions", "l1_expirations", "l1_size",
        "l2_hits", "l2_misses", "l2_errors", "l2_tampered", "breaker_state",
    ),
    "policy": ("evaluations", "errors", "denials", "timeouts"),
    "constraints": ("checks_total", "violations_total", "engine_errors_total"),
    "audit": (
        "queue_depth", "submitted", "written", "dropped", "batches", "sink_errors",
        "flush_seconds_sum", "flush_seconds_count",
    ),
    "deliberation": ("pending", "approved", "denied", "timed_out"),
}  # fmt: skip
CONTRACT["metering"] = CONTRACT["audit"]


def _scrape(
    stats: Stats | None = None, *, source: object = None
) -> tuple[CollectorRegistry, StatsCollector]:
    registry = CollectorRegistry()
    collector = StatsCollector(source if source is not None else (lambda: stats))  # type: ignore[arg-type]
    registry.register(collector)
    return registry, collector


def test_the_catalogue_is_consistent() -> None:
    check_catalogue()
    names = [family.name for family in FAMILIES]
    assert len(names) == len(set(names))
    assert all(name.startswith("agentbus_") for name in names)
    for family in FAMILIES:
        if family.kind == "counter":
            assert family.name.endswith("_total"), family.name
        if family.kind in ("histogram", "summary") and "duration" in family.name:
            assert family.name.endswith("_seconds"), family.name


def test_every_contract_key_is_exported_or_deliberately_ignored() -> None:
    mapped = {(spec.component, spec.key) for spec in STAT_METRICS}
    wildcard_keys = {spec.key for spec in STAT_METRICS if spec.component == ANY_COMPONENT}
    for component, keys in CONTRACT.items():
        for key in keys:
            assert (
                (component, key) in mapped
                or key in wildcard_keys
                or (component, key) in IGNORED_STATS
            ), f"{component}.{key} is neither mapped nor ignored"


def test_hand_made_stats_become_the_documented_series() -> None:
    registry, _ = _scrape(
        {
            "bus": {"sent_total": 10, "mailbox_depth": 4, "backpressure_drops_total": 2},
            "cache": {"l1_hits": 7, "l1_misses": 3, "l2_tampered": 1, "breaker_state": 2},
            "policy": {"errors": 5, "timeouts": 1},
            "deliberation": {"approved": 9},
            "workflow": {"steps_skipped": 2},
        }
    )
    get = registry.get_sample_value
    assert get("agentbus_messages_submitted_total", {}) == 10
    assert get("agentbus_mailbox_depth_messages", {}) == 4
    assert get("agentbus_backpressure_events_total", {"action": "drop_oldest"}) == 2
    assert get("agentbus_cache_requests_total", {"layer": "l1", "result": "hit"}) == 7
    assert get("agentbus_cache_requests_total", {"layer": "l1", "result": "miss"}) == 3
    assert get("agentbus_cache_l2_errors_total", {"kind": "integrity"}) == 1
    assert get("agentbus_circuit_breaker_state", {"component": "cache"}) == 2
    assert get("agentbus_policy_errors_total", {"kind": "error"}) == 5
    assert get("agentbus_policy_errors_total", {"kind": "timeout"}) == 1
    assert get("agentbus_deliberation_resolved_total", {"outcome": "approved"}) == 9
    assert get("agentbus_workflow_steps_total", {"outcome": "skipped"}) == 2
    assert get("agentbus_stats_collection_errors_total", {}) == 0


def test_missing_components_and_keys_are_skipped() -> None:
    registry, collector = _scrape({"bus": {"agents": 3}, "unknown_component": {"x": 1}})
    names = {metric.name for metric in registry.collect()}
    assert names == {"agentbus_agents_registered", "agentbus_stats_collection_errors"}
    assert collector.errors_total == 0


def test_breaker_state_is_exported_for_any_component() -> None:
    registry, _ = _scrape({"cache": {"breaker_state": 0}, "remote_opa": {"breaker_state": 1}})
    assert registry.get_sample_value("agentbus_circuit_breaker_state", {"component": "cache"}) == 0
    assert (
        registry.get_sample_value("agentbus_circuit_breaker_state", {"component": "remote_opa"})
        == 1
    )


def test_background_queues_get_a_queue_label_and_a_summary() -> None:
    registry, _ = _scrape(
        {
            "audit": {"dropped": 4, "flush_seconds_sum": 0.25, "flush_seconds_count": 10},
            "metering": {"dropped": 1, "flush_seconds_sum": 0.5},  # no count: no summary
        }
    )
    get = registry.get_sample_value
    assert get("agentbus_background_items_dropped_total", {"queue": "audit"}) == 4
    assert get("agentbus_background_items_dropped_total", {"queue": "metering"}) == 1
    assert get("agentbus_background_flush_duration_seconds_sum", {"queue": "audit"}) == 0.25
    assert get("agentbus_background_flush_duration_seconds_count", {"queue": "audit"}) == 10
    assert get("agentbus_background_flush_duration_seconds_sum", {"queue": "metering"}) is None


def test_string_stats_become_an_info_metric() -> None:
    registry, _ = _scrape({"bus": {"constitutional_hash": "abc123"}})
    assert registry.get_sample_value("agentbus_constitution_info", {"hash": "abc123"}) == 1


def _one_scrape(registry: CollectorRegistry) -> dict[str, float]:
    """Sample name -> value from exactly one collect() (label-free samples only)."""
    return {
        sample.name: sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if not sample.labels
    }


@pytest.mark.parametrize("bad", ["many", float("nan"), float("inf"), None, [1]])
def test_values_of_the_wrong_type_are_skipped_and_counted(bad: object) -> None:
    registry, collector = _scrape({"bus": {"agents": bad, "mailbox_depth": 2}})  # type: ignore[dict-item]
    samples = _one_scrape(registry)
    assert "agentbus_agents_registered" not in samples
    assert samples["agentbus_mailbox_depth_messages"] == 2
    assert samples["agentbus_stats_collection_errors_total"] == 1
    assert collector.errors_total == 1


def test_bools_count_as_numbers() -> None:
    registry, collector = _scrape({"workflow": {"runs_active": True}})
    assert registry.get_sample_value("agentbus_workflow_runs_active", {}) == 1
    assert collector.errors_total == 0


def test_a_raising_source_never_breaks_the_scrape() -> None:
    def broken() -> Stats:
        raise RuntimeError("component exploded")

    registry, collector = _scrape(source=broken)
    samples = _one_scrape(registry)
    assert set(samples) == {"agentbus_stats_collection_errors_total"}
    assert samples["agentbus_stats_collection_errors_total"] == 1
    assert collector.errors_total == 1


def test_stats_source_of_leaves_out_only_the_broken_component() -> None:
    def broken() -> dict[str, StatValue]:
        raise RuntimeError("no stats today")

    source = stats_source_of({"bus": lambda: {"agents": 2}, "cache": broken})
    assert source() == {"bus": {"agents": 2}}


def test_describe_lets_the_registry_detect_clashes() -> None:
    registry = CollectorRegistry()
    registry.register(StatsCollector(dict))
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(StatsCollector(dict))


def test_full_stats_parse_as_valid_exposition(stats_for_round: StatsForRound) -> None:
    metrics = BusMetrics()
    metrics.attach_stats(lambda: stats_for_round(0))
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    assert families["agentbus_background_flush_duration_seconds"].type == "summary"
    assert families["agentbus_cache_requests"].type == "counter"
    assert families["agentbus_circuit_breaker_state"].type == "gauge"
    assert metrics.stats()["stats_collection_errors"] == 0


def test_counters_follow_the_source_at_every_scrape(stats_for_round: StatsForRound) -> None:
    state = {"round": 0}
    metrics = BusMetrics()
    metrics.attach_stats(lambda: stats_for_round(state["round"]))
    first = metrics.registry.get_sample_value("agentbus_messages_submitted_total", {})
    state["round"] = 4
    second = metrics.registry.get_sample_value("agentbus_messages_submitted_total", {})
    assert (first, second) == (50, 250)
    assert metrics.stats()["scrapes"] >= 2
