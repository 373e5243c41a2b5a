"""Fixtures for the policy integration tests (the OPA-compatible server lives in its own module)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opa_compatible_server import OpaCompatibleServer, serving

from enhanced_agent_bus.constitution import Constitution, default_bundle_path, load_bundle


@pytest.fixture(scope="session")
def constitution() -> Constitution:
    return load_bundle(default_bundle_path())


@pytest.fixture
async def opa_server(constitution: Constitution) -> AsyncIterator[OpaCompatibleServer]:
    async with serving(constitution) as server:
        yield server
