"""Hot-path metric storage: plain counters and histograms, exported at scrape time.

prometheus_client guards every value with a ``threading.Lock`` and scans
histogram buckets in Python: measured here, ``Counter.inc`` is ~0.35 µs and
``Histogram.observe`` ~0.9 µs, against a whole ``send_message`` of ~4 µs. The
issue allows metrics 10 % of a send, so the cells here are plain attributes
and a C ``bisect``, and one decision touches exactly one cell:
:class:`DecisionLatency` keeps a latency histogram per (outcome, stage, code,
message type) and derives both ``agentbus_messages_total`` (the cell's count)
and ``agentbus_send_duration_seconds`` (cells summed per outcome) at scrape
time.

The price is a threading rule: cells are written from ONE thread, the bus's
event loop (where observers and pipeline stages run). A write from another
thread could lose an increment; it can never corrupt the exposition. Reads
(the scrape) also run on the loop, so a scrape sees a consistent view.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Final, Protocol

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from ._catalogue import FAMILIES_BY_NAME, FamilySpec

_INF: Final = float("inf")
_US_PER_S: Final = 1_000_000.0


class CounterCell:
    """One counter series."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class HistogramCell:
    """One histogram series: per-bucket counts (not cumulative) and the sum.

    ``bounds`` and ``sum`` are in the unit the caller observes in; the family
    converts to seconds when it exports.
    """

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last slot is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are "less than or equal": bisect_left finds the first bound >= value.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class HotFamily(Protocol):
    def describe(self) -> Iterator[Metric]: ...

    def collect(self) -> Iterator[Metric]: ...


def _checked_bounds(name: str, bounds: tuple[float, ...]) -> tuple[float, ...]:
    if not bounds or list(bounds) != sorted(set(bounds)) or bounds[-1] == _INF:
        raise ValueError(f"histogram {name!r} needs strictly increasing finite bounds")
    return bounds


def _le_labels(bounds_s: tuple[float, ...]) -> list[str]:
    # The same "le" text prometheus_client writes (Go float formatting).
    return [floatToGoString(b) for b in bounds_s] + ["+Inf"]  # type: ignore[no-untyped-call]


def _buckets(le: list[str], counts: list[int]) -> list[tuple[str, float]]:
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip(le, counts, strict=True):
        cumulative += count
        buckets.append((bound, cumulative))
    return buckets


class HotCounter:
    """A counter family whose series are :class:`CounterCell`."""

    __slots__ = ("cells", "spec")

    def __init__(self, spec: FamilySpec) -> None:
        self.spec = spec
        self.cells: dict[tuple[str, ...], CounterCell] = {}

    def labels(self, *values: str) -> CounterCell:
        cell = self.cells.get(values)
        if cell is None:
            cell = self.cells[values] = CounterCell()
        return cell

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.spec.name, self.spec.help, labels=list(self.spec.labels))

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for values, cell in self.cells.items():
            family.add_metric(list(values), cell.value)
        yield family


class HotHistogram:
    """A histogram family (observed in seconds) whose series are :class:`HistogramCell`."""

    __slots__ = ("_le", "bounds", "cells", "spec")

    def __init__(self, spec: FamilySpec, bounds: tuple[float, ...]) -> None:
        self.spec = spec
        self.bounds = _checked_bounds(spec.name, bounds)
        self._le = _le_labels(bounds)
        self.cells: dict[tuple[str, ...], HistogramCell] = {}

    def labels(self, *values: str) -> HistogramCell:
        cell = self.cells.get(values)
        if cell is None:
            cell = self.cells[values] = HistogramCell(self.bounds)
        return cell

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.spec.name, self.spec.help, labels=list(self.spec.labels))

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for values, cell in self.cells.items():
            family.add_metric(list(values), _buckets(self._le, cell.counts), cell.sum)
        yield family


class DecisionLatency:
    """Decision counts and send latency from one cell per (outcome, stage, code, message type).

    Cells are observed in MICROSECONDS (``DeliveryResult.latency_us`` as is: no
    division on the hot path). At scrape time each cell's count becomes a
    sample of ``counter`` and the cells of one outcome are summed into the
    ``histogram`` series of that outcome, in seconds.
    """

    __slots__ = ("_bounds_us", "_le", "cells", "counter", "histogram")

    def __init__(self, counter: FamilySpec, histogram: FamilySpec, bounds_s: tuple[float, ...]):
        if counter.labels[0] != "outcome" or histogram.labels != ("outcome",):
            raise ValueError("DecisionLatency needs 'outcome' as the first label of both families")
        self.counter = counter
        self.histogram = histogram
        # round(): 2.5e-05 * 1e6 is 25.000000000000004; the bucket edge must be exactly 25 µs.
        self._bounds_us = tuple(
            round(b * _US_PER_S, 6) for b in _checked_bounds(histogram.name, bounds_s)
        )
        self._le = _le_labels(bounds_s)
        self.cells: dict[tuple[str, ...], HistogramCell] = {}

    def labels(self, *values: str) -> HistogramCell:
        cell = self.cells.get(values)
        if cell is None:
            cell = self.cells[values] = HistogramCell(self._bounds_us)
        return cell

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            self.counter.name, self.counter.help, labels=list(self.counter.labels)
        )
        yield HistogramMetricFamily(
            self.histogram.name, self.histogram.help, labels=list(self.histogram.labels)
        )

    def collect(self) -> Iterator[Metric]:
        counter = CounterMetricFamily(
            self.counter.name, self.counter.help, labels=list(self.counter.labels)
        )
        per_outcome: dict[str, tuple[list[int], list[float]]] = {}
        for values, cell in self.cells.items():
            counter.add_metric(list(values), sum(cell.counts))
            outcome = values[0]
            merged = per_outcome.get(outcome)
            if merged is None:
                per_outcome[outcome] = (list(cell.counts), [cell.sum])
            else:
                counts, total = merged
                for index, count in enumerate(cell.counts):
                    counts[index] += count
                total[0] += cell.sum
        histogram = HistogramMetricFamily(
            self.histogram.name, self.histogram.help, labels=list(self.histogram.labels)
        )
        for outcome, (counts, total) in per_outcome.items():
            histogram.add_metric([outcome], _buckets(self._le, counts), total[0] / _US_PER_S)
        yield counter
        yield histogram


class HotCollector:
    """Exports hot-path families at scrape time (register once per registry)."""

    def __init__(self, families: tuple[HotFamily, ...]) -> None:
        self._families = families

    def describe(self) -> Iterator[Metric]:
        for family in self._families:
            yield from family.describe()

    def collect(self) -> Iterator[Metric]:
        for family in self._families:
            yield from family.collect()


def hot_counter(name: str) -> HotCounter:
    return HotCounter(FAMILIES_BY_NAME[name])


def hot_histogram(name: str, bounds: tuple[float, ...]) -> HotHistogram:
    return HotHistogram(FAMILIES_BY_NAME[name], bounds)


def decision_latency(counter: str, histogram: str, bounds_s: tuple[float, ...]) -> DecisionLatency:
    return DecisionLatency(FAMILIES_BY_NAME[counter], FAMILIES_BY_NAME[histogram], bounds_s)
