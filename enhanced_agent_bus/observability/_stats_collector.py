"""Scrape-time export of component stats: ``bus.stats()`` becomes ``agentbus_*`` samples.

Nothing here runs per message. At each scrape the collector calls the stats
source once and walks :data:`~._catalogue.STAT_METRICS`; missing components
and keys are skipped, values of the wrong type are skipped and counted. A
source that raises yields no component samples for that scrape (the collector
still exports its own error counter), so a broken component never breaks
``/metrics``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from typing import TypeAlias

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from ._catalogue import (
    ANY_COMPONENT,
    COMPONENT,
    FAMILIES,
    FAMILIES_BY_NAME,
    STAT_METRICS,
    FamilySpec,
    StatSpec,
    check_catalogue,
)

logger = logging.getLogger(__name__)

StatValue: TypeAlias = float | int | str
#: ``bus.stats``: ``{component: {key: value}}``.
StatsSource: TypeAlias = Callable[[], Mapping[str, Mapping[str, StatValue]]]

_ERRORS_FAMILY = "agentbus_stats_collection_errors_total"


def _number(value: StatValue) -> float | None:
    """A finite number, or None for strings and NaN/inf (bool counts as 0/1)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


class StatsCollector:
    """A prometheus_client collector reading ``stats_source()`` at scrape time.

    Args:
        stats_source: returns ``{component: {key: value}}``; called once per scrape
            on the scraping thread (the event loop when served by ``MetricsServer``).
        catalogue: the stat mappings; defaults to :data:`STAT_METRICS`.

    Raises:
        ValueError: if the catalogue is inconsistent (checked once, here).
    """

    def __init__(
        self, stats_source: StatsSource, catalogue: tuple[StatSpec, ...] = STAT_METRICS
    ) -> None:
        check_catalogue()
        self._source = stats_source
        self._catalogue = catalogue
        self._by_component: dict[str, list[StatSpec]] = {}
        self._wildcards: list[StatSpec] = []
        for spec in catalogue:
            if spec.component == ANY_COMPONENT:
                self._wildcards.append(spec)
            else:
                self._by_component.setdefault(spec.component, []).append(spec)
        self._families = tuple(
            FAMILIES_BY_NAME[name] for name in dict.fromkeys(spec.family for spec in catalogue)
        )
        self.errors_total = 0
        self.scrapes_total = 0

    def describe(self) -> Iterator[Metric]:
        """Every family this collector can emit (lets the registry detect name clashes)."""
        for family in (*self._families, FAMILIES_BY_NAME[_ERRORS_FAMILY]):
            yield _empty(family)

    def collect(self) -> Iterator[Metric]:
        self.scrapes_total += 1
        try:
            stats = self._source()
        except Exception as exc:
            self.errors_total += 1
            logger.warning(
                "stats source raised %s; component metrics skipped for this scrape",
                type(exc).__name__,
            )
            stats = {}
        yield from self._families_from(stats)
        errors = CounterMetricFamily(_ERRORS_FAMILY, FAMILIES_BY_NAME[_ERRORS_FAMILY].help)
        errors.add_metric([], self.errors_total)
        yield errors

    def _families_from(self, stats: Mapping[str, Mapping[str, StatValue]]) -> Iterator[Metric]:
        samples: dict[str, Metric] = {}
        summaries: dict[tuple[str, tuple[str, ...]], dict[str, float]] = {}
        for component, values in stats.items():
            if not isinstance(values, Mapping):
                self._bad_value(component, "*", values)
                continue
            for spec in (*self._by_component.get(component, ()), *self._wildcards):
                if spec.key not in values:
                    continue
                self._add(spec, component, values[spec.key], samples, summaries)
        summary_families: dict[str, SummaryMetricFamily] = {}
        for (name, label_values), parts in summaries.items():
            if "sum" not in parts or "count" not in parts:
                continue
            summary = summary_families.get(name)
            if summary is None:
                spec = FAMILIES_BY_NAME[name]
                summary = SummaryMetricFamily(name, spec.help, labels=list(spec.labels))
                summary_families[name] = summary
            summary.add_metric(list(label_values), int(parts["count"]), parts["sum"])
        yield from samples.values()
        yield from summary_families.values()

    def _add(
        self,
        spec: StatSpec,
        component: str,
        value: StatValue,
        samples: dict[str, Metric],
        summaries: dict[tuple[str, tuple[str, ...]], dict[str, float]],
    ) -> None:
        family = FAMILIES_BY_NAME[spec.family]
        label_values = tuple(component if v == COMPONENT else v for _, v in spec.labels)
        if family.kind == "info":
            if not isinstance(value, str) or not value:
                self._bad_value(component, spec.key, value)
                return
            info = samples.get(family.name)
            if info is None:
                info = InfoMetricFamily(family.name, family.help, labels=family.labels[:-1])
                samples[family.name] = info
            if isinstance(info, InfoMetricFamily):
                info.add_metric(list(label_values), {family.labels[-1]: value})
            return
        number = _number(value)
        if number is None:
            self._bad_value(component, spec.key, value)
            return
        if family.kind == "summary":
            summaries.setdefault((family.name, label_values), {})[spec.part] = number
            return
        metric = samples.get(family.name)
        if metric is None:
            metric = _empty(family)
            samples[family.name] = metric
        if isinstance(metric, CounterMetricFamily | GaugeMetricFamily):
            metric.add_metric(list(label_values), number)

    def _bad_value(self, component: str, key: str, value: object) -> None:
        self.errors_total += 1
        logger.debug(
            "stat %s.%s has a %s value; skipped",
            component,
            key,
            type(value).__name__,
            extra={"component": component},
        )


def _empty(family: FamilySpec) -> Metric:
    labels = list(family.labels)
    if family.kind == "counter":
        return CounterMetricFamily(family.name, family.help, labels=labels)
    if family.kind == "gauge":
        return GaugeMetricFamily(family.name, family.help, labels=labels)
    if family.kind == "summary":
        return SummaryMetricFamily(family.name, family.help, labels=labels)
    if family.kind == "info":
        return InfoMetricFamily(family.name, family.help, labels=labels[:-1])
    raise ValueError(f"family {family.name!r} of kind {family.kind!r} cannot come from stats")


#: Every scrape-time family (for docs and tests).
STATS_FAMILIES = tuple(f for f in FAMILIES if f.source == "stats")
