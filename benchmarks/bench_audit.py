"""Audit and metering: hot-path cost, SQLite throughput, and send_message overhead.

Run: .venv/bin/pytest benchmarks/bench_audit.py --benchmark-only -q -s
(``-s`` prints the records/s and overhead lines; they are also in each JSON's extra_info.)

- ``on_decision`` is what ``send_message`` pays per decision for audit / metering.
- SQLite throughput: sealed records written by ``SQLiteAuditSink`` (the sink alone),
  and end to end (``AuditLog``: enqueue, build, hash-chain, write, in batches).
- send_message overhead: interleaved A/B rounds on a bus without and a bus with
  ``AuditLog`` + ``Metering`` (SQLite) attached as observers. Two figures per
  round: the sends alone (what a sender waits for), and the sends plus draining
  the mailboxes and flushing both sinks (every bit of background work paid
  inside the round, with nothing overlapping it: the pessimistic bound).
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from enhanced_agent_bus.background import (
    AuditLog,
    AuditRecord,
    AuditSettings,
    Metering,
    MeteringSettings,
    SQLiteAuditSink,
    SQLiteMeteringSink,
)
from enhanced_agent_bus.models import AgentMessage, DeliveryResult, DeliveryStatus, MessageType
from enhanced_agent_bus.tasks import TaskSupervisor
from enhanced_agent_bus.testing._audit import InMemoryAuditSink

RECORDS = 50_000


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as path:
        yield Path(path)


def _messages(count: int) -> list[AgentMessage]:
    return [
        AgentMessage(
            from_agent="planner",
            to_agent="coder",
            tenant_id="acme",
            message_type=MessageType.COMMAND,
            payload={"task": "write tests", "files": ["a.py", "b.py"], "n": n},
            metadata={"trace_id": f"t-{n}", "authorization": "Bearer x"},
            constitutional_hash="c" * 64,
        )
        for n in range(count)
    ]


def _result(message: AgentMessage) -> DeliveryResult:
    return DeliveryResult(message.message_id, DeliveryStatus.DELIVERED, (), 42.0, "coder")


# --- hot path -----------------------------------------------------------------------------


def test_audit_on_decision(benchmark: BenchmarkFixture) -> None:
    audit = AuditLog(InMemoryAuditSink(), AuditSettings(queue_size=10_000_000))
    message = _messages(1)[0]
    result = _result(message)
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        audit.on_decision, args=(message, result), iterations=1_000, rounds=200, warmup_rounds=5
    )
    assert audit.stats()["dropped"] == 0


def test_metering_on_decision(benchmark: BenchmarkFixture, workdir: Path) -> None:
    metering = Metering(
        SQLiteMeteringSink(workdir / "m.sqlite3"), MeteringSettings(queue_size=10_000_000)
    )
    message = _messages(1)[0]
    result = _result(message)
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        metering.on_decision,
        args=(message, result),
        iterations=1_000,
        rounds=200,
        warmup_rounds=5,
    )
    assert metering.stats()["dropped"] == 0


# --- SQLite throughput ----------------------------------------------------------------------


def _sealed_records(count: int) -> list[AuditRecord]:
    async def build() -> list[AuditRecord]:
        sink = InMemoryAuditSink()
        audit = AuditLog(sink, AuditSettings(queue_size=count, batch_size=1000))
        for message in _messages(count):
            audit.on_decision(message, _result(message))
        await audit.aclose()
        return sink.records

    return asyncio.run(build())


def _best_rate(benchmark: BenchmarkFixture, run: Callable[[], Coroutine[Any, Any, None]]) -> float:
    """Records/s of the fastest of five runs (each run in a fresh event loop and file)."""
    seconds: list[float] = []

    def one_run() -> None:
        started = time.perf_counter()
        asyncio.run(run())
        seconds.append(time.perf_counter() - started)

    benchmark.pedantic(one_run, rounds=5, iterations=1)  # type: ignore[no-untyped-call]
    return RECORDS / min(seconds)


@pytest.mark.parametrize("batch_size", [100, 1000])
def test_sqlite_sink_records_per_second(
    benchmark: BenchmarkFixture, workdir: Path, batch_size: int
) -> None:
    records = _sealed_records(RECORDS)
    counter = itertools.count()

    async def write_all() -> None:
        sink = SQLiteAuditSink(workdir / f"sink-{next(counter)}.sqlite3")
        await sink.open()
        for start in range(0, len(records), batch_size):
            await sink.write_batch(records[start : start + batch_size])
        await sink.aclose()

    rate = _best_rate(benchmark, write_all)
    benchmark.extra_info.update(records=RECORDS, batch_size=batch_size, records_per_s=int(rate))
    print(f"\nSQLiteAuditSink alone, batch {batch_size}: {rate:,.0f} records/s (best of 5)")


@pytest.mark.parametrize("batch_size", [100, 1000])
def test_audit_log_end_to_end_records_per_second(
    benchmark: BenchmarkFixture, workdir: Path, batch_size: int
) -> None:
    messages = _messages(1000)
    results = [_result(message) for message in messages]
    counter = itertools.count()

    async def run() -> None:
        supervisor = TaskSupervisor()
        audit = AuditLog(
            SQLiteAuditSink(workdir / f"e2e-{next(counter)}.sqlite3"),
            AuditSettings(queue_size=RECORDS, batch_size=batch_size, max_batch_size=batch_size),
        )
        await audit.start(supervisor)
        for n in range(RECORDS):
            audit.on_decision(messages[n % 1000], results[n % 1000])
        await audit.aclose()
        await supervisor.aclose()
        assert audit.stats()["written"] == RECORDS

    rate = _best_rate(benchmark, run)
    benchmark.extra_info.update(records=RECORDS, batch_size=batch_size, records_per_s=int(rate))
    print(f"\nAuditLog -> SQLite end to end, batch {batch_size}: {rate:,.0f} records/s (best of 5)")


# The send_message A/B against a bus without this feature is in bench_bus_overhead.py
# (all four combinations on one loop, interleaved); `agent-bus bench` reports it too.
