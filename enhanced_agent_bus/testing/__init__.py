"""Test helpers that are part of the public API: real implementations, not mocks."""

from ._audit import InMemoryAuditSink
from ._clock import FakeClock

__all__ = ["FakeClock", "InMemoryAuditSink"]
