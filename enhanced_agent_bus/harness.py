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


#: Bus configurations measured, each against the floor of the same run.
#: ``core``: admission + constitutional hash + tenant isolation only (no Rego modules
#: in the bundle, no audit/metering/metrics) — issue #2's pipeline.
#: ``full``: the default constitution's Rego policy behind the decision cache, audit and
#: metering to SQLite, Prometheus metrics — what ``AgentBus()`` runs. The ``full-no-*``
#: profiles show what each feature costs a request. (The with/without overhead of a
#: feature on ``send_message`` is measured interleaved, round by round, in
#: ``benchmarks/bench_bus_overhead.py``: profiles here run seconds apart, and this
#: machine's speed drifts more than the few per cent being measured.)
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


async def _floor(n: int, senders: int) -> list[ScenarioResult]:
    query = AgentMessage(
        from_agent="planner", to_agent="worker", tenant_id="bench", payload=PAYLOAD
    )
    results = [await _sequential("floor.direct", n, lambda: _echo(query, None))]
    floor = _QueueFloor()
    worker = asyncio.get_running_loop().create_task(floor.worker(), name="bench-floor")
    try:
        results.append(await _sequential("floor.queue", n, lambda: floor.request(query)))
        results.append(
            await _concurrent(f"floor.queue x{senders}", n, senders, lambda: floor.request(query))
        )
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    return results


async def _bus_scenarios(
    settings: BusSettings, profile: str, n: int, senders: int
) -> tuple[list[ScenarioResult], list[str]]:
    results: list[ScenarioResult] = []
    async with AgentBus(settings) as bus:
        await bus.register_agent("planner", _echo, tenant_id="bench", role="planner")
        await bus.register_agent("worker", _echo, tenant_id="bench", role="worker")
        command = bus.message("planner", "worker", PAYLOAD)
        query = bus.message("planner", "worker", PAYLOAD, message_type=MessageType.QUERY)

        async def build() -> AgentMessage:
            return bus.message("planner", "worker", PAYLOAD)

        results.append(await _sequential(f"{profile}: bus.message (build)", n, build))
        results.append(
            await _sequential(f"{profile}: send_message", n, lambda: bus.send_message(command))
        )
        # Let the worker catch up so the request scenarios start from empty mailboxes.
        while bus.stats()["bus"]["mailbox_depth"]:
            await asyncio.sleep(0.01)
        results.append(await _sequential(f"{profile}: request", n, lambda: bus.request(query)))
        results.append(
            await _concurrent(
                f"{profile}: request x{senders}", n, senders, lambda: bus.request(query)
            )
        )
        stages = list(bus.pipeline_stages)
    return results, stages


def _round_ratios(
    by_name: dict[str, ScenarioResult], profiles: tuple[str, ...], senders: int
) -> dict[str, float]:
    floor_seq = by_name["floor.queue"]
    floor_conc = by_name[f"floor.queue x{senders}"]
    ratios: dict[str, float] = {}
    for profile in profiles:
        seq = by_name[f"{profile}: request"]
        conc = by_name[f"{profile}: request x{senders}"]
        ratios[f"{profile}: request msgs/s vs queue floor"] = seq.msgs_per_s / floor_seq.msgs_per_s
        ratios[f"{profile}: request x{senders} p99 vs queue floor p99"] = (
            conc.p99_us / floor_conc.p99_us
        )
    return ratios


def _median_result(name: str, rounds: list[ScenarioResult]) -> ScenarioResult:
    """The round with the median throughput (so its latencies belong to one real run)."""
    ordered = sorted(rounds, key=lambda r: r.msgs_per_s)
    return ordered[len(ordered) // 2]


async def run_harness(
    n: int = 20_000,
    senders: int = 100,
    settings: BusSettings | None = None,
    profiles: tuple[str, ...] = PROFILES,
    rounds: int = 3,
) -> dict[str, Any]:
    """Run the floor and every bus profile ``rounds`` times in this process.

    Each round measures the floor and then the bus, and its ratios compare them
    within that round; the reported ratio is the median over rounds, so a burst
    of noise from the rest of the machine skews one round, not the figure.

    Raises:
        ValueError: an unknown profile name, or ``rounds < 1``.
    """
    unknown = [p for p in profiles if p not in PROFILES]
    if unknown:
        raise ValueError(f"unknown profiles {unknown!r}; choose from {list(PROFILES)!r}")
    if rounds < 1:
        raise ValueError(f"rounds={rounds!r} must be at least 1")
    base = settings or BusSettings()
    per_round: list[dict[str, ScenarioResult]] = []
    round_ratios: list[dict[str, float]] = []
    pipelines: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="agentbus-bench-") as scratch:
        for _ in range(rounds):
            results = await _floor(n, senders)
            for profile in profiles:
                profile_settings = _profile_settings(base, profile, Path(scratch))
                scenario_results, pipelines[profile] = await _bus_scenarios(
                    profile_settings, profile, n, senders
                )
                results.extend(scenario_results)
            by_name = {r.name: r for r in results}
            per_round.append(by_name)
            round_ratios.append(_round_ratios(by_name, profiles, senders))
    names = list(per_round[0])
    scenarios = [_median_result(name, [r[name] for r in per_round]) for name in names]
    ratios = {key: statistics.median(r[key] for r in round_ratios) for key in round_ratios[0]}
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
        "ratios_per_round": round_ratios,
    }
