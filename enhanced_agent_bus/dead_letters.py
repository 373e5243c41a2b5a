"""The bounded in-memory dead-letter store.

Every message the bus accepted but could not deliver lands here with its
cause; observers (the audit log) get each one as it arrives, so the durable
record does not depend on this store's capacity. When the store is full the
oldest entry is evicted and counted.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable

from .models import DeadLetter


class DeadLetterStore:
    def __init__(self, capacity: int, notify: Callable[[DeadLetter], None]) -> None:
        self._letters: deque[DeadLetter] = deque(maxlen=capacity)
        self._notify = notify
        self.total = 0
        self.evicted_total = 0
        self.by_code: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._letters)

    def add(self, dead_letter: DeadLetter, *, notify: bool = True) -> None:
        """Store ``dead_letter``; ``notify=False`` when observers already saw this outcome
        as a DEAD_LETTERED decision (so audit and metering count it once)."""
        if len(self._letters) == self._letters.maxlen:
            self.evicted_total += 1
        self._letters.append(dead_letter)
        self.total += 1
        self.by_code[dead_letter.code] += 1
        if notify:
            self._notify(dead_letter)

    def snapshot(self) -> list[DeadLetter]:
        return list(self._letters)

    def clear(self) -> list[DeadLetter]:
        """Remove and return every stored dead letter (for replay by the host)."""
        letters = list(self._letters)
        self._letters.clear()
        return letters
