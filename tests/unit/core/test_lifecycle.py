import asyncio
import gc
import warnings

import pytest

from enhanced_agent_bus import (
    AgentBus,
    BusNotStartedError,
    BusSettings,
    BusState,
    BusStateError,
    ConfigurationError,
    DuplicateAgentError,
    MessageValidationError,
)
from tests.conftest import Recorder


async def test_send_before_start_and_after_stop(settings: BusSettings, recorder: Recorder) -> None:
    bus = AgentBus(settings)
    await bus.register_agent("a", recorder, tenant_id="t")
    await bus.register_agent("b", recorder, tenant_id="t")
    message = bus.message("a", "b", {"x": 1})
    with pytest.raises(BusNotStartedError, match="new"):
        await bus.send_message(message)
    await bus.start()
    assert bus.state is BusState.RUNNING
    assert (await bus.send_message(message)).is_valid
    await bus.stop()
    assert bus.state is BusState.STOPPED
    with pytest.raises(BusNotStartedError, match="stopped"):
        await bus.send_message(message)
    with pytest.raises(BusNotStartedError):
        await bus.request(message)
    await bus.stop()  # idempotent
    assert len(recorder.messages) == 1


async def test_start_twice_is_refused(settings: BusSettings) -> None:
    async with AgentBus(settings) as bus:
        with pytest.raises(BusStateError, match="start"):
            await bus.start()


async def test_unclosed_bus_warns(settings: BusSettings) -> None:
    bus = AgentBus(settings)
    await bus.start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del bus
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)


async def test_duplicate_and_bad_registrations(bus: AgentBus, recorder: Recorder) -> None:
    await bus.register_agent("a", recorder, tenant_id="t")
    with pytest.raises(DuplicateAgentError, match="'a'"):
        await bus.register_agent("a", recorder, tenant_id="t")
    with pytest.raises(MessageValidationError, match="agent_id"):
        await bus.register_agent("bad id", recorder, tenant_id="t")
    with pytest.raises(MessageValidationError, match="tenant_id"):
        await bus.register_agent("b", recorder, tenant_id="")

    def sync_handler(message: object, context: object) -> None:
        return None

    with pytest.raises(ConfigurationError, match="async"):
        await bus.register_agent("c", sync_handler, tenant_id="t")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="mailbox_size"):
        await bus.register_agent("d", recorder, tenant_id="t", mailbox_size=0)
    with pytest.raises(ConfigurationError, match="backpressure"):
        await bus.register_agent("e", recorder, tenant_id="t", backpressure="yolo")  # type: ignore[arg-type]
    assert [a.agent_id for a in bus.agents()] == ["a"]


async def test_a_background_task_failure_surfaces(settings: BusSettings) -> None:
    bus = AgentBus(settings)
    await bus.start()

    async def broken() -> None:
        raise RuntimeError("flusher bug")

    bus._supervisor.spawn(broken(), name="test:broken")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    await bus.register_agent("a", Recorder(), tenant_id="t")
    with pytest.raises(BusStateError) as info:
        await bus.send_message(bus.message("a", "a"))
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(BusStateError):
        await bus.stop()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTBUS_MAILBOX__MAXSIZE", "7")
    monkeypatch.setenv("AGENTBUS_HANDLER_TIMEOUT_S", "2.5")
    settings = BusSettings()
    assert settings.mailbox.maxsize == 7
    assert settings.handler_timeout_s == 2.5
    monkeypatch.setenv("AGENTBUS_MAILBOX__MAXSIZE", "0")
    with pytest.raises(ValueError, match="maxsize"):
        BusSettings()
    with pytest.raises(ValueError, match="nonsense"):
        BusSettings(nonsense=1)  # type: ignore[call-arg]
