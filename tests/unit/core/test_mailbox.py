import asyncio

import pytest

from enhanced_agent_bus import (
    AgentBus,
    AgentContext,
    AgentMessage,
    BackpressureError,
    BusSettings,
    DeliveryStatus,
    MailboxSettings,
    MessageType,
)
from tests.conftest import Recorder


class Gate:
    """A handler that blocks until released, recording arrival order."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.seen: list[int] = []

    async def __call__(self, message: AgentMessage, context: AgentContext) -> None:
        await self.open.wait()
        self.seen.append(int(message.payload["i"]))  # type: ignore[call-overload]


def bus_with(bundle: object, **mailbox: object) -> AgentBus:
    return AgentBus(
        BusSettings(constitution_path=bundle, mailbox=MailboxSettings(**mailbox))  # type: ignore[arg-type]
    )


async def test_idle_agents_own_no_worker_task(bus: AgentBus) -> None:
    for i in range(200):
        await bus.register_agent(f"idle-{i}", Recorder(), tenant_id="t")
    assert all(a.mailbox.worker is None for a in bus.agents())
    assert bus.stats()["bus"]["active_workers"] == 0


async def test_worker_exits_after_linger(bus: AgentBus, recorder: Recorder) -> None:
    await bus.register_agent("a", recorder, tenant_id="t")
    await bus.send_message(bus.message("a", "a"))
    record = bus.agents()[0]
    assert record.mailbox.worker is not None
    for _ in range(200):
        if record.mailbox.worker is None:
            break
        await asyncio.sleep(0.005)
    assert record.mailbox.worker is None
    assert len(recorder.messages) == 1


async def test_fifo_per_sender_and_recipient(bus: AgentBus) -> None:
    gate = Gate()
    await bus.register_agent("s", Recorder(), tenant_id="t")
    await bus.register_agent("r", gate, tenant_id="t")
    for i in range(50):
        await bus.send_message(bus.message("s", "r", {"i": i}))
    gate.open.set()
    await bus.request(bus.message("s", "r", {"i": 50}))
    assert gate.seen == list(range(51))


async def test_reject_policy_denies_when_full(bundle: object) -> None:
    async with bus_with(bundle, maxsize=2, backpressure="reject") as bus:
        gate = Gate()
        await bus.register_agent("s", Recorder(), tenant_id="t")
        await bus.register_agent("r", gate, tenant_id="t")
        results = [await bus.send_message(bus.message("s", "r", {"i": 0}))]
        await asyncio.sleep(0)  # the worker takes message 0 into the handler
        results += [await bus.send_message(bus.message("s", "r", {"i": i})) for i in (1, 2, 3)]
        # 1 and 2 fill the mailbox; 3 is refused
        assert [r.status for r in results[:3]] == [DeliveryStatus.DELIVERED] * 3
        assert results[3].status is DeliveryStatus.DENIED
        assert results[3].codes == ("backpressure",)
        assert "full" in results[3].reasons[0].message
        with pytest.raises(BackpressureError):
            await bus.request(bus.message("s", "r", {"i": 9}))
        assert len(bus.agents()[1].mailbox) <= 2
        assert bus.stats()["bus"]["backpressure_rejections_total"] == 2
        gate.open.set()


async def test_wait_policy_waits_for_room_then_gives_up(bundle: object) -> None:
    async with bus_with(bundle, maxsize=1, backpressure="wait", put_timeout_s=0.05) as bus:
        gate = Gate()
        await bus.register_agent("s", Recorder(), tenant_id="t")
        await bus.register_agent("r", gate, tenant_id="t")
        await bus.send_message(bus.message("s", "r", {"i": 0}))
        await asyncio.sleep(0)  # worker holds message 0
        await bus.send_message(bus.message("s", "r", {"i": 1}))  # fills the mailbox
        timed_out = await bus.send_message(bus.message("s", "r", {"i": 2}))
        assert timed_out.codes == ("backpressure",)
        waiting = asyncio.create_task(bus.send_message(bus.message("s", "r", {"i": 3})))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        gate.open.set()
        assert (await waiting).status is DeliveryStatus.DELIVERED
        await bus.request(bus.message("s", "r", {"i": 4}))
        assert gate.seen == [0, 1, 3, 4]


async def test_drop_oldest_drops_only_events_and_counts_them(bundle: object) -> None:
    async with bus_with(bundle, maxsize=2, backpressure="drop_oldest") as bus:
        gate = Gate()
        await bus.register_agent("s", Recorder(), tenant_id="t")
        await bus.register_agent("r", gate, tenant_id="t")
        await bus.send_message(bus.message("s", "r", {"i": 0}, message_type=MessageType.EVENT))
        await asyncio.sleep(0)  # in the handler
        for i in (1, 2, 3, 4):
            result = await bus.send_message(
                bus.message("s", "r", {"i": i}, message_type=MessageType.EVENT)
            )
            assert result.status is DeliveryStatus.DELIVERED
        command = await bus.send_message(bus.message("s", "r", {"i": 5}))
        assert command.codes == ("backpressure",)  # commands are never dropped
        dropped = [d for d in bus.dead_letters() if d.code == "dropped_oldest"]
        assert [d.message.payload["i"] for d in dropped] == [1, 2]
        assert bus.stats()["bus"]["backpressure_drops_total"] == 2
        gate.open.set()
        while len(bus.agents()[1].mailbox):
            await asyncio.sleep(0.001)
        await bus.request(bus.message("s", "r", {"i": 6}))
        assert gate.seen == [0, 3, 4, 6]
