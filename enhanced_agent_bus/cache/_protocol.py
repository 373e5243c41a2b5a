"""The contract between the decision cache and the stages that use it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

V = TypeVar("V")


class DecisionCache(Protocol[V]):
    """A cache of decisions keyed by 16-byte digests (see :func:`scoped_key`).

    The intended use keeps hits off the await path::

        value = cache.get_local(key)           # sync, O(1): no suspension on a hit
        if value is None:
            value = await cache.get_or_load(key, loader)
    """

    def get_local(self, key: bytes) -> V | None:
        """The value if it is in the in-process tier (L1), else ``None``. Never does I/O."""
        ...

    async def get_or_load(self, key: bytes, loader: Callable[[], Awaitable[V]]) -> V:
        """The value from L1, else L2, else ``await loader()`` (stored in both tiers).

        Concurrent calls for the same missing key share one ``loader()`` call.
        An exception from ``loader`` reaches every caller waiting on it and is
        not cached.
        """
        ...
