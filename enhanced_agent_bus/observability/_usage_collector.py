"""Scrape-time export of metering's usage totals as per-tenant cost-attribution counters.

Metering already sums messages and payload bytes per (tenant, agent, message
type, outcome) in its background worker. At each scrape this collector reads
that snapshot and sums it per (tenant label, message type): agent ids never
become labels, and the tenant label follows the bus's tenant policy (``_all``
when off, the allow-list or the first N tenants otherwise, ``_other`` for the
rest). The send path pays nothing for cost attribution.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeAlias, TypeVar

from prometheus_client.core import CounterMetricFamily, Metric

from ._catalogue import FAMILIES_BY_NAME
from ._labels import TenantLabeler

logger = logging.getLogger(__name__)

#: A usage key: ``(tenant_id, agent_id, message_type, outcome)``; metering's ``UsageKey``
#: named tuple is one (a TypeVar, because a Mapping's key type is invariant).
UsageKeyT = TypeVar("UsageKeyT", bound=tuple[str, str, str, str])
#: ``Metering.snapshot``: ``{usage key: (messages, payload bytes)}``.
UsageSource: TypeAlias = Callable[[], Mapping[UsageKeyT, tuple[int, int]]]

_MESSAGES = FAMILIES_BY_NAME["agentbus_tenant_messages_total"]
_BYTES = FAMILIES_BY_NAME["agentbus_tenant_payload_bytes_total"]
_ERRORS = FAMILIES_BY_NAME["agentbus_usage_collection_errors_total"]


class UsageCollector:
    """A prometheus_client collector reading ``usage_source()`` at scrape time.

    Args:
        usage_source: metering's in-memory totals (``Metering.snapshot``).
        labeler: maps tenant ids to ``tenant`` label values (bounded).
    """

    def __init__(self, usage_source: UsageSource[UsageKeyT], labeler: TenantLabeler) -> None:
        # Any: the key type is the caller's UsageKeyT; only its four str fields are read.
        self._source: Callable[[], Mapping[Any, tuple[int, int]]] = usage_source
        self._labeler = labeler
        self.errors_total = 0

    def describe(self) -> Iterator[Metric]:
        for family in (_MESSAGES, _BYTES, _ERRORS):
            yield CounterMetricFamily(family.name, family.help, labels=list(family.labels))

    def collect(self) -> Iterator[Metric]:
        try:
            usage = self._source()
        except Exception as exc:
            self.errors_total += 1
            logger.warning("usage source raised %s; cost metrics skipped", type(exc).__name__)
            usage = {}
        sums: dict[tuple[str, str], list[int]] = {}
        for (tenant, _agent, message_type, _outcome), (messages, size) in usage.items():
            key = (self._labeler.label(tenant), message_type)
            total = sums.get(key)
            if total is None:
                sums[key] = [messages, size]
            else:
                total[0] += messages
                total[1] += size
        messages_family = CounterMetricFamily(
            _MESSAGES.name, _MESSAGES.help, labels=list(_MESSAGES.labels)
        )
        bytes_family = CounterMetricFamily(_BYTES.name, _BYTES.help, labels=list(_BYTES.labels))
        for (tenant_label, message_type), (messages, size) in sums.items():
            messages_family.add_metric([tenant_label, message_type], messages)
            bytes_family.add_metric([tenant_label, message_type], size)
        errors = CounterMetricFamily(_ERRORS.name, _ERRORS.help, value=self.errors_total)
        yield from (messages_family, bytes_family, errors)
