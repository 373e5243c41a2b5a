"""Model-based test: the L1 LRU agrees with a plain reference model and never exceeds its bound."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from enhanced_agent_bus.cache import LRUCache

KEYS = st.integers(min_value=0, max_value=7)
TTLS = st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2.0, 5.0]))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


class ReferenceLRU:
    """The obvious, slow implementation: a list in recency order (oldest first)."""

    def __init__(self, maxsize: int, ttl_s: float, clock: Clock) -> None:
        self.maxsize, self.ttl_s, self.clock = maxsize, ttl_s, clock
        self.entries: list[tuple[int, str, float]] = []
        self.hits = self.misses = self.evictions = self.expirations = 0

    def _find(self, key: int) -> int | None:
        for index, entry in enumerate(self.entries):
            if entry[0] == key:
                return index
        return None

    def get(self, key: int) -> str | None:
        index = self._find(key)
        if index is None:
            self.misses += 1
            return None
        entry = self.entries.pop(index)
        if entry[2] <= self.clock.now:
            self.expirations += 1
            self.misses += 1
            return None
        self.entries.append(entry)
        self.hits += 1
        return entry[1]

    def peek(self, key: int) -> str | None:
        index = self._find(key)
        if index is None or self.entries[index][2] <= self.clock.now:
            return None
        return self.entries[index][1]

    def set(self, key: int, value: str, ttl_s: float | None) -> None:
        index = self._find(key)
        if index is not None:
            self.entries.pop(index)
        self.entries.append((key, value, self.clock.now + (ttl_s or self.ttl_s)))
        if len(self.entries) > self.maxsize:
            self.entries.pop(0)
            self.evictions += 1

    def pop(self, key: int) -> str | None:
        index = self._find(key)
        if index is None:
            return None
        entry = self.entries.pop(index)
        if entry[2] <= self.clock.now:
            self.expirations += 1
            return None
        return entry[1]


class LRUAgreesWithReference(RuleBasedStateMachine):
    cache: LRUCache[int, str]
    model: ReferenceLRU

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.ready = False

    @initialize(maxsize=st.integers(min_value=1, max_value=5), ttl_s=st.sampled_from([1.0, 3.0]))
    def create(self, maxsize: int, ttl_s: float) -> None:
        self.cache = LRUCache(maxsize, ttl_s=ttl_s, clock=self.clock)
        self.model = ReferenceLRU(maxsize, ttl_s, self.clock)
        self.ready = True

    @precondition(lambda self: self.ready)
    @rule(key=KEYS, value=st.text(min_size=1, max_size=3), ttl_s=TTLS)
    def set(self, key: int, value: str, ttl_s: float | None) -> None:
        self.cache.set(key, value, ttl_s)
        self.model.set(key, value, ttl_s)

    @precondition(lambda self: self.ready)
    @rule(key=KEYS)
    def get(self, key: int) -> None:
        assert self.cache.get(key) == self.model.get(key)

    @precondition(lambda self: self.ready)
    @rule(key=KEYS)
    def peek(self, key: int) -> None:
        assert self.cache.peek(key) == self.model.peek(key)

    @precondition(lambda self: self.ready)
    @rule(key=KEYS)
    def pop(self, key: int) -> None:
        assert self.cache.pop(key) == self.model.pop(key)

    @precondition(lambda self: self.ready)
    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 2.5]))
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    @invariant()
    def within_bound_and_counters_agree(self) -> None:
        if not self.ready:
            return
        stats = self.cache.stats()
        assert len(self.cache) <= self.cache.maxsize
        assert stats["size"] == len(self.model.entries)
        assert (stats["hits"], stats["misses"]) == (self.model.hits, self.model.misses)
        assert (stats["evictions"], stats["expirations"]) == (
            self.model.evictions,
            self.model.expirations,
        )


LRUAgreesWithReference.TestCase.settings = settings(max_examples=300, stateful_step_count=60)
test_lru_agrees_with_reference = LRUAgreesWithReference.TestCase
