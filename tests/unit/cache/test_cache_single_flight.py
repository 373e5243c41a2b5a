from __future__ import annotations

import asyncio

import pytest

from enhanced_agent_bus.cache import SingleFlight


async def test_concurrent_identical_calls_share_one_execution() -> None:
    flights: SingleFlight[bytes, str] = SingleFlight()
    release = asyncio.Event()
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "decision"

    tasks = [asyncio.ensure_future(flights.do(b"k", load)) for _ in range(100)]
    await asyncio.sleep(0)
    assert len(flights) == 1
    release.set()
    results = await asyncio.gather(*tasks)
    assert results == ["decision"] * 100
    assert calls == 1
    assert flights.stats() == {"leads": 1, "coalesced": 99, "in_flight": 0}


async def test_distinct_keys_run_separately() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    seen: list[str] = []

    async def load(key: str) -> str:
        seen.append(key)
        await asyncio.sleep(0)
        return key.upper()

    results = await asyncio.gather(
        *(flights.do(key, lambda key=key: load(key)) for key in ["a", "b", "a"])  # type: ignore[misc]
    )
    assert results == ["A", "B", "A"]
    assert sorted(seen) == ["a", "b"]


async def test_an_error_reaches_every_waiter_and_is_not_remembered() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    release = asyncio.Event()
    calls = 0

    async def broken() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        raise RuntimeError("engine down")

    tasks = [asyncio.ensure_future(flights.do("k", broken)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert calls == 1
    assert all(isinstance(result, RuntimeError) for result in results)

    async def fixed() -> str:
        return "ok"

    assert await flights.do("k", fixed) == "ok"


async def test_a_lone_failing_leader_leaves_no_unretrieved_future() -> None:
    flights: SingleFlight[str, str] = SingleFlight()

    async def broken() -> str:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        await flights.do("k", broken)
    assert len(flights) == 0


async def test_cancelled_leader_hands_over_to_a_waiter() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    leader_started = asyncio.Event()
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            leader_started.set()
            await asyncio.Event().wait()  # the first leader hangs until cancelled
        await asyncio.sleep(0)  # the new leader suspends, so the other waiters join it
        return "second try"

    leader = asyncio.ensure_future(flights.do("k", load))
    await leader_started.wait()
    waiters = [asyncio.ensure_future(flights.do("k", load)) for _ in range(3)]
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await asyncio.gather(*waiters) == ["second try"] * 3
    assert calls == 2


async def test_cancelled_waiter_does_not_disturb_the_others() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    release = asyncio.Event()

    async def load() -> str:
        await release.wait()
        return "v"

    leader = asyncio.ensure_future(flights.do("k", load))
    await asyncio.sleep(0)
    quitter = asyncio.ensure_future(flights.do("k", load))
    stayer = asyncio.ensure_future(flights.do("k", load))
    await asyncio.sleep(0)
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    release.set()
    assert await leader == "v"
    assert await stayer == "v"
