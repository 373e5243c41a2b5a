"""Metering: per-(tenant, agent, type, outcome) aggregation, snapshot, idempotent batches."""

from __future__ import annotations

from bg_helpers import DictMeteringSink, delivered, denied, fast_settings, message

from enhanced_agent_bus.background import (
    Metering,
    MeteringSettings,
    MeteringSink,
    UsageDelta,
    UsageKey,
    UsageTotals,
)
from enhanced_agent_bus.background._metering import aggregate
from enhanced_agent_bus.models import AgentMessage, DeadLetter, DeliveryStatus, MessageType
from enhanced_agent_bus.tasks import TaskSupervisor


def metering_settings(**overrides: object) -> MeteringSettings:
    return MeteringSettings.model_validate({**fast_settings().model_dump(), **overrides})


def test_dict_sink_satisfies_the_protocol() -> None:
    assert isinstance(DictMeteringSink(), MeteringSink)


def test_aggregate_sums_counts_and_bytes_per_key() -> None:
    a = message(1, payload={"x": "1234"})
    b = message(2, tenant_id="globex", payload={})
    events = [
        (a, DeliveryStatus.DELIVERED),
        (a, DeliveryStatus.DELIVERED),
        (a, DeliveryStatus.DENIED),
        (b, DeliveryStatus.DELIVERED),
    ]
    assert aggregate(events) == [
        UsageDelta(
            UsageKey("acme", "planner", "command", "delivered"), 2, 2 * a.payload_size_bytes
        ),
        UsageDelta(UsageKey("acme", "planner", "command", "denied"), 1, a.payload_size_bytes),
        UsageDelta(UsageKey("globex", "planner", "command", "delivered"), 1, b.payload_size_bytes),
    ]


async def test_metering_counts_decisions_and_dead_letters(supervisor: TaskSupervisor) -> None:
    sink = DictMeteringSink()
    metering = Metering(sink, metering_settings())
    await metering.start(supervisor)
    event = AgentMessage(
        from_agent="sensor", tenant_id="acme", message_type=MessageType.EVENT, payload={"t": 21}
    )
    cmd = message()
    for _ in range(3):
        metering.on_decision(cmd, delivered(cmd))
    metering.on_decision(cmd, denied(cmd, "policy_denied"))
    metering.on_decision(event, delivered(event))
    metering.on_dead_letter(
        DeadLetter(message=cmd, recipient="coder", cause="x", code="handler_error", attempts=1)
    )
    await metering.aclose()

    expected = {
        UsageKey("acme", "planner", "command", "delivered"): UsageTotals(
            3, 3 * cmd.payload_size_bytes
        ),
        UsageKey("acme", "planner", "command", "denied"): UsageTotals(1, cmd.payload_size_bytes),
        UsageKey("acme", "sensor", "event", "delivered"): UsageTotals(1, event.payload_size_bytes),
        UsageKey("acme", "planner", "command", "dead_lettered"): UsageTotals(
            1, cmd.payload_size_bytes
        ),
    }
    assert sink.totals == expected
    assert metering.snapshot() == expected
    assert metering.stats()["written"] == 6
    assert sink.is_open is False


async def test_hot_path_only_enqueues(supervisor: TaskSupervisor) -> None:
    sink = DictMeteringSink()
    metering = Metering(sink, metering_settings(flush_interval_ms=3_600_000))
    await metering.start(supervisor)
    msg = message()
    metering.on_decision(msg, delivered(msg))
    assert sink.totals == {}
    assert metering.snapshot() == {}
    assert metering.stats()["queue_depth"] == 1
    assert await metering.flush()
    assert sum(t.messages for t in metering.snapshot().values()) == 1
    await metering.aclose()


async def test_a_batch_retried_after_its_write_landed_is_counted_once(
    supervisor: TaskSupervisor,
) -> None:
    sink = DictMeteringSink()
    sink.fail_after_apply = 1
    metering = Metering(sink, metering_settings())
    await metering.start(supervisor)
    msg = message()
    for _ in range(5):
        metering.on_decision(msg, delivered(msg))
    await metering.aclose()
    assert sink.totals == {
        UsageKey("acme", "planner", "command", "delivered"): UsageTotals(
            5, 5 * msg.payload_size_bytes
        )
    }
    assert len(sink.applied) == 1
    assert metering.stats()["sink_errors"] == 1


async def test_snapshot_keeps_a_bounded_number_of_keys(supervisor: TaskSupervisor) -> None:
    sink = DictMeteringSink()
    metering = Metering(sink, metering_settings(max_snapshot_keys=2))
    await metering.start(supervisor)
    for tenant in ("t1", "t2", "t3", "t4"):
        msg = message(tenant_id=tenant)
        metering.on_decision(msg, delivered(msg))
    await metering.aclose()
    assert len(metering.snapshot()) == 2
    assert len(sink.totals) == 4  # the sink still has every key
    assert metering.stats()["snapshot_overflow"] == 2


async def test_drops_are_counted_when_the_queue_is_full(supervisor: TaskSupervisor) -> None:
    sink = DictMeteringSink()
    metering = Metering(sink, metering_settings(queue_size=3))
    await metering.start(supervisor)
    msg = message()
    for _ in range(10):
        metering.on_decision(msg, delivered(msg))
    assert metering.stats()["dropped"] == 7
    await metering.aclose()
    assert sum(t.messages for t in sink.totals.values()) == 3
