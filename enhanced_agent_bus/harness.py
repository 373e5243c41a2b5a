"""The load harness behind ``agent-bus bench``: the bus against a plain-asyncio floor, in one run.

Machines are noisy, so absolute numbers drift; what is comparable across runs
is the *ratio* of each bus scenario to the floor, measured in the same process
in interleaved rounds (a block of floor requests, then a block of bus requests,
and so on) and reported as the median of the per-round ratios. Every scenario
reports msgs/s and p50/p99/p99.9 latency (µs).

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
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from .bus import AgentBus
from .constitution import load_bundle
from .context import AgentContext
from .models import AgentMessage, DeliveryResult, MessageType
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


async def _sequential(n: int, op: Callable[[], Awaitable[Any]]) -> tuple[list[int], int]:
    """Latencies (ns) of ``n`` awaits of ``op`` one after another, and the total ns."""
    gc.collect()
    latencies = [0] * n
    clock = time.perf_counter_ns
    began = clock()
    for i in range(n):
        t0 = clock()
        await op()
        latencies[i] = clock() - t0
    return latencies, clock() - began


async def _concurrent(
    n: int, senders: int, op: Callable[[], Awaitable[Any]]
) -> tuple[list[int], int]:
    """Latencies (ns) of ``n`` awaits of ``op`` spread over ``senders`` tasks, and the total ns."""
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

    gc.collect()
    began = clock()
    async with asyncio.TaskGroup() as group:
        for index in range(senders):
            group.create_task(sender(), name=f"bench-sender-{index}")
    return [x for part in results for x in part], clock() - began


async def _warm_up(n: int, op: Callable[[], Awaitable[Any]]) -> None:
    for _ in range(min(1000, n)):
        await op()


class _Tally:
    """One scenario's latencies and time, summed over the rounds it ran in."""

    __slots__ = ("latencies", "ns")

    def __init__(self) -> None:
        self.latencies: list[int] = []
        self.ns = 0

    def add(self, measured: tuple[list[int], int]) -> None:
        self.latencies.extend(measured[0])
        self.ns += measured[1]

    def result(self, name: str) -> ScenarioResult:
        return _summarize(name, self.latencies, self.ns / 1e9)


def _middle_half(values: list[float]) -> tuple[float, float]:
    """The first and third quartiles of ``values`` (both the value itself for one round)."""
    if len(values) < 2:
        return values[0], values[0]
    quartiles = statistics.quantiles(values, n=4, method="inclusive")
    return quartiles[0], quartiles[2]


def _rate(measured: tuple[list[int], int]) -> float:
    return len(measured[0]) / measured[1] if measured[1] else 0.0


def _p99(measured: tuple[list[int], int]) -> float:
    return _percentile(sorted(measured[0]), 0.99)


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


#: Bus configurations measured, each against the floor of the same run.
#: ``core``: admission + constitutional hash + tenant isolation only (no Rego modules
#: in the bundle, no audit/metering/metrics) — issue #2's pipeline.
#: ``full``: the default constitution's Rego policy behind the decision cache, audit and
#: metering to SQLite, Prometheus metrics — what ``AgentBus()`` runs. The ``full-no-*``
#: profiles show what each feature costs a request. (The with/without overhead of a
#: feature on ``send_message`` is measured bus against bus, interleaved, in
#: ``benchmarks/bench_bus_overhead.py``: profiles here are each interleaved with the
#: floor, not with each other, and run seconds apart.)
PROFILES: Final = ("core", "full", "full-no-metrics", "full-no-audit")


def _profile_settings(base: BusSettings, profile: str, scratch: Path) -> BusSettings:
    update: dict[str, Any] = {
        "mailbox": MailboxSettings(maxsize=10_000),
        "audit": base.audit.model_copy(update={"sqlite_path": scratch / f"{profile}.sqlite3"}),
        "metering": base.metering.model_copy(
            update={"sqlite_path": scratch / f"{profile}.sqlite3"}
        ),
    }
    if profile == "core":
        core_bundle = scratch / "core-bundle"
        if not core_bundle.exists():
            core_bundle.mkdir()
            (core_bundle / "data.json").write_bytes(
                load_bundle(base.constitution_path).files["data.json"]
            )
        update["constitution_path"] = core_bundle
        update["audit"] = update["audit"].model_copy(update={"enabled": False})
        update["metering"] = update["metering"].model_copy(update={"enabled": False})
        update["observability"] = base.observability.model_copy(update={"metrics_enabled": False})
    elif profile == "full-no-metrics":
        update["observability"] = base.observability.model_copy(update={"metrics_enabled": False})
    elif profile == "full-no-audit":
        update["audit"] = update["audit"].model_copy(update={"enabled": False})
        update["metering"] = update["metering"].model_copy(update={"enabled": False})
    return base.model_copy(update=update)


async def _profile_run(
    settings: BusSettings,
    profile: str,
    floor: _QueueFloor,
    floor_tallies: tuple[_Tally, _Tally],
    n: int,
    senders: int,
    rounds: int,
) -> tuple[list[ScenarioResult], list[str], list[dict[str, float]]]:
    """One profile's bus beside the floor on one loop, their request blocks interleaved."""
    results: list[ScenarioResult] = []
    async with AgentBus(settings) as bus:
        await bus.register_agent("planner", _echo, tenant_id="bench", role="planner")
        await bus.register_agent("worker", _echo, tenant_id="bench", role="worker")
        command = bus.message("planner", "worker", PAYLOAD)
        query = bus.message("planner", "worker", PAYLOAD, message_type=MessageType.QUERY)

        async def build() -> AgentMessage:
            return bus.message("planner", "worker", PAYLOAD)

        async def send() -> DeliveryResult:
            return await bus.send_message(command)

        for name, op in (("bus.message (build)", build), ("send_message", send)):
            await _warm_up(n, op)
            tally = _Tally()
            tally.add(await _sequential(n, op))
            results.append(tally.result(f"{profile}: {name}"))
        # Let the worker catch up so the request scenarios start from empty mailboxes.
        while bus.stats()["bus"]["mailbox_depth"]:
            await asyncio.sleep(0.01)

        def bus_request() -> Awaitable[AgentMessage]:
            return bus.request(query)

        def floor_request() -> Awaitable[dict[str, Any]]:
            return floor.request(query)

        await _warm_up(n, bus_request)
        await _warm_up(n, floor_request)
        block = max(senders, n // rounds)

        async def settle() -> None:
            # Write what audit and metering hold before a block starts, so neither side
            # measures the other's background writes.
            for observer in (bus.audit, bus.metering):
                if observer is not None:
                    await observer.flush()

        async def run_sequential(op: Callable[[], Awaitable[Any]]) -> tuple[list[int], int]:
            await settle()
            return await _sequential(block, op)

        async def run_concurrent(op: Callable[[], Awaitable[Any]]) -> tuple[list[int], int]:
            await settle()
            return await _concurrent(block, senders, op)

        seq, conc = _Tally(), _Tally()
        ratios: list[dict[str, float]] = []
        for index in range(rounds):
            # Floor and bus take turns going first, so a drift in machine speed
            # during a round weighs on both.
            pairs = []
            for run in (run_sequential, run_concurrent):
                if index % 2 == 0:
                    floor_measured = await run(floor_request)
                    bus_measured = await run(bus_request)
                else:
                    bus_measured = await run(bus_request)
                    floor_measured = await run(floor_request)
                pairs.append((floor_measured, bus_measured))
            (floor_seq, bus_seq), (floor_conc, bus_conc) = pairs
            floor_tallies[0].add(floor_seq)
            floor_tallies[1].add(floor_conc)
            seq.add(bus_seq)
            conc.add(bus_conc)
            ratios.append(
                {
                    f"{profile}: request msgs/s vs queue floor": _rate(bus_seq) / _rate(floor_seq),
                    f"{profile}: request x{senders} p99 vs queue floor p99": _p99(bus_conc)
                    / _p99(floor_conc),
                }
            )
        results.append(seq.result(f"{profile}: request"))
        results.append(conc.result(f"{profile}: request x{senders}"))
        stages = list(bus.pipeline_stages)
    return results, stages, ratios


async def run_harness(
    n: int = 20_000,
    senders: int = 100,
    settings: BusSettings | None = None,
    profiles: tuple[str, ...] = PROFILES,
    rounds: int = 10,
) -> dict[str, Any]:
    """Run the floor and every bus profile in this process; ratios are interleaved A/B.

    For each profile a bus runs beside the queue floor on the same loop, and
    ``rounds`` times a block of ``n / rounds`` requests goes to each, one after
    the other (sequential, then with ``senders`` concurrent senders). Each round
    yields its own bus/floor ratios; the reported ratio is their median, so a
    burst of noise from the rest of the machine skews one round, not the figure.
    Scenario rows sum every round's latencies.

    Raises:
        ValueError: an unknown profile name, or ``rounds < 1``.
    """
    unknown = [p for p in profiles if p not in PROFILES]
    if unknown:
        raise ValueError(f"unknown profiles {unknown!r}; choose from {list(PROFILES)!r}")
    if rounds < 1:
        raise ValueError(f"rounds={rounds!r} must be at least 1")
    base = settings or BusSettings()
    query = AgentMessage(
        from_agent="planner", to_agent="worker", tenant_id="bench", payload=PAYLOAD
    )
    direct = _Tally()

    async def direct_call() -> dict[str, Any]:
        return await _echo(query, None)

    await _warm_up(n, direct_call)
    direct.add(await _sequential(n, direct_call))
    floor = _QueueFloor()
    floor_tallies = (_Tally(), _Tally())
    bus_results: list[ScenarioResult] = []
    pipelines: dict[str, list[str]] = {}
    round_ratios: list[dict[str, float]] = [{} for _ in range(rounds)]
    worker = asyncio.get_running_loop().create_task(floor.worker(), name="bench-floor")
    try:
        with tempfile.TemporaryDirectory(prefix="agentbus-bench-") as scratch:
            for profile in profiles:
                profile_results, pipelines[profile], profile_ratios = await _profile_run(
                    _profile_settings(base, profile, Path(scratch)),
                    profile,
                    floor,
                    floor_tallies,
                    n,
                    senders,
                    rounds,
                )
                bus_results.extend(profile_results)
                for merged, measured in zip(round_ratios, profile_ratios, strict=True):
                    merged.update(measured)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    scenarios = [
        direct.result("floor.direct"),
        floor_tallies[0].result("floor.queue"),
        floor_tallies[1].result(f"floor.queue x{senders}"),
        *bus_results,
    ]
    ratios = {key: statistics.median(r[key] for r in round_ratios) for key in round_ratios[0]}
    spreads = {key: _middle_half([r[key] for r in round_ratios]) for key in round_ratios[0]}
    return {
        "machine": {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loop": type(asyncio.get_running_loop()).__name__,
        },
        "pipelines": pipelines,
        "operations": n,
        "senders": senders,
        "rounds": rounds,
        "scenarios": [asdict(r) for r in scenarios],
        "ratios": ratios,
        #: The interquartile range of each ratio over the rounds: how much a round moves.
        "ratio_middle_half": spreads,
        "ratios_per_round": round_ratios,
    }
