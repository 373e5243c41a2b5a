import asyncio
from pathlib import Path

import pytest

from enhanced_agent_bus import (
    AgentBus,
    AgentContext,
    AgentMessage,
    BusSettings,
    DeliveryFailedError,
    MessageTimeoutError,
    MessageValidationError,
    RetrySettings,
)
from tests.conftest import Recorder


def fast_retry_settings(bundle: Path, **overrides: object) -> BusSettings:
    retry = RetrySettings(max_retries=2, backoff_initial_s=0.001, backoff_max_s=0.004)
    return BusSettings(constitution_path=bundle, retry=retry, **overrides)  # type: ignore[arg-type]


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self, message: AgentMessage, context: AgentContext) -> dict[str, int]:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"flaky failure {self.calls}")
        return {"calls": self.calls}


async def test_retry_then_success(bundle: Path) -> None:
    async with AgentBus(fast_retry_settings(bundle)) as bus:
        flaky = Flaky(failures=2)
        await bus.register_agent("a", Recorder(), tenant_id="t")
        await bus.register_agent("flaky", flaky, tenant_id="t")
        reply = await bus.request(bus.message("a", "flaky"))
        assert reply.payload == {"calls": 3}
        assert bus.dead_letters() == []


async def test_retry_then_dead_letter_and_the_bus_keeps_running(bundle: Path) -> None:
    async with AgentBus(fast_retry_settings(bundle)) as bus:
        flaky = Flaky(failures=100)
        await bus.register_agent("a", Recorder(), tenant_id="t")
        await bus.register_agent("flaky", flaky, tenant_id="t")
        message = bus.message("a", "flaky", {"job": 1})
        with pytest.raises(DeliveryFailedError, match="3 attempt") as info:
            await bus.request(message)
        letter = info.value.dead_letter
        assert flaky.calls == 3
        assert (letter.code, letter.attempts, letter.recipient) == ("handler_error", 3, "flaky")
        assert "ConnectionError: flaky failure 3" in letter.cause
        assert bus.dead_letters() == [letter]
        assert letter.message == message
        reply = await bus.request(bus.message("a", "a"))  # the bus still works
        assert reply.from_agent == "a"
        assert bus.stats()["dead_letters_by_code"] == {"handler_error": 1}


async def test_hanging_handler_times_out_and_is_dead_lettered(bundle: Path) -> None:
    settings = fast_retry_settings(bundle, handler_timeout_s=0.02)
    async with AgentBus(settings) as bus:
        calls = 0

        async def hang(message: AgentMessage, context: AgentContext) -> None:
            nonlocal calls
            calls += 1
            await asyncio.sleep(3600)

        await bus.register_agent("a", Recorder(), tenant_id="t")
        await bus.register_agent("hang", hang, tenant_id="t")
        with pytest.raises(DeliveryFailedError) as info:
            await bus.request(bus.message("a", "hang"), timeout=10)
        assert info.value.dead_letter.code == "handler_timeout"
        assert calls == 3
        # the worker task is not left with a pending cancellation
        assert (await bus.request(bus.message("a", "a"))).payload["by"] == "a"


async def test_handler_that_swallows_the_timeout_is_still_timed_out(bundle: Path) -> None:
    settings = fast_retry_settings(bundle, handler_timeout_s=0.02)
    async with AgentBus(settings) as bus:

        async def stubborn(message: AgentMessage, context: AgentContext) -> dict[str, str]:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise RuntimeError("converted") from None
            return {}

        await bus.register_agent("a", Recorder(), tenant_id="t")
        await bus.register_agent("s", stubborn, tenant_id="t")
        with pytest.raises(DeliveryFailedError) as info:
            await bus.request(bus.message("a", "s"))
        assert info.value.dead_letter.code == "handler_timeout"
        assert (await bus.request(bus.message("a", "a"))).payload["by"] == "a"


async def test_request_timeout(bundle: Path) -> None:
    async with AgentBus(BusSettings(constitution_path=bundle, drain_timeout_s=0.05)) as bus:
        release = asyncio.Event()

        async def slow(message: AgentMessage, context: AgentContext) -> None:
            await release.wait()

        await bus.register_agent("a", Recorder(), tenant_id="t")
        await bus.register_agent("slow", slow, tenant_id="t")
        with pytest.raises(MessageTimeoutError, match="'slow'") as info:
            await bus.request(bus.message("a", "slow"), timeout=0.03)
        assert isinstance(info.value, TimeoutError)
        release.set()


@pytest.mark.parametrize(
    ("reply", "needle"),
    [([1, 2], "JSON object"), ({"x": float("nan")}, "finite"), ("text", "JSON object")],
)
async def test_invalid_reply_fails_the_request_without_retries(
    bundle: Path, reply: object, needle: str
) -> None:
    async with AgentBus(fast_retry_settings(bundle)) as bus:
        calls = 0

        async def bad(message: AgentMessage, context: AgentContext) -> object:
            nonlocal calls
            calls += 1
            return reply

        await bus.register_agent("a", Recorder(), tenant_id="t")
        await bus.register_agent("bad", bad, tenant_id="t")  # type: ignore[arg-type]
        with pytest.raises(MessageValidationError, match=needle):
            await bus.request(bus.message("a", "bad"))
        assert calls == 1
        assert bus.dead_letters()[0].code == "invalid_reply"


async def test_oversize_reply_is_refused(bundle: Path) -> None:
    async with AgentBus(BusSettings(constitution_path=bundle, max_payload_bytes=100)) as bus:

        async def chatty(message: AgentMessage, context: AgentContext) -> dict[str, str]:
            return {"text": "x" * 200}

        await bus.register_agent("a", Recorder(), tenant_id="t")
        await bus.register_agent("chatty", chatty, tenant_id="t")
        with pytest.raises(MessageValidationError, match="max_payload_bytes=100"):
            await bus.request(bus.message("a", "chatty"))


async def test_stop_drains_every_accepted_message(bundle: Path) -> None:
    delivered: list[int] = []

    async def worker(message: AgentMessage, context: AgentContext) -> None:
        await asyncio.sleep(0.001)
        delivered.append(int(message.payload["i"]))  # type: ignore[call-overload]

    bus = AgentBus(BusSettings(constitution_path=bundle, drain_timeout_s=10))
    await bus.start()
    await bus.register_agent("s", Recorder(), tenant_id="t")
    for name in ("w1", "w2"):
        await bus.register_agent(name, worker, tenant_id="t")
    accepted = 0
    for i in range(100):
        result = await bus.send_message(bus.message("s", f"w{i % 2 + 1}", {"i": i}))
        accepted += result.is_valid
    await bus.stop()
    assert accepted == 100
    assert sorted(delivered) == list(range(100))
    assert bus.dead_letters() == []


async def test_stop_past_the_drain_deadline_dead_letters_the_rest(bundle: Path) -> None:
    async def stuck(message: AgentMessage, context: AgentContext) -> None:
        await asyncio.sleep(3600)

    bus = AgentBus(
        BusSettings(constitution_path=bundle, drain_timeout_s=0.05, handler_timeout_s=None)
    )
    await bus.start()
    await bus.register_agent("s", Recorder(), tenant_id="t")
    await bus.register_agent("stuck", stuck, tenant_id="t")
    for i in range(5):
        await bus.send_message(bus.message("s", "stuck", {"i": i}))
    pending = asyncio.create_task(bus.request(bus.message("s", "stuck", {"i": 5})))
    await asyncio.sleep(0.01)
    await bus.stop()
    letters = bus.dead_letters()
    assert sorted(d.message.payload["i"] for d in letters) == [0, 1, 2, 3, 4, 5]  # type: ignore[type-var]
    assert {d.code for d in letters} == {"cancelled", "drain_timeout"}
    with pytest.raises(DeliveryFailedError):
        await pending
    assert bus.stats()["bus"]["active_workers"] == 0


async def test_a_stop_cancellation_is_not_mistaken_for_a_handler_timeout(bundle: Path) -> None:
    started = asyncio.Event()

    async def stuck(message: AgentMessage, context: AgentContext) -> None:
        started.set()
        await asyncio.sleep(3600)

    settings = BusSettings(constitution_path=bundle, drain_timeout_s=0.02, handler_timeout_s=60)
    bus = AgentBus(settings)
    await bus.start()
    await bus.register_agent("s", Recorder(), tenant_id="t")
    await bus.register_agent("stuck", stuck, tenant_id="t")
    await bus.send_message(bus.message("s", "stuck"))
    await started.wait()
    await bus.stop()
    assert [d.code for d in bus.dead_letters()] == ["cancelled"]


async def test_a_handler_can_still_request_while_the_bus_drains(bundle: Path) -> None:
    answers: list[object] = []

    async def asker(message: AgentMessage, context: AgentContext) -> None:
        await asyncio.sleep(0.02)  # stop() begins meanwhile
        assert context.bus.state.value == "draining"
        reply = await context.request("answerer", {"q": "still there?"})
        answers.append(reply.payload)

    async def answerer(message: AgentMessage, context: AgentContext) -> dict[str, str]:
        return {"a": "yes"}

    bus = AgentBus(BusSettings(constitution_path=bundle, drain_timeout_s=5))
    await bus.start()
    await bus.register_agent("s", Recorder(), tenant_id="t")
    await bus.register_agent("asker", asker, tenant_id="t")
    await bus.register_agent("answerer", answerer, tenant_id="t")
    await bus.send_message(bus.message("s", "asker"))
    await asyncio.sleep(0)  # the asker's worker starts
    await bus.stop()
    assert answers == [{"a": "yes"}]
    assert bus.dead_letters() == []
