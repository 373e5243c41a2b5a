"""Test helpers that are part of the public API: real implementations, not mocks."""

from ._clock import FakeClock

__all__ = ["FakeClock"]
