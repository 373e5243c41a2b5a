"""Fixtures shared by every test: a clean environment, a minimal bundle, a running bus, Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from enhanced_agent_bus import AgentBus, AgentContext, AgentMessage, BusSettings
from enhanced_agent_bus.testing import FakeClock

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AGENTBUS_* variable from the developer's shell leaks into a test, and a bus
    built with default settings writes its audit/metering database under tmp_path."""
    for name in list(os.environ):
        if name.startswith("AGENTBUS_") and name != "AGENTBUS_TEST_REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AGENTBUS_AUDIT__SQLITE_PATH", str(tmp_path / "audit.sqlite3"))
    monkeypatch.setenv("AGENTBUS_METERING__SQLITE_PATH", str(tmp_path / "audit.sqlite3"))


def write_bundle(root: Path, data: dict[str, Any] | None = None, **files: str) -> Path:
    """A constitution bundle with a data document and no Rego (so no policy stage)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.json").write_bytes(orjson.dumps(data or {"cross_tenant": {"allow": []}}))
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(bundle: Path) -> BusSettings:
    return BusSettings(constitution_path=bundle, drain_timeout_s=2.0)


@pytest.fixture
async def bus(settings: BusSettings, clock: FakeClock) -> AsyncIterator[AgentBus]:
    async with AgentBus(settings, clock=clock) as bus:
        yield bus


class Recorder:
    """A real handler that records what it receives and echoes a reply."""

    def __init__(self) -> None:
        self.messages: list[AgentMessage] = []

    async def __call__(self, message: AgentMessage, context: AgentContext) -> dict[str, Any]:
        self.messages.append(message)
        return {"echo": message.payload, "by": context.agent_id}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A reachable Redis (db 15 by default). CI must run these tests: there it fails, not skips."""
    import redis

    url = os.environ.get("AGENTBUS_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {url} is unreachable in CI ({exc}); .ci/run must start it")
        pytest.skip(f"Redis at {url} is unreachable: {exc}")
    finally:
        client.close()
    return url


@pytest.fixture
def redis_prefix() -> str:
    return f"agentbus-test:{uuid.uuid4().hex[:12]}:"
