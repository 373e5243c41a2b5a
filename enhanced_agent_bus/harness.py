"""The load harness behind ``agent-bus bench``: the bus against a plain-asyncio floor, in one run.

Machines are noisy, so absolute numbers drift; what is comparable across runs
is the *ratio* of each bus scenario to the floor measured in the same process
a moment earlier. Every scenario reports msgs/s and p50/p99/p99.9 latency (µs).

Floors:
- ``floor.direct``: ``await handler(message, None)`` — the cost of a coroutine call.
- ``floor.queue``: an ``asyncio.Queue`` + one worker task + a future per request —
  the least any mailbox-based request/reply can cost.

Bus scenarios use the full pipeline as configured (``AgentBus(settings)``) with
pre-built messages (building a message is the caller's cost, measured separately
in ``bus.message``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from .bus import AgentBus
from .context import AgentContext
from .models import AgentMessage, MessageType
from .settings import BusSettings, MailboxSettings

PAYLOAD = {"task": "write tests", "priority": 3, "tags": ["unit", "fast"]}


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    operations: int
    seconds: float
    msgs_per_s: float
    p50_us: float
    p99_us: float
    p999_us: float


def _percentile(sorted_ns: list[int], fraction: float) -> float:
    if not sorted_ns:
        return 0.0
    index = min(len(sorted_ns) - 1, int(fraction * len(sorted_ns)))
    return sorted_ns[index] / 1000.0


def _summarize(name: str, latencies_ns: list[int], seconds: float) -> ScenarioResult:
    latencies_ns.sort()
    return ScenarioResult(
        name=name,
        operations=len(latencies_ns),
        seconds=seconds,
        msgs_per_s=len(latencies_ns) / seconds if seconds > 0 else 0.0,
        p50_us=_percentile(latencies_ns, 0.50),
        p99_us=_percentile(latencies_ns, 0.99),
        p999_us=_percentile(latencies_ns, 0.999),
    )


async def _sequential(name: str, n: int, op: Callable[[], Awaitable[Any]]) -> ScenarioResult:
    for _ in range(min(1000, n)):
        await op()
    gc.collect()
    latencies = [0] * n
    clock = time.perf_counter_ns
    began = clock()
    for i in range(n):
        t0 = clock()
        await op()
        latencies[i] = clock() - t0
    return _summarize(name, latencies, (clock() - began) / 1e9)


async def _concurrent(
    name: str, n: int, senders: int, op: Callable[[], Awaitable[Any]]
) -> ScenarioResult:
    per_sender = max(1, n // senders)
    clock = time.perf_counter_ns
    results: list[list[int]] = []

    async def sender() -> None:
        mine = [0] * per_sender
        for i in range(per_sender):
            t0 = clock()
            await op()
            mine[i] = clock() - t0
        results.append(mine)

    for _ in range(min(1000, n)):
        await op()
    gc.collect()
    began = clock()
    async with asyncio.TaskGroup() as group:
        for index in range(senders):
            group.create_task(sender(), name=f"bench-sender-{index}")
    seconds = (clock() - began) / 1e9
    return _summarize(name, [x for part in results for x in part], seconds)


async def _echo(message: AgentMessage, context: AgentContext | None) -> dict[str, Any]:
    return {"ok": True}


class _QueueFloor:
    """The plain-asyncio baseline: one bounded queue, one worker, a future per request."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[AgentMessage, asyncio.Future[dict[str, Any]]]] = (
            asyncio.Queue(maxsize=10_000)
        )

    async def worker(self) -> None:
        while True:
            message, future = await self.queue.get()
            future.set_result(await _echo(message, None))

    async def request(self, message: AgentMessage) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        await self.queue.put((message, future))
        return await future


async def run_harness(
    n: int = 20_000, senders: int = 100, settings: BusSettings | None = None
) -> dict[str, Any]:
    """Run every scenario once, in this process, and return results plus ratios."""
    settings = settings or BusSettings(mailbox=MailboxSettings(maxsize=10_000))
    results: list[ScenarioResult] = []
    async with AgentBus(settings) as bus:
        await bus.register_agent("planner", _echo, tenant_id="bench", role="planner")
        await bus.register_agent("worker", _echo, tenant_id="bench", role="worker")
        command = bus.message("planner", "worker", PAYLOAD)
        query = bus.message("planner", "worker", PAYLOAD, message_type=MessageType.QUERY)

        results.append(await _sequential("floor.direct", n, lambda: _echo(query, None)))
        floor = _QueueFloor()
        worker = asyncio.get_running_loop().create_task(floor.worker(), name="bench-floor")
        try:
            results.append(await _sequential("floor.queue", n, lambda: floor.request(query)))
            results.append(
                await _concurrent(
                    f"floor.queue x{senders}", n, senders, lambda: floor.request(query)
                )
            )
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

        async def build() -> AgentMessage:
            return bus.message("planner", "worker", PAYLOAD)

        results.append(await _sequential("bus.message (build)", n, build))
        results.append(await _sequential("bus.send_message", n, lambda: bus.send_message(command)))
        # Let the worker catch up so the request scenarios start from empty mailboxes.
        while bus.stats()["bus"]["mailbox_depth"]:
            await asyncio.sleep(0.01)
        results.append(await _sequential("bus.request", n, lambda: bus.request(query)))
        results.append(
            await _concurrent(f"bus.request x{senders}", n, senders, lambda: bus.request(query))
        )
        pipeline = list(bus.pipeline_stages)
    by_name = {r.name: r for r in results}
    floor_seq = by_name["floor.queue"]
    floor_conc = by_name[f"floor.queue x{senders}"]
    bus_seq = by_name["bus.request"]
    bus_conc = by_name[f"bus.request x{senders}"]
    return {
        "machine": {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loop": type(asyncio.get_running_loop()).__name__,
        },
        "pipeline": pipeline,
        "operations": n,
        "senders": senders,
        "scenarios": [asdict(r) for r in results],
        "ratios": {
            "request_throughput_vs_queue_floor": bus_seq.msgs_per_s / floor_seq.msgs_per_s,
            "request_p99_vs_queue_floor_concurrent": bus_conc.p99_us / floor_conc.p99_us,
            "request_p50_vs_queue_floor": bus_seq.p50_us / floor_seq.p50_us,
        },
    }
