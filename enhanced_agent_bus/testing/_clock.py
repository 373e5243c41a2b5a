from __future__ import annotations


class FakeClock:
    """A monotonic clock that moves only when told to (implements ``Clock``)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds!r} s)")
        self._now += seconds
