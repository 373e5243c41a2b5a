"""Properties of the audit chain and the batching worker, over generated inputs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enhanced_agent_bus.background import (
    AuditLog,
    AuditRecord,
    AuditSettings,
    BatchingSettings,
    BatchingWorker,
    verify_chain,
)
from enhanced_agent_bus.models import (
    AgentMessage,
    DeliveryResult,
    DeliveryStatus,
    MessageType,
    Reason,
)
from enhanced_agent_bus.tasks import TaskSupervisor
from enhanced_agent_bus.testing._audit import InMemoryAuditSink

_ids = st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True)
_events = st.lists(
    st.tuples(
        _ids,  # tenant
        _ids,  # sender
        st.sampled_from(list(MessageType)),
        st.sampled_from([DeliveryStatus.DELIVERED, DeliveryStatus.DENIED]),
        st.dictionaries(_ids, st.text(max_size=20), max_size=4),  # metadata
        st.dictionaries(_ids, st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10), max_size=3),
    ),
    min_size=2,
    max_size=40,
)


def build_log(events: Sequence[tuple[object, ...]]) -> list[AuditRecord]:
    async def run() -> list[AuditRecord]:
        sink = InMemoryAuditSink()
        supervisor = TaskSupervisor()
        audit = AuditLog(sink, AuditSettings(batch_size=7, flush_interval_ms=1))
        await audit.start(supervisor)
        for tenant, sender, mtype, status, metadata, payload in events:
            message = AgentMessage(
                from_agent=sender,
                to_agent="x",
                tenant_id=tenant,
                message_type=mtype,
                metadata=metadata,
                payload=payload,
            )
            reasons = (Reason("policy", "denied", "no"),) if status is DeliveryStatus.DENIED else ()
            audit.on_decision(message, DeliveryResult(message.message_id, status, reasons))  # type: ignore[arg-type]
        await audit.aclose()
        await supervisor.aclose()
        return sink.records

    return asyncio.run(run())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=_events, data=st.data())
def test_any_single_edit_deletion_or_swap_is_detected(
    events: list[tuple[object, ...]], data: st.DataObject
) -> None:
    records = build_log(events)
    assert len(records) == len(events)
    assert verify_chain(records).is_intact
    head = records[-1].hash
    n = len(records)
    operation = data.draw(st.sampled_from(["edit", "delete", "swap"]))
    i = data.draw(st.integers(0, n - 1))
    tampered = list(records)
    if operation == "edit":
        field = data.draw(st.sampled_from(["outcome", "tenant_id", "from_agent", "payload_bytes"]))
        value: Any = data.draw(st.integers(0, 10**6) if field == "payload_bytes" else _ids)
        if getattr(records[i], field) == value:
            return
        tampered[i] = records[i]._replace(**{field: value})
        expected_position = i
    elif operation == "delete":
        del tampered[i]
        expected_position = i
    else:
        j = data.draw(st.integers(0, n - 1).filter(lambda j: j != i))
        tampered[i], tampered[j] = tampered[j], tampered[i]
        expected_position = min(i, j)
    # The anchor (the head recorded after the run) also catches a deleted last record.
    report = verify_chain(tampered, anchor_hash=head)
    assert not report.is_intact
    assert report.first_break is not None
    assert report.first_break.position <= expected_position + (operation == "delete")


class FlakySink:
    def __init__(self) -> None:
        self.items: list[int] = []
        self.is_down = False

    async def write_batch(self, items: Sequence[int]) -> None:
        await asyncio.sleep(0)
        if self.is_down:
            raise ConnectionError("down")
        self.items.extend(items)


_steps = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.integers(1, 60)),
        st.tuples(st.just("down"), st.booleans()),
        st.tuples(st.just("yield"), st.integers(1, 5)),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(
    steps=_steps,
    queue_size=st.integers(1, 40),
    batch_size=st.integers(1, 15),
    max_batch_size=st.none() | st.integers(1, 40),
    retry_buffer_size=st.integers(0, 60),
)
def test_worker_accounts_for_every_item_and_keeps_order(
    steps: list[tuple[str, object]],
    queue_size: int,
    batch_size: int,
    max_batch_size: int | None,
    retry_buffer_size: int,
) -> None:
    settings = BatchingSettings(
        queue_size=queue_size,
        batch_size=batch_size,
        max_batch_size=max_batch_size,
        retry_buffer_size=retry_buffer_size,
        flush_interval_ms=0.5,
        max_retries=1,
        backoff_initial_s=0,
        backoff_max_s=0,
    )

    async def run() -> None:
        sink = FlakySink()
        worker = BatchingWorker(sink, settings, name="prop")
        supervisor = TaskSupervisor()
        worker.start(supervisor)
        accepted: list[int] = []
        next_item = 0
        for action, arg in steps:
            if action == "submit":
                for _ in range(int(arg)):  # type: ignore[call-overload]
                    if worker.submit(next_item):
                        accepted.append(next_item)
                    next_item += 1
            elif action == "down":
                sink.is_down = bool(arg)
            else:
                for _ in range(int(arg)):  # type: ignore[call-overload]
                    await asyncio.sleep(0)
        sink.is_down = False
        await worker.aclose()
        await supervisor.aclose()
        stats = worker.stats()
        assert stats["submitted"] == next_item
        assert stats["accepted"] == len(accepted)
        assert stats["dropped"] == next_item - len(accepted)
        assert stats["accepted"] == stats["written"] + stats["discarded"]
        assert stats["queue_depth"] == stats["retry_buffer_depth"] == stats["in_flight"] == 0
        # Written items are exactly the accepted ones minus the discarded, in order.
        assert len(sink.items) == stats["written"]
        assert sink.items == sorted(sink.items)
        assert set(sink.items) <= set(accepted)
        if retry_buffer_size >= settings.write_limit or stats["sink_errors"] == 0:
            assert stats["discarded"] == 0
            assert sink.items == accepted

    asyncio.run(run())
