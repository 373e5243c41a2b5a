"""Fixtures for the policy tests: the real default constitution and registered-agent records."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from enhanced_agent_bus.constitution import Constitution, default_bundle_path, load_bundle
from enhanced_agent_bus.models import AgentMessage
from enhanced_agent_bus.registry import AgentRecord

AgentFactory = Callable[..., AgentRecord]


async def _handler(message: AgentMessage, context: Any) -> None:
    return None


def make_agent(
    agent_id: str, role: str, tenant_id: str = "acme", capabilities: tuple[str, ...] = ()
) -> AgentRecord:
    """A registry record for tests: policy decisions never touch the mailbox."""
    return AgentRecord(
        agent_id=agent_id,
        tenant_id=tenant_id,
        role=role,
        capabilities=frozenset(capabilities),
        handler=_handler,
        mailbox=None,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def constitution() -> Constitution:
    return load_bundle(default_bundle_path())


@pytest.fixture
def agent() -> AgentFactory:
    return make_agent


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Path:
    """A private copy of the default constitution that a test may edit."""
    target = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), target)
    return target
