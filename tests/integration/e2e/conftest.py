"""End-to-end fixtures: root logging restored after CLI runs, an OPA-compatible server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from enhanced_agent_bus.constitution import default_bundle_path, load_bundle
from tests.integration.policy.opa_compatible_server import OpaCompatibleServer, serving


@pytest.fixture(autouse=True)
def restore_root_logging() -> Iterator[None]:
    """The CLI installs a handler on the root logger (on the stream CliRunner swapped in):
    put the root logger back so later tests do not log into a closed stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
async def opa_server() -> AsyncIterator[OpaCompatibleServer]:
    """The policy tests' OPA-compatible server (real Rego via regorus) on a random port."""
    async with serving(load_bundle(default_bundle_path())) as server:
        yield server
