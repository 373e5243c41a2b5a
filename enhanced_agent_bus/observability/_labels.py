"""Bounded label sets: tenant label policy and cached, capped label children.

Prometheus keeps one time series per label combination, so every label whose
values come from traffic (tenants, reason codes of custom stages) is capped
here. Past the cap, new combinations are folded into ``_other`` values and the
fold is counted, so an operator sees the bound was hit instead of silently
losing series. Tenant and agent ids match ``[A-Za-z0-9][A-Za-z0-9_.:-]*``, so
they can never collide with the ``_all`` / ``_other`` markers.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

from ..errors import ConfigurationError
from ._hot import HotCounter
from ._settings import TenantLabelPolicy

#: Label value for "every tenant" when tenant labels are off.
ALL_TENANTS: Final = "_all"
#: Label value for values beyond a bound or outside the allow-list.
OTHER: Final = "_other"

ChildT = TypeVar("ChildT")


class TenantLabeler:
    """Maps a tenant id to the value of the ``tenant`` label under a policy.

    Args:
        policy: ``"off"``, ``"all"`` or a frozenset allow-list of tenant ids.
        max_values: under ``"all"``, at most this many distinct tenants get their own value.

    Raises:
        ConfigurationError: for an unknown policy or an empty allow-list.
    """

    __slots__ = ("_allowed", "_max_values", "_mode", "_seen", "folded_total")

    def __init__(self, policy: TenantLabelPolicy, max_values: int = 100) -> None:
        self._allowed: frozenset[str] = frozenset()
        if isinstance(policy, frozenset):
            if not policy:
                raise ConfigurationError(
                    "tenant label allow-list is empty; pass the tenant ids to label, "
                    "or use tenant_labels='off'."
                )
            self._mode = "allow_list"
            self._allowed = policy
        elif policy in ("off", "all"):
            self._mode = policy
        else:
            raise ConfigurationError(
                f"tenant_labels={policy!r} is not a policy; use 'off', 'all' or a frozenset "
                "of tenant ids to label."
            )
        if max_values < 1:
            raise ConfigurationError(f"max_tenant_label_values={max_values!r} must be >= 1")
        self._max_values = max_values
        self._seen: set[str] = set()
        self.folded_total = 0

    def label(self, tenant_id: str) -> str:
        if self._mode == "off":
            return ALL_TENANTS
        if self._mode == "allow_list":
            if tenant_id in self._allowed:
                return tenant_id
            return OTHER
        if tenant_id in self._seen:
            return tenant_id
        if len(self._seen) < self._max_values:
            self._seen.add(tenant_id)
            return tenant_id
        self.folded_total += 1
        return OTHER


class BoundedChildren(Generic[ChildT]):
    """Label children of one family, bound once per key, with a cap on distinct series.

    The hot path does ``children.get(key)`` (a dict lookup) and falls back to
    :meth:`bind` on a miss. ``key`` is whatever the caller can build cheapest
    (it may hold enum members); ``values`` are the label values it stands for.

    Args:
        family: metric family name (used as the overflow counter's label).
        labels: returns the series (cell) for a tuple of label values.
        max_series: distinct label-value tuples allowed before folding.
        fold: maps label values beyond the cap onto a bounded overflow tuple.
        overflow: the ``agentbus_metrics_series_overflow_total`` family.
    """

    __slots__ = ("_bound", "_family", "_fold", "_labels", "_max_series", "_overflow", "children")

    def __init__(
        self,
        family: str,
        labels: Callable[..., ChildT],
        *,
        max_series: int,
        fold: Callable[[tuple[str, ...]], tuple[str, ...]],
        overflow: HotCounter,
    ) -> None:
        self._family = family
        self._labels = labels
        self._max_series = max_series
        self._fold = fold
        self._overflow = overflow
        self._bound: set[tuple[str, ...]] = set()
        self.children: dict[Hashable, ChildT] = {}

    def bind(self, key: Hashable, values: tuple[str, ...]) -> ChildT:
        """Return the child for ``values`` (folded past the cap) and cache it under ``key``."""
        if values not in self._bound:
            if len(self._bound) < self._max_series:
                self._bound.add(values)
            else:
                self._overflow.labels(self._family).inc()
                values = self._fold(values)
        child = self._labels(*values)
        # Raw keys can outnumber label tuples (many tenants folded into one value), so the
        # key cache has its own bound; past it the slow path still returns the right child.
        if len(self.children) < 4 * self._max_series:
            self.children[key] = child
        return child

    def __len__(self) -> int:
        return len(self._bound)
