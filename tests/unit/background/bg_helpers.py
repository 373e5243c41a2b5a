"""Helpers for the background tests: a sink with controllable failures, messages, polling.

``ControlledSink`` is a real ``BatchSink``: it stores what it is given. Tests
switch it to raise, hang or slow down, to exercise the worker's fault paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from enhanced_agent_bus.background import BatchingSettings, UsageDelta, UsageKey, UsageTotals
from enhanced_agent_bus.models import AgentMessage, DeliveryResult, DeliveryStatus, Reason

T = TypeVar("T")


class SinkDown(ConnectionError):
    """What ControlledSink raises while it is told to fail."""


class ControlledSink(Generic[T]):
    """Stores batches; can be told to fail, hang or be slow."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self.batches: list[list[T]] = []
        self.calls = 0
        self.fail_next = 0  # raise on the next N calls
        self.is_down = False  # raise on every call while True
        self.delay_s = 0.0  # sleep before storing
        self.hang: asyncio.Event | None = None  # when set to an unset Event: block until it is set
        self.started = asyncio.Event()  # set when a call begins

    async def write_batch(self, items: Sequence[T]) -> None:
        self.calls += 1
        self.started.set()
        if self.hang is not None:
            await self.hang.wait()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.is_down:
            raise SinkDown("sink is down")
        if self.fail_next > 0:
            self.fail_next -= 1
            raise SinkDown("sink failed once")
        self.batches.append(list(items))
        self.items.extend(items)


def fast_settings(**overrides: object) -> BatchingSettings:
    """Settings with tiny backoff so fault tests take milliseconds."""
    values: dict[str, object] = {
        "batch_size": 10,
        "flush_interval_ms": 5.0,
        "queue_size": 1000,
        "sink_timeout_s": 0.5,
        "max_retries": 2,
        "backoff_initial_s": 0.001,
        "backoff_max_s": 0.002,
        "retry_buffer_size": 1000,
    }
    values.update(overrides)
    return BatchingSettings.model_validate(values)


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll ``predicate`` (each poll yields to the loop) until true, or fail."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.001)


def message(
    n: int = 0,
    *,
    tenant_id: str = "acme",
    from_agent: str = "planner",
    to_agent: str = "coder",
    metadata: dict[str, str] | None = None,
    payload: dict[str, Any] | None = None,
) -> AgentMessage:
    return AgentMessage(
        from_agent=from_agent,
        to_agent=to_agent,
        tenant_id=tenant_id,
        payload=payload if payload is not None else {"task": f"job-{n}"},
        metadata=metadata or {},
        constitutional_hash="c" * 64,
    )


def delivered(msg: AgentMessage) -> DeliveryResult:
    return DeliveryResult(msg.message_id, DeliveryStatus.DELIVERED, recipient=msg.to_agent)


def denied(msg: AgentMessage, *codes: str) -> DeliveryResult:
    reasons = tuple(Reason("policy", code, f"denied by {code}") for code in codes)
    return DeliveryResult(msg.message_id, DeliveryStatus.DENIED, reasons, recipient=msg.to_agent)


class DictMeteringSink:
    """A real in-memory MeteringSink: totals in a dict, each batch id applied once."""

    def __init__(self) -> None:
        self.totals: dict[UsageKey, UsageTotals] = {}
        self.applied: list[str] = []
        self.is_open = False
        self.fail_after_apply = 0  # apply, then raise: a write whose answer was lost

    async def open(self) -> None:
        self.is_open = True

    async def add_usage(self, batch_id: str, deltas: Sequence[UsageDelta]) -> None:
        if batch_id not in self.applied:
            self.applied.append(batch_id)
            for key, count, size in deltas:
                current = self.totals.get(key, UsageTotals(0, 0))
                self.totals[key] = UsageTotals(
                    current.messages + count, current.payload_bytes + size
                )
        if self.fail_after_apply:
            self.fail_after_apply -= 1
            raise TimeoutError("the answer was lost")

    async def read_totals(self) -> dict[UsageKey, UsageTotals]:
        return dict(self.totals)

    async def aclose(self) -> None:
        self.is_open = False
