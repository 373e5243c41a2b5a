from __future__ import annotations

from typing import Any

import pytest

from enhanced_agent_bus.cache import LRUCache
from enhanced_agent_bus.errors import ConfigurationError


def test_get_returns_what_was_set_and_counts(clock: Any) -> None:
    cache: LRUCache[bytes, str] = LRUCache(4, ttl_s=10.0, clock=clock)
    cache.set(b"a", "A")
    assert cache.get(b"a") == "A"
    assert cache.get(b"b") is None
    assert cache.stats() == {
        "hits": 1,
        "misses": 1,
        "evictions": 0,
        "expirations": 0,
        "size": 1,
        "maxsize": 4,
    }


def test_least_recently_used_is_evicted_first(clock: Any) -> None:
    cache: LRUCache[str, int] = LRUCache(3, ttl_s=None, clock=clock)
    for index, key in enumerate("abc"):
        cache.set(key, index)
    assert cache.get("a") == 0  # a is now the most recent; b is the oldest
    cache.set("d", 3)
    assert len(cache) == 3
    assert cache.get("b") is None
    assert [cache.get(key) for key in "acd"] == [0, 2, 3]
    assert cache.evictions == 1


def test_overwriting_refreshes_recency_and_value_without_growing(clock: Any) -> None:
    cache: LRUCache[str, int] = LRUCache(2, ttl_s=None, clock=clock)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("a", 10)
    cache.set("c", 3)
    assert cache.get("a") == 10
    assert cache.get("b") is None
    assert len(cache) == 2


def test_entries_expire_after_their_ttl(clock: Any) -> None:
    cache: LRUCache[str, str] = LRUCache(10, ttl_s=5.0, clock=clock)
    cache.set("default", "x")
    cache.set("short", "y", ttl_s=1.0)
    clock.advance(0.999)
    assert cache.get("short") == "y"
    clock.advance(0.001)
    assert cache.get("short") is None
    assert cache.get("default") == "x"
    clock.advance(4.0)
    assert cache.get("default") is None
    assert cache.expirations == 2
    assert len(cache) == 0


def test_peek_neither_counts_nor_refreshes(clock: Any) -> None:
    cache: LRUCache[str, int] = LRUCache(2, ttl_s=1.0, clock=clock)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.peek("a") == 1
    cache.set("c", 3)  # "a" was not refreshed by peek, so it goes
    assert cache.peek("a") is None
    assert cache.hits == 0
    assert cache.misses == 0
    clock.advance(1.0)
    assert cache.peek("b") is None


def test_pop_and_clear(clock: Any) -> None:
    cache: LRUCache[str, int] = LRUCache(5, ttl_s=1.0, clock=clock)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.pop("a") == 1
    assert cache.pop("a") is None
    clock.advance(2.0)
    assert cache.pop("b") is None
    assert cache.expirations == 1
    cache.set("c", 3)
    cache.clear()
    assert len(cache) == 0


def test_none_values_and_bad_ttls_are_refused(clock: Any) -> None:
    cache: LRUCache[str, Any] = LRUCache(2, ttl_s=1.0, clock=clock)
    with pytest.raises(ValueError, match="cannot store None"):
        cache.set("a", None)
    with pytest.raises(ValueError, match="ttl_s=0"):
        cache.set("a", 1, ttl_s=0)


@pytest.mark.parametrize(
    ("maxsize", "ttl_s", "fragment"),
    [(0, 1.0, "maxsize=0"), (10, 0.0, "ttl_s=0.0"), (10, -1.0, "ttl_s=-1.0")],
)
def test_invalid_construction_names_the_value(maxsize: int, ttl_s: float, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        LRUCache(maxsize, ttl_s=ttl_s)
