"""Fixtures for the background unit tests (helpers live in bg_helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bg_helpers import ControlledSink

from enhanced_agent_bus.tasks import TaskSupervisor


@pytest.fixture
async def supervisor() -> AsyncIterator[TaskSupervisor]:
    supervisor = TaskSupervisor()
    yield supervisor
    await supervisor.aclose()
    assert supervisor.failure is None, f"a background task failed: {supervisor.failure!r}"


@pytest.fixture
def sink() -> ControlledSink[int]:
    return ControlledSink()
