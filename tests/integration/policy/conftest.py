"""Fixtures for the policy integration tests (the OPA-compatible server lives in its own module)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from opa_compatible_server import OpaCompatibleServer

from enhanced_agent_bus.constitution import Constitution, default_bundle_path, load_bundle


@pytest.fixture(scope="session")
def constitution() -> Constitution:
    return load_bundle(default_bundle_path())


@pytest.fixture
async def opa_server(constitution: Constitution) -> AsyncIterator[OpaCompatibleServer]:
    server = OpaCompatibleServer(constitution)
    app = web.Application()
    app.router.add_post("/v1/data/{path:.+}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()
        server.close()
