"""What metrics, and audit + metering, add to send_message on a real AgentBus.

Run: .venv/bin/pytest benchmarks/bench_bus_overhead.py --benchmark-only -q -s \\
         --benchmark-json=/tmp/bench_bus_overhead.json
(``-s`` prints the table; the figures are also in the JSON's extra_info, next to
pytest-benchmark's machine and version info.)

Four buses run side by side in one process and one event loop, built from
settings alone (nothing attached by hand), on the default constitution (Rego
policy and constraints):

- ``full``: the defaults: metrics, audit and metering on;
- ``no-metrics``: ``observability.metrics_enabled=False``;
- ``no-audit-metering``: ``audit.enabled=False`` and ``metering.enabled=False``;
- ``bare``: all three off.

Each round sends one batch per bus, in an order that rotates every round, so
machine drift (frequency scaling, other load, GC) hits every configuration
alike. Two figures per batch, per send: ``send`` is the sends alone (what a
sender waits for); ``total`` adds draining the mailboxes and flushing audit and
metering to SQLite, so every bit of background work a batch caused is paid
inside its own round. Each overhead is reported two ways: the ratio of the two
medians, and the median of the per-round ratios (each round's batches ran
back to back, so this pairing cancels drift best; it is the headline figure).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from enhanced_agent_bus import AgentBus, AgentMessage, BusSettings
from enhanced_agent_bus.background import AuditSettings, MeteringSettings
from enhanced_agent_bus.observability import ObservabilitySettings

SENDS_PER_BATCH: Final = 200
WARMUP_ROUNDS: Final = 5
ROUNDS: Final = 150
CONFIGS: Final = ("full", "no-metrics", "no-audit-metering", "bare")


async def _handler(message: AgentMessage, context: Any) -> None:
    return None


def _settings(config: str, scratch: Path) -> BusSettings:
    database = scratch / f"{config}.sqlite3"
    background_on = config in ("full", "no-metrics")
    return BusSettings(
        audit=AuditSettings(enabled=background_on, sqlite_path=database),
        metering=MeteringSettings(enabled=background_on, sqlite_path=database),
        observability=ObservabilitySettings(
            metrics_enabled=config in ("full", "no-audit-metering")
        ),
    )


async def _start(config: str, scratch: Path) -> AgentBus:
    bus = AgentBus(_settings(config, scratch))
    await bus.start()
    await bus.register_agent("planner", _handler, tenant_id="acme", role="planner")
    await bus.register_agent("coder", _handler, tenant_id="acme", role="worker")
    return bus


async def _batch(bus: AgentBus, message: AgentMessage) -> tuple[float, float]:
    """(seconds per send for the sends alone, seconds per send incl. background work)."""
    started = time.perf_counter()
    for _ in range(SENDS_PER_BATCH):
        await bus.send_message(message)
    sent = time.perf_counter()
    while bus.stats()["bus"]["mailbox_depth"]:
        await asyncio.sleep(0)
    if bus.audit is not None:
        await bus.audit.flush()
    if bus.metering is not None:
        await bus.metering.flush()
    done = time.perf_counter()
    return (sent - started) / SENDS_PER_BATCH, (done - started) / SENDS_PER_BATCH


@pytest.fixture
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-bus-overhead-") as path:
        yield Path(path)


def _median_us(samples: list[tuple[float, float]], index: int) -> float:
    return statistics.median(sample[index] for sample in samples) * 1e6


def test_send_message_overhead_of_metrics_and_audit_metering(
    benchmark: BenchmarkFixture, scratch: Path
) -> None:
    """Interleaved rounds on four buses; extra_info holds the medians and the overheads."""
    with asyncio.Runner() as runner:
        buses = {config: runner.run(_start(config, scratch)) for config in CONFIGS}
        messages = {
            config: bus.message("planner", "coder", {"task": "write tests", "files": ["a.py"]})
            for config, bus in buses.items()
        }
        samples: dict[str, list[tuple[float, float]]] = {config: [] for config in CONFIGS}
        order = list(CONFIGS)

        def one_round() -> None:
            for config in order:
                samples[config].append(runner.run(_batch(buses[config], messages[config])))
            order.append(order.pop(0))  # rotate: no configuration always goes first

        try:
            for _ in range(WARMUP_ROUNDS):
                one_round()
            for config_samples in samples.values():
                config_samples.clear()
            benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)  # type: ignore[no-untyped-call]
            stats = {config: bus.stats() for config, bus in buses.items()}
        finally:
            for bus in buses.values():
                runner.run(bus.stop())

    figures: dict[str, float] = {}
    for config in CONFIGS:
        figures[f"{config}_send_us"] = round(_median_us(samples[config], 0), 3)
        figures[f"{config}_total_us"] = round(_median_us(samples[config], 1), 3)
    # (label, key, bus with it, bus without it): on top of the rest, then each alone.
    comparisons = (
        ("metrics on/off", "metrics", "full", "no-metrics"),
        ("audit+metering on/off", "audit_metering", "full", "no-audit-metering"),
        ("everything on/off", "all", "full", "bare"),
        ("metrics alone", "metrics_alone", "no-audit-metering", "bare"),
        ("audit+metering alone", "audit_metering_alone", "no-metrics", "bare"),
    )
    for _, key, with_it, without in comparisons:
        for index, what in ((0, "send"), (1, "total")):
            figures[f"{key}_{what}_ratio_of_medians"] = round(
                figures[f"{with_it}_{what}_us"] / figures[f"{without}_{what}_us"], 4
            )
            figures[f"{key}_{what}_median_ratio"] = round(
                statistics.median(
                    on[index] / off[index]
                    for on, off in zip(samples[with_it], samples[without], strict=True)
                ),
                4,
            )
    benchmark.extra_info.update(figures, sends_per_batch=SENDS_PER_BATCH, rounds=ROUNDS)

    lines = [f"\n{'config':<20}{'send µs':>10}{'total µs':>10}   (medians of {ROUNDS} rounds)"]
    lines += [
        f"{c:<20}{figures[f'{c}_send_us']:>10.2f}{figures[f'{c}_total_us']:>10.2f}" for c in CONFIGS
    ]
    lines.append("overhead (median per-round ratio; ratio of medians)")
    for label, key, _, _ in comparisons:
        lines.append(
            f"  {label:<22} send x{figures[f'{key}_send_median_ratio']:.3f} "
            f"(x{figures[f'{key}_send_ratio_of_medians']:.3f})  "
            f"total x{figures[f'{key}_total_median_ratio']:.3f} "
            f"(x{figures[f'{key}_total_ratio_of_medians']:.3f})"
        )
    print("\n".join(lines))

    sent = SENDS_PER_BATCH * (WARMUP_ROUNDS + ROUNDS)
    for config in CONFIGS:  # every send was delivered: no configuration measured denials
        assert stats[config]["bus"]["delivered_total"] == sent, config
    assert "audit" in stats["full"]
    assert "audit" not in stats["no-audit-metering"]
    assert stats["full"]["audit"]["dropped"] == 0
