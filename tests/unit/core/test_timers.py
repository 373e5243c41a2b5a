"""The shared timer wheel: deadlines fire once, never early, and cancel cleanly."""

from __future__ import annotations

import asyncio
import time

import pytest

from enhanced_agent_bus.timers import TimerWheel


def test_resolution_must_be_positive() -> None:
    with pytest.raises(ValueError, match="resolution_s=0"):
        TimerWheel(resolution_s=0)


async def test_clock_is_the_running_loops_clock() -> None:
    wheel = TimerWheel()
    loop = asyncio.get_running_loop()
    before = loop.time()
    reading = wheel.clock()
    assert before <= reading <= loop.time()
    # asyncio's own loop reads time.monotonic(), so the wheel calls it directly.
    assert wheel.clock is time.monotonic


async def test_a_deadline_fires_once_not_before_its_delay() -> None:
    wheel = TimerWheel(resolution_s=0.005)
    fired: list[float] = []
    scheduled_at = wheel.clock()
    wheel.schedule(0.02, lambda: fired.append(wheel.clock()))
    assert len(wheel) == 1
    await asyncio.sleep(0.08)
    assert len(fired) == 1
    assert fired[0] - scheduled_at >= 0.02
    assert len(wheel) == 0


async def test_cancelled_deadlines_do_not_fire_and_others_in_the_tick_do() -> None:
    wheel = TimerWheel(resolution_s=0.01)
    fired: list[str] = []
    keep = wheel.schedule(0.01, fired.append, "kept")
    drop = wheel.schedule(0.01, fired.append, "dropped")
    assert keep[0] == drop[0]  # one tick, one loop timer
    wheel.cancel(drop)
    wheel.cancel(drop)  # twice is harmless
    await asyncio.sleep(0.05)
    assert fired == ["kept"]


async def test_a_failing_callback_does_not_stop_the_rest_of_its_tick(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wheel = TimerWheel(resolution_s=0.01)
    fired: list[int] = []

    def boom() -> None:
        raise RuntimeError("boom")

    wheel.schedule(0.01, boom)
    wheel.schedule(0.01, fired.append, 1)
    await asyncio.sleep(0.05)
    assert fired == [1]
    assert "timer callback" in caplog.text


async def test_close_drops_every_pending_deadline() -> None:
    wheel = TimerWheel(resolution_s=0.01)
    fired: list[int] = []
    wheel.schedule(0.01, fired.append, 1)
    wheel.close()
    assert len(wheel) == 0
    await asyncio.sleep(0.04)
    assert fired == []
