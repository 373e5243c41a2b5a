"""The PromQL reader used to check dashboards."""

from __future__ import annotations

import pytest

from enhanced_agent_bus.observability import (
    Selector,
    label_values_as_promql,
    metric_names,
    render,
    selectors,
)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("agentbus_agents_registered", {"agentbus_agents_registered"}),
        ("sum by (outcome) (rate(agentbus_messages_total[$__rate_interval]))",
         {"agentbus_messages_total"}),
        ("histogram_quantile(0.99, sum by (le, stage) "
         "(rate(agentbus_pipeline_stage_duration_seconds_bucket[5m])))",
         {"agentbus_pipeline_stage_duration_seconds_bucket"}),
        ("rate(a_sum[1m]) / rate(a_count[1m]) > 1e3 and on(queue) b_gauge offset 5m",
         {"a_sum", "a_count", "b_gauge"}),
        ('sum(x_total{tenant=~"$tenant", code!="by(sum)"}) without (code) * 100',
         {"x_total"}),
        ("max(agentbus_health_state) or vector(0)", {"agentbus_health_state"}),
    ],
)  # fmt: skip
def test_metric_names_are_found(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_selectors_carry_the_matched_label_names() -> None:
    found = selectors(
        'sum(rate(m_total{outcome="denied", stage=~"pol.*"}[1m])) / sum(n{__name__!=""})'
    )
    assert found == [
        Selector("m_total", frozenset({"outcome", "stage"})),
        Selector("n", frozenset()),
    ]


def test_grafana_variables_are_rendered() -> None:
    expr = 'rate(m{tenant=~"$tenant", x=~"${x:regex}"}[$__rate_interval]) [[legacy]]'
    assert render(expr) == 'rate(m{tenant=~".*", x=~".*"}[1m]) .*'
    assert render("increase(m[$__range])", {"__range": "5m"}) == "increase(m[5m])"


def test_label_values_queries_become_instant_queries() -> None:
    assert label_values_as_promql("label_values(agentbus_tenant_messages_total, tenant)") == (
        "count by (tenant) (agentbus_tenant_messages_total)"
    )
    assert label_values_as_promql("up") is None
