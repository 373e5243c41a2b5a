"""L1: an in-process LRU cache with a size bound and a TTL per entry.

Get and set are O(1) (``OrderedDict`` keeps recency order in C). An entry that
has outlived its TTL is removed when it is next looked up, or earlier by LRU
eviction; the size bound holds either way, so expired entries never make the
cache grow.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable
from typing import Final, Generic, TypeVar

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_NEVER: Final = math.inf


class LRUCache(Generic[K, V]):
    """At most ``maxsize`` entries; the least recently used goes first.

    Args:
        maxsize: the size bound (>= 1).
        ttl_s: default lifetime of an entry in seconds; ``None`` keeps entries
            until they are evicted.
        clock: time source for the TTL.

    Raises:
        ConfigurationError: ``maxsize`` or ``ttl_s`` out of range.

    Example::

        cache: LRUCache[bytes, Decision] = LRUCache(10_000, ttl_s=60.0)
        cache.set(key, decision)
        cache.get(key)       # decision, or None once evicted or expired
    """

    __slots__ = (
        "_data",
        "_default_ttl_s",
        "_maxsize",
        "_now",
        "evictions",
        "expirations",
        "hits",
        "misses",
    )

    def __init__(self, maxsize: int, *, ttl_s: float | None, clock: Clock | None = None) -> None:
        if maxsize < 1:
            raise ConfigurationError(
                f"LRUCache maxsize={maxsize!r} must be >= 1; raise AGENTBUS_CACHE__L1_MAXSIZE."
            )
        if ttl_s is not None and not ttl_s > 0:
            raise ConfigurationError(
                f"LRUCache ttl_s={ttl_s!r} must be > 0 seconds, or None for no expiry."
            )
        self._maxsize = maxsize
        self._default_ttl_s = _NEVER if ttl_s is None else ttl_s
        self._now = (clock or SystemClock()).monotonic
        self._data: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K) -> V | None:
        """The live value for ``key`` (now the most recently used), or ``None``; counted."""
        entry = self._data.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry[1] <= self._now():
            del self._data[key]
            self.expirations += 1
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return entry[0]

    def peek(self, key: K) -> V | None:
        """Like :meth:`get`, but neither counted nor refreshed in recency order."""
        entry = self._data.get(key)
        if entry is None or entry[1] <= self._now():
            return None
        return entry[0]

    def set(self, key: K, value: V, ttl_s: float | None = None) -> None:
        """Store ``value`` for ``ttl_s`` seconds (default: the cache's TTL).

        Raises:
            ValueError: ``value`` is ``None`` (it would read back as a miss) or
                ``ttl_s`` is not positive.
        """
        if value is None:
            raise ValueError(
                f"LRUCache cannot store None for key {key!r}: None means 'miss'. "
                "Wrap the value, or do not cache it."
            )
        if ttl_s is None:
            ttl = self._default_ttl_s
        elif ttl_s > 0:
            ttl = ttl_s
        else:
            raise ValueError(f"ttl_s={ttl_s!r} must be > 0 seconds.")
        data = self._data
        if key in data:
            data.move_to_end(key)
        data[key] = (value, self._now() + ttl)
        if len(data) > self._maxsize:
            data.popitem(last=False)
            self.evictions += 1

    def pop(self, key: K) -> V | None:
        """Remove ``key``; its value if it was live, else ``None``."""
        entry = self._data.pop(key, None)
        if entry is None:
            return None
        if entry[1] <= self._now():
            self.expirations += 1
            return None
        return entry[0]

    def clear(self) -> None:
        """Drop every entry (the counters are kept)."""
        self._data.clear()

    def stats(self) -> dict[str, int | float]:
        """Counters: hits, misses, evictions, expirations, size, maxsize."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "expirations": self.expirations,
            "size": len(self._data),
            "maxsize": self._maxsize,
        }
