from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from enhanced_agent_bus.errors import BackendUnavailableError, ConfigurationError
from enhanced_agent_bus.resilience import (
    BreakerSettings,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
)


class BackendDown(Exception):
    pass


class NotFound(Exception):
    pass


def make(clock: Any, **kwargs: Any) -> CircuitBreaker:
    options: dict[str, Any] = {"failure_threshold": 3, "reset_timeout_s": 10.0}
    options.update(kwargs)
    return CircuitBreaker("backend", clock=clock, **options)


def state_of(breaker: CircuitBreaker) -> BreakerState:
    # A call, not the property, so that mypy does not narrow it between asserts.
    return breaker.state


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        permit = breaker.acquire()
        assert permit is not None
        breaker.record_failure(permit)


def test_opens_after_threshold_consecutive_failures(clock: Any) -> None:
    breaker = make(clock)
    fail(breaker, 2)
    assert state_of(breaker) is BreakerState.CLOSED
    fail(breaker, 1)
    assert state_of(breaker) is BreakerState.OPEN
    assert breaker.acquire() is None
    stats = breaker.stats()
    assert stats["state"] == 2
    assert stats["opened_total"] == 1
    assert stats["rejected_total"] == 1
    assert stats["failures_total"] == 3


def test_success_resets_the_consecutive_failure_count(clock: Any) -> None:
    breaker = make(clock)
    fail(breaker, 2)
    permit = breaker.acquire()
    assert permit is not None
    breaker.record_success(permit)
    fail(breaker, 2)
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.stats()["consecutive_failures"] == 2


def test_open_turns_half_open_after_reset_timeout_and_one_probe_closes(clock: Any) -> None:
    breaker = make(clock)
    fail(breaker, 3)
    clock.advance(9.999)
    assert breaker.acquire() is None
    assert breaker.retry_after_s() == pytest.approx(0.001)
    clock.advance(0.001)
    assert breaker.would_allow()
    probe = breaker.acquire()
    assert probe is not None
    assert state_of(breaker) is BreakerState.HALF_OPEN
    # Only one probe at a time by default.
    assert breaker.acquire() is None
    assert not breaker.would_allow()
    breaker.record_success(probe)
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.acquire() is not None


def test_failed_probe_reopens_for_a_full_timeout(clock: Any) -> None:
    breaker = make(clock)
    fail(breaker, 3)
    clock.advance(10)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record_failure(probe)
    assert state_of(breaker) is BreakerState.OPEN
    assert breaker.retry_after_s() == pytest.approx(10.0)
    assert breaker.stats()["opened_total"] == 2


def test_success_threshold_needs_several_probes(clock: Any) -> None:
    breaker = make(clock, success_threshold=2, half_open_max_calls=2)
    fail(breaker, 3)
    clock.advance(10)
    first, second = breaker.acquire(), breaker.acquire()
    assert first is not None
    assert second is not None
    assert breaker.acquire() is None
    breaker.record_success(first)
    assert state_of(breaker) is BreakerState.HALF_OPEN
    breaker.record_success(second)
    assert state_of(breaker) is BreakerState.CLOSED


def test_stale_results_from_an_older_state_change_nothing(clock: Any) -> None:
    breaker = make(clock)
    slow_call = breaker.acquire()  # admitted while closed
    assert slow_call is not None
    fail(breaker, 3)
    clock.advance(10)
    probe = breaker.acquire()
    assert probe is not None
    # The slow call admitted before the circuit opened reports now: ignored.
    breaker.record_success(slow_call)
    assert state_of(breaker) is BreakerState.HALF_OPEN
    breaker.record_success(probe)
    assert state_of(breaker) is BreakerState.CLOSED
    breaker.record_failure(slow_call)
    assert breaker.stats()["consecutive_failures"] == 0
    assert breaker.stats()["stale_results_total"] == 2


def test_release_frees_a_half_open_probe_slot(clock: Any) -> None:
    breaker = make(clock)
    fail(breaker, 3)
    clock.advance(10)
    probe = breaker.acquire()
    assert probe is not None
    assert breaker.acquire() is None
    breaker.release(probe)
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert breaker.acquire() is not None


def test_listeners_see_every_transition_and_a_broken_one_is_contained(
    clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = make(clock, failure_threshold=1)
    seen: list[tuple[str, BreakerState, BreakerState]] = []

    def broken(name: str, old: BreakerState, new: BreakerState) -> None:
        raise RuntimeError("observer bug")

    breaker.add_listener(broken)
    breaker.add_listener(lambda name, old, new: seen.append((name, old, new)))
    with caplog.at_level(logging.WARNING, logger="enhanced_agent_bus.resilience"):
        fail(breaker, 1)
        clock.advance(10)
        probe = breaker.acquire()
        assert probe is not None
        breaker.record_success(probe)
    assert seen == [
        ("backend", BreakerState.CLOSED, BreakerState.OPEN),
        ("backend", BreakerState.OPEN, BreakerState.HALF_OPEN),
        ("backend", BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]
    assert breaker.stats()["listener_errors_total"] == 3
    assert breaker.stats()["state_changes_total"] == 3
    assert any("opened" in record.getMessage() for record in caplog.records)


def test_reset_forces_closed(clock: Any) -> None:
    breaker = make(clock)
    fail(breaker, 3)
    breaker.reset()
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.acquire() is not None


async def test_call_counts_failures_and_refuses_while_open(clock: Any) -> None:
    breaker = make(clock, failure_threshold=2)
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise BackendDown("refused")

    for _ in range(2):
        with pytest.raises(BackendDown):
            await breaker.call(down)
    with pytest.raises(CircuitOpenError, match="'backend' is open") as info:
        await breaker.call(down)
    assert calls == 2
    assert isinstance(info.value, BackendUnavailableError)
    assert info.value.retry_after_s == pytest.approx(10.0)


async def test_call_returns_the_value_and_closes_a_half_open_circuit(clock: Any) -> None:
    breaker = make(clock, failure_threshold=1)

    async def up() -> str:
        return "pong"

    fail(breaker, 1)
    clock.advance(10)
    assert await breaker.call(up) == "pong"
    assert state_of(breaker) is BreakerState.CLOSED


async def test_call_with_is_failure_treats_business_errors_as_success(clock: Any) -> None:
    breaker = make(clock, failure_threshold=1, is_failure=lambda exc: not isinstance(exc, NotFound))

    async def missing() -> None:
        raise NotFound("no such key")

    for _ in range(3):
        with pytest.raises(NotFound):
            await breaker.call(missing)
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.stats()["successes_total"] == 3


async def test_cancelled_probe_gives_its_slot_back(clock: Any) -> None:
    breaker = make(clock, failure_threshold=1)
    fail(breaker, 1)
    clock.advance(10)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.get_running_loop().create_task(breaker.call(hang))
    await started.wait()
    assert breaker.acquire() is None  # the probe slot is taken
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert breaker.acquire() is not None


def test_from_settings_uses_every_field(clock: Any) -> None:
    settings = BreakerSettings(
        failure_threshold=2, reset_timeout_s=1.5, half_open_max_calls=2, success_threshold=2
    )
    breaker = CircuitBreaker.from_settings("redis", settings, clock=clock)
    fail(breaker, 2)
    assert state_of(breaker) is BreakerState.OPEN
    assert breaker.retry_after_s() == pytest.approx(1.5)
    clock.advance(1.5)
    first, second = breaker.acquire(), breaker.acquire()
    assert first is not None
    assert second is not None
    breaker.record_success(first)
    assert state_of(breaker) is BreakerState.HALF_OPEN


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"failure_threshold": 0}, "failure_threshold=0"),
        ({"half_open_max_calls": 0}, "half_open_max_calls=0"),
        ({"success_threshold": -1}, "success_threshold=-1"),
        ({"reset_timeout_s": 0.0}, "reset_timeout_s=0.0"),
    ],
)
def test_invalid_arguments_name_the_value(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        CircuitBreaker("x", **kwargs)


def test_settings_bounds_are_enforced() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        BreakerSettings(failure_threshold=0)
    with pytest.raises(ValueError, match="extra"):
        BreakerSettings(threshold=3)  # type: ignore[call-arg]
