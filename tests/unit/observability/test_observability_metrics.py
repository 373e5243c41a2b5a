"""BusMetrics and MetricsObserver: registries, counts, buckets, label bounds."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from enhanced_agent_bus.errors import ConfigurationError
from enhanced_agent_bus.models import (
    AgentMessage,
    DeadLetter,
    DeliveryResult,
    DeliveryStatus,
    MessageType,
    Reason,
)
from enhanced_agent_bus.observability import (
    ALL_TENANTS,
    OTHER,
    SEND_DURATION_BUCKETS_S,
    BusMetrics,
    ObservabilitySettings,
)
from enhanced_agent_bus.observers import BusObserver


def _message(
    tenant: str = "acme", message_type: MessageType = MessageType.COMMAND, **payload: str
) -> AgentMessage:
    return AgentMessage(
        from_agent="planner",
        to_agent="coder",
        tenant_id=tenant,
        message_type=message_type,
        payload=dict(payload),
    )


def _delivered(message: AgentMessage, latency_us: float = 40.0) -> DeliveryResult:
    return DeliveryResult(message.message_id, DeliveryStatus.DELIVERED, (), latency_us, "coder")


def _denied(
    message: AgentMessage, stage: str, code: str, latency_us: float = 5.0
) -> DeliveryResult:
    reason = Reason(stage, code, "no")
    return DeliveryResult(message.message_id, DeliveryStatus.DENIED, (reason,), latency_us, "coder")


def _value(metrics: BusMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_each_bus_owns_its_registry() -> None:
    first, second = BusMetrics(), BusMetrics()
    message = _message()
    first.observer.on_decision(message, _delivered(message))

    assert first.registry is not second.registry
    labels = {"outcome": "delivered", "stage": "none", "code": "none", "message_type": "command"}
    assert first.registry.get_sample_value("agentbus_messages_total", labels) == 1.0
    assert second.registry.get_sample_value("agentbus_messages_total", labels) is None


def test_two_buses_on_one_registry_are_refused_with_a_clear_error() -> None:
    shared = CollectorRegistry()
    BusMetrics(shared)
    with pytest.raises(ConfigurationError, match="own registry"):
        BusMetrics(shared)


def test_the_failed_registration_leaves_the_registry_unchanged() -> None:
    shared = CollectorRegistry()
    first = BusMetrics(shared)
    before = sorted(m.name for m in shared.collect())
    with pytest.raises(ConfigurationError):
        BusMetrics(shared)
    assert sorted(m.name for m in shared.collect()) == before
    first.close()
    assert list(shared.collect()) == []


def test_process_registry_is_opt_in_and_close_releases_it() -> None:
    metrics = BusMetrics.from_settings(ObservabilitySettings(use_process_registry=True))
    try:
        assert metrics.registry is REGISTRY
        message = _message()
        metrics.observer.on_decision(message, _delivered(message))
        assert b"agentbus_messages_total" in metrics.exposition()
    finally:
        metrics.close()
    assert (
        REGISTRY.get_sample_value("agentbus_send_duration_seconds_count", {"outcome": "delivered"})
        is None
    )
    assert BusMetrics().registry is not REGISTRY


def test_observer_satisfies_the_bus_observer_protocol() -> None:
    assert isinstance(BusMetrics().observer, BusObserver)


def test_decisions_are_counted_by_outcome_stage_code_and_type() -> None:
    metrics = BusMetrics()
    command, event = _message(), _message(message_type=MessageType.EVENT)
    for _ in range(3):
        metrics.observer.on_decision(command, _delivered(command))
    metrics.observer.on_decision(event, _denied(event, "policy", "role_not_allowed"))
    metrics.observer.on_decision(event, _denied(event, "policy", "role_not_allowed"))
    metrics.observer.on_decision(command, _denied(command, "tenant_isolation", "cross_tenant"))

    delivered = {"outcome": "delivered", "stage": "none", "code": "none", "message_type": "command"}
    policy = {
        "outcome": "denied",
        "stage": "policy",
        "code": "role_not_allowed",
        "message_type": "event",
    }
    tenant = {
        "outcome": "denied",
        "stage": "tenant_isolation",
        "code": "cross_tenant",
        "message_type": "command",
    }
    assert _value(metrics, "agentbus_messages_total", **delivered) == 3.0
    assert _value(metrics, "agentbus_messages_total", **policy) == 2.0
    assert _value(metrics, "agentbus_messages_total", **tenant) == 1.0
    assert _value(metrics, "agentbus_send_duration_seconds_count", outcome="delivered") == 3.0
    assert _value(metrics, "agentbus_send_duration_seconds_count", outcome="denied") == 3.0


def test_send_latency_lands_in_the_right_bucket() -> None:
    metrics = BusMetrics()
    message = _message()
    metrics.observer.on_decision(message, _delivered(message, latency_us=30.0))  # 30 µs
    metrics.observer.on_decision(message, _delivered(message, latency_us=3_000_000.0))  # 3 s

    def bucket(le: str) -> float | None:
        return _value(metrics, "agentbus_send_duration_seconds_bucket", outcome="delivered", le=le)

    assert bucket("2.5e-05") == 0.0
    assert bucket("5e-05") == 1.0
    assert bucket("2.5") == 1.0
    assert bucket("5.0") == 2.0
    assert bucket("+Inf") == 2.0
    total = _value(metrics, "agentbus_send_duration_seconds_sum", outcome="delivered")
    assert total == pytest.approx(3.00003)


def test_send_buckets_span_microseconds_to_ten_seconds() -> None:
    assert SEND_DURATION_BUCKETS_S[0] == pytest.approx(2.5e-6)
    assert SEND_DURATION_BUCKETS_S[-1] == pytest.approx(10.0)
    assert list(SEND_DURATION_BUCKETS_S) == sorted(SEND_DURATION_BUCKETS_S)


def test_dead_letters_are_counted_by_code() -> None:
    metrics = BusMetrics()
    message = _message()
    metrics.observer.on_dead_letter(DeadLetter(message, "coder", "boom", "handler_error", 3))
    metrics.observer.on_dead_letter(DeadLetter(message, "coder", "boom", "handler_error", 3))
    metrics.observer.on_dead_letter(DeadLetter(message, "coder", "slow", "handler_timeout", 1))
    assert _value(metrics, "agentbus_dead_letters_total", code="handler_error") == 2.0
    assert _value(metrics, "agentbus_dead_letters_total", code="handler_timeout") == 1.0


def test_stage_and_workflow_step_latency() -> None:
    metrics = BusMetrics()
    metrics.observe_stage("policy", 12e-6)
    metrics.observe_stage("policy", 0.5)
    metrics.observe_workflow_step("succeeded", 2.0)
    assert _value(metrics, "agentbus_pipeline_stage_duration_seconds_count", stage="policy") == 2.0
    assert (
        _value(
            metrics, "agentbus_pipeline_stage_duration_seconds_bucket", stage="policy", le="2.5e-05"
        )
        == 1.0
    )
    assert (
        _value(metrics, "agentbus_workflow_step_duration_seconds_sum", outcome="succeeded") == 2.0
    )


Usage = dict[tuple[str, str, str, str], tuple[int, int]]


def _usage(*rows: tuple[str, str, int, int]) -> Usage:
    """Metering-snapshot rows: (tenant, agent, messages, bytes), all commands delivered."""
    return {(tenant, agent, "command", "delivered"): (n, size) for tenant, agent, n, size in rows}


def test_tenant_cost_comes_from_metering_with_tenant_labels_off_by_default() -> None:
    metrics = BusMetrics()
    metrics.attach_usage(lambda: _usage(("acme", "planner", 3, 30), ("globex", "coder", 2, 50)))
    labels = {"tenant": ALL_TENANTS, "message_type": "command"}
    assert _value(metrics, "agentbus_tenant_messages_total", **labels) == 5.0
    assert _value(metrics, "agentbus_tenant_payload_bytes_total", **labels) == 80.0
    exposition = metrics.exposition()
    assert b'tenant="acme"' not in exposition
    assert b"planner" not in exposition  # agent ids are never labels


def test_tenant_allow_list_labels_only_listed_tenants() -> None:
    metrics = BusMetrics(tenant_labels=frozenset({"acme"}))
    metrics.attach_usage(
        lambda: _usage(("acme", "a1", 1, 10), ("acme", "a2", 1, 10), ("globex", "a1", 4, 40),
                       ("initech", "a1", 1, 1))
    )  # fmt: skip
    assert (
        _value(metrics, "agentbus_tenant_messages_total", tenant="acme", message_type="command")
        == 2.0
    )
    assert (
        _value(metrics, "agentbus_tenant_messages_total", tenant=OTHER, message_type="command")
        == 5.0
    )
    assert (
        _value(metrics, "agentbus_tenant_payload_bytes_total", tenant=OTHER, message_type="command")
        == 41.0
    )
    assert b"globex" not in metrics.exposition()


def test_tenant_labels_all_are_capped_and_stable_across_scrapes() -> None:
    usage = _usage(("t1", "a", 1, 1), ("t2", "a", 1, 1), ("t3", "a", 1, 1))
    metrics = BusMetrics(tenant_labels="all", max_tenant_label_values=2)
    metrics.attach_usage(lambda: usage)
    assert (
        _value(metrics, "agentbus_tenant_messages_total", tenant="t1", message_type="command")
        == 1.0
    )
    assert (
        _value(metrics, "agentbus_tenant_messages_total", tenant=OTHER, message_type="command")
        == 1.0
    )
    usage[("t4", "a", "command", "delivered")] = (5, 5)
    usage[("t1", "a", "command", "delivered")] = (2, 2)
    assert (
        _value(metrics, "agentbus_tenant_messages_total", tenant="t1", message_type="command")
        == 2.0
    )
    assert (
        _value(metrics, "agentbus_tenant_messages_total", tenant="t2", message_type="command")
        == 1.0
    )
    assert (
        _value(metrics, "agentbus_tenant_messages_total", tenant=OTHER, message_type="command")
        == 6.0
    )
    assert metrics.stats()["tenant_labels_folded"] > 0


def test_a_raising_usage_source_is_counted_not_raised() -> None:
    def broken() -> Usage:
        raise RuntimeError("metering closed")

    metrics = BusMetrics()
    metrics.attach_usage(broken)
    assert b"agentbus_usage_collection_errors_total 1.0" in metrics.exposition()
    assert metrics.stats()["usage_collection_errors"] == 1
    with pytest.raises(ConfigurationError, match="already attached"):
        metrics.attach_usage(broken)


def test_observer_cost_does_not_depend_on_tenants() -> None:
    metrics = BusMetrics(tenant_labels="all")
    for tenant in ("t1", "t2", "t3"):
        message = _message(tenant)
        metrics.observer.on_decision(message, _delivered(message))
    assert metrics.stats()["decision_series"] == 1
    assert metrics.stats()["decision_keys_cached"] == 1


def test_reason_codes_beyond_the_series_bound_fold_into_other() -> None:
    metrics = BusMetrics(max_series_per_family=16)
    message = _message()
    for index in range(20):
        metrics.observer.on_decision(message, _denied(message, "custom", f"code_{index}"))
    exposition = metrics.exposition().decode()
    series = [
        line for line in exposition.splitlines()
        if line.startswith("agentbus_messages_total{")
    ]  # fmt: skip
    assert len(series) == 17  # 16 distinct + one folded series
    folded = {"outcome": "denied", "stage": OTHER, "code": OTHER, "message_type": "command"}
    assert _value(metrics, "agentbus_messages_total", **folded) == 4.0
    assert (
        _value(metrics, "agentbus_metrics_series_overflow_total", family="agentbus_messages_total")
        == 4.0
    )


def test_repeat_decisions_reuse_bound_children() -> None:
    metrics = BusMetrics()
    message = _message()
    for _ in range(100):
        metrics.observer.on_decision(message, _denied(message, "policy", "x"))
        metrics.observer.on_decision(message, _delivered(message))
    assert metrics.stats()["decision_series"] == 2
    assert metrics.stats()["decision_keys_cached"] == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tenant_labels": "some"}, "not a policy"),
        ({"tenant_labels": frozenset()}, "allow-list is empty"),
        ({"max_series_per_family": 3}, "too small"),
        ({"max_tenant_label_values": 0}, ">= 1"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        BusMetrics(**kwargs)  # type: ignore[arg-type]


def test_settings_validate_the_allow_list() -> None:
    with pytest.raises(ValueError, match="needs tenant ids"):
        ObservabilitySettings(tenant_labels="allow_list")
    with pytest.raises(ValueError, match="set tenant_labels='allow_list'"):
        ObservabilitySettings(tenant_label_allow_list=frozenset({"acme"}))
    settings = ObservabilitySettings(
        tenant_labels="allow_list", tenant_label_allow_list=frozenset({"acme"})
    )
    assert settings.tenant_label_policy() == frozenset({"acme"})
    metrics = BusMetrics.from_settings(settings)
    metrics.attach_usage(lambda: _usage(("acme", "planner", 1, 4)))
    assert (
        _value(metrics, "agentbus_tenant_messages_total", tenant="acme", message_type="command")
        == 1.0
    )


def test_attaching_two_stats_sources_is_refused() -> None:
    metrics = BusMetrics()
    metrics.attach_stats(dict)
    with pytest.raises(ConfigurationError, match="already attached"):
        metrics.attach_stats(dict)


def test_hot_histogram_matches_prometheus_client_exactly() -> None:
    """The lock-free histogram exports the same samples prometheus_client would."""
    # Latencies arrive in microseconds (DeliveryResult.latency_us); edges hit bucket bounds.
    latencies_us = [0.0, 10.0, 10.000001, 25.0, 300.0, 1000.0, 700_000.0, 1e7, 1.1e7, 1e15]
    reference_registry = CollectorRegistry()
    reference = Histogram(
        "agentbus_send_duration_seconds",
        "reference",
        ["outcome"],
        registry=reference_registry,
        buckets=SEND_DURATION_BUCKETS_S,
    )
    metrics = BusMetrics()
    message = _message()
    for latency_us in latencies_us:
        reference.labels("delivered").observe(latency_us / 1_000_000)
        metrics.observer.on_decision(message, _delivered(message, latency_us=latency_us))

    def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
        return {
            (s.name, s.labels.get("le", "")): s.value
            for family in registry.collect()
            if family.name == "agentbus_send_duration_seconds"
            for s in family.samples
            if not s.name.endswith("_created")
        }

    ours, theirs = samples(metrics.registry), samples(reference_registry)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value), key


def test_stage_timing_is_sampled_one_in_n() -> None:
    metrics = BusMetrics(stage_sample_every=4)
    decisions = [metrics.should_time_stages() for _ in range(12)]
    assert decisions == [True, False, False, False] * 3
    every = BusMetrics(stage_sample_every=1)
    assert all(every.should_time_stages() for _ in range(5))
    with pytest.raises(ConfigurationError, match="stage_sample_every"):
        BusMetrics(stage_sample_every=0)
    settings = ObservabilitySettings(stage_timing_sample_every=2)
    from_settings = BusMetrics.from_settings(settings)
    assert [from_settings.should_time_stages() for _ in range(4)] == [True, False, True, False]
