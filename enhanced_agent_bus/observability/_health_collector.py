"""Scrape-time export of a :class:`HealthAggregator` as ``agentbus_health_*`` series."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ._catalogue import FAMILIES_BY_NAME
from ._health import HealthAggregator

_STATE = FAMILIES_BY_NAME["agentbus_health_state"]
_COMPONENT = FAMILIES_BY_NAME["agentbus_health_component_state"]
_TRANSITIONS = FAMILIES_BY_NAME["agentbus_health_transitions_total"]
_ERRORS = FAMILIES_BY_NAME["agentbus_health_callback_errors_total"]


class HealthCollector:
    """Runs the health probes at scrape time and exports the states as gauges (0/1/2)."""

    def __init__(self, health: HealthAggregator) -> None:
        self._health = health

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(_STATE.name, _STATE.help)
        yield GaugeMetricFamily(_COMPONENT.name, _COMPONENT.help, labels=list(_COMPONENT.labels))
        yield CounterMetricFamily(_TRANSITIONS.name, _TRANSITIONS.help)
        yield CounterMetricFamily(_ERRORS.name, _ERRORS.help)

    def collect(self) -> Iterator[Metric]:
        report = self._health.report()
        overall = GaugeMetricFamily(_STATE.name, _STATE.help, value=report.state.severity)
        components = GaugeMetricFamily(
            _COMPONENT.name, _COMPONENT.help, labels=list(_COMPONENT.labels)
        )
        for component in report.components:
            components.add_metric([component.component], component.state.severity)
        transitions = CounterMetricFamily(
            _TRANSITIONS.name, _TRANSITIONS.help, value=self._health.transitions_total
        )
        errors = CounterMetricFamily(
            _ERRORS.name,
            _ERRORS.help,
            value=self._health.callback_errors_total + self._health.probe_errors_total,
        )
        yield from (overall, components, transitions, errors)
