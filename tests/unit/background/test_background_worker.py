"""BatchingWorker: batching, drops, retries, timeouts, retry buffer, clean stop."""

from __future__ import annotations

import asyncio

import pytest
from bg_helpers import ControlledSink, fast_settings, wait_until
from pydantic import ValidationError

from enhanced_agent_bus.background import BatchingSettings, BatchingWorker, WorkerState
from enhanced_agent_bus.errors import BusStateError
from enhanced_agent_bus.tasks import TaskSupervisor


def accounting_holds(worker: BatchingWorker[int]) -> bool:
    s = worker.stats()
    return (
        s["accepted"]
        == (
            s["written"]
            + s["discarded"]
            + s["queue_depth"]
            + s["retry_buffer_depth"]
            + s["in_flight"]
        )
        and s["submitted"] == s["accepted"] + s["dropped"]
    )


async def test_full_batch_is_written_without_waiting_for_the_interval(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    settings = fast_settings(batch_size=10, flush_interval_ms=3_600_000)
    worker = BatchingWorker(sink, settings, name="t")
    worker.start(supervisor)
    for i in range(10):
        assert worker.submit(i)
    await wait_until(lambda: len(sink.items) == 10)
    assert sink.batches == [list(range(10))]
    await worker.aclose()


async def test_partial_batch_is_written_after_the_flush_interval(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    worker = BatchingWorker(sink, fast_settings(batch_size=100, flush_interval_ms=2), name="t")
    worker.start(supervisor)
    for i in range(3):
        worker.submit(i)
    await wait_until(lambda: len(sink.items) == 3)
    assert sink.batches == [[0, 1, 2]]
    stats = worker.stats()
    assert stats["batches"] == 1
    assert stats["last_batch_size"] == 3
    assert stats["flush_seconds_count"] == 1
    assert stats["flush_seconds_sum"] >= 0
    await worker.aclose()


async def test_backlog_is_written_in_order_in_calls_of_at_most_max_batch_size(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    worker = BatchingWorker(sink, fast_settings(batch_size=7, max_batch_size=20), name="t")
    worker.start(supervisor)
    for i in range(50):
        worker.submit(i)
    await worker.aclose()
    assert sink.items == list(range(50))
    assert [len(batch) for batch in sink.batches] == [20, 20, 10]
    assert worker.stats()["avg_batch_size"] == pytest.approx(50 / len(sink.batches))


async def test_burst_of_100x_the_queue_size_drops_exactly_the_overflow(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    worker = BatchingWorker(sink, fast_settings(queue_size=50, batch_size=10), name="t")
    worker.start(supervisor)
    accepted = [i for i in range(5000) if worker.submit(i)]  # no await: the flush task can't run
    assert accepted == list(range(50))
    stats = worker.stats()
    assert (stats["submitted"], stats["accepted"], stats["dropped"]) == (5000, 50, 4950)
    assert stats["queue_depth"] == 50
    await worker.aclose()
    assert sink.items == accepted
    assert worker.stats()["written"] == 50
    assert accounting_holds(worker)


async def test_burst_interleaved_with_flushes_loses_nothing_it_accepted(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    sink.delay_s = 0.001
    worker = BatchingWorker(sink, fast_settings(queue_size=50, batch_size=10), name="t")
    worker.start(supervisor)
    accepted: list[int] = []
    for start in range(0, 5000, 100):
        accepted.extend(i for i in range(start, start + 100) if worker.submit(i))
        await asyncio.sleep(0)
    await worker.aclose()
    stats = worker.stats()
    assert sink.items == accepted
    assert stats["dropped"] == 5000 - len(accepted) > 0
    assert stats["written"] == len(accepted)
    assert accounting_holds(worker)


async def test_sink_that_raises_is_retried_with_backoff_until_it_succeeds(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    sink.fail_next = 2
    worker = BatchingWorker(sink, fast_settings(max_retries=3), name="t")
    worker.start(supervisor)
    for i in range(10):
        worker.submit(i)
    await wait_until(lambda: len(sink.items) == 10)
    stats = worker.stats()
    assert (stats["sink_errors"], stats["retries"], stats["written"]) == (2, 2, 10)
    assert sink.items == list(range(10))
    await worker.aclose()


async def test_hanging_sink_is_abandoned_after_the_timeout_and_submit_keeps_accepting(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    release = asyncio.Event()
    sink.hang = release
    worker = BatchingWorker(
        sink, fast_settings(sink_timeout_s=0.01, max_retries=1, queue_size=100), name="t"
    )
    worker.start(supervisor)
    for i in range(10):
        assert worker.submit(i)
    await wait_until(lambda: worker.stats()["sink_timeouts"] >= 2)
    # While the sink hangs the hot path is untouched: submit is synchronous and accepts.
    assert all(worker.submit(i) for i in range(10, 20))
    assert worker.stats()["retry_buffer_depth"] + worker.stats()["in_flight"] >= 10
    sink.hang = None
    release.set()
    await wait_until(lambda: len(sink.items) == 20)
    assert sink.items == list(range(20))
    await worker.aclose()
    assert accounting_holds(worker)


async def test_close_with_a_sink_that_never_answers_is_bounded_and_counts_the_loss(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    sink.hang = asyncio.Event()  # never set
    worker = BatchingWorker(sink, fast_settings(sink_timeout_s=0.005, max_retries=1), name="t")
    worker.start(supervisor)
    for i in range(25):
        worker.submit(i)
    async with asyncio.timeout(5):
        await worker.aclose()
    stats = worker.stats()
    assert stats["discarded"] == 25
    assert stats["written"] == 0
    assert stats["sink_timeouts"] >= 2
    assert worker.state is WorkerState.CLOSED
    assert accounting_holds(worker)


async def test_close_does_not_wait_out_the_pause_after_a_failed_flush(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    sink.fail_next = 1
    worker = BatchingWorker(
        sink, fast_settings(max_retries=0, flush_interval_ms=3_600_000, batch_size=1), name="t"
    )
    worker.start(supervisor)
    worker.submit(1)
    await wait_until(lambda: worker.stats()["sink_errors"] == 1)
    # The flush task now pauses an hour before retrying; close must still write at once.
    async with asyncio.timeout(5):
        await worker.aclose()
    assert sink.items == [1]


async def test_slow_sink_gets_everything_without_drops_when_the_queue_is_large_enough(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    sink.delay_s = 0.003  # slower than the 2 ms flush interval
    worker = BatchingWorker(
        sink,
        fast_settings(batch_size=20, max_batch_size=20, flush_interval_ms=2, queue_size=1000),
        name="t",
    )
    worker.start(supervisor)
    for i in range(300):
        assert worker.submit(i)
        if i % 50 == 0:
            await asyncio.sleep(0)
    await worker.aclose()
    assert sink.items == list(range(300))
    assert worker.stats()["dropped"] == 0
    assert len(sink.batches) >= 15


async def test_stop_mid_batch_writes_every_accepted_item(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    sink.delay_s = 0.002
    worker = BatchingWorker(sink, fast_settings(batch_size=100, max_batch_size=100), name="t")
    worker.start(supervisor)
    for i in range(250):
        worker.submit(i)
    await sink.started.wait()  # the first batch is in flight
    assert worker.stats()["in_flight"] == 100
    await worker.aclose()
    assert sink.items == list(range(250))
    assert worker.stats()["written"] == 250


async def test_failed_batch_waits_in_a_bounded_retry_buffer_and_overflow_is_counted(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    sink.is_down = True
    worker = BatchingWorker(
        sink,
        fast_settings(
            batch_size=10,
            max_batch_size=10,
            max_retries=0,
            retry_buffer_size=4,
            flush_interval_ms=1,
        ),
        name="t",
    )
    worker.start(supervisor)
    for i in range(10):
        worker.submit(i)
    await wait_until(lambda: worker.stats()["sink_errors"] >= 3)
    stats = worker.stats()
    assert (stats["discarded"], stats["retry_buffer_depth"]) == (6, 4)
    sink.is_down = False
    await wait_until(lambda: worker.stats()["written"] == 4)
    # The oldest were discarded; the survivors keep their order.
    assert sink.items == [6, 7, 8, 9]
    await worker.aclose()
    assert accounting_holds(worker)


async def test_while_the_sink_is_down_memory_stays_bounded_and_drops_are_exact(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    sink.is_down = True
    worker = BatchingWorker(
        sink,
        fast_settings(
            batch_size=10, max_batch_size=10, queue_size=20, max_retries=0, flush_interval_ms=1
        ),
        name="t",
    )
    worker.start(supervisor)
    accepted: list[int] = []
    for round_ in range(20):
        accepted.extend(i for i in range(round_ * 100, round_ * 100 + 100) if worker.submit(i))
        await asyncio.sleep(0.001)
    stats = worker.stats()
    assert stats["queue_depth"] <= 20
    assert stats["retry_buffer_depth"] + stats["in_flight"] <= 10
    assert stats["dropped"] == 2000 - len(accepted)
    sink.is_down = False
    await worker.aclose()
    assert sink.items == accepted
    assert accounting_holds(worker)


async def test_retried_items_are_written_before_newer_ones(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    sink.is_down = True
    worker = BatchingWorker(sink, fast_settings(batch_size=5, max_retries=0), name="t")
    worker.start(supervisor)
    for i in range(5):
        worker.submit(i)
    await wait_until(lambda: worker.stats()["retry_buffer_depth"] == 5)
    for i in range(5, 12):
        worker.submit(i)
    sink.is_down = False
    await worker.aclose()
    assert sink.items == list(range(12))


async def test_flush_writes_what_is_queued_now(sink: ControlledSink[int]) -> None:
    worker = BatchingWorker(sink, fast_settings(batch_size=4), name="t")
    for i in range(9):
        worker.submit(i)
    assert await worker.flush() is True
    assert sink.items == list(range(9))
    await worker.aclose()


async def test_flush_reports_false_while_the_sink_fails(sink: ControlledSink[int]) -> None:
    sink.is_down = True
    worker = BatchingWorker(sink, fast_settings(max_retries=0), name="t")
    worker.submit(1)
    assert await worker.flush() is False
    assert worker.stats()["retry_buffer_depth"] == 1
    sink.is_down = False
    await worker.aclose()
    assert sink.items == [1]


async def test_a_never_started_worker_still_writes_on_close(sink: ControlledSink[int]) -> None:
    worker = BatchingWorker(sink, fast_settings(), name="t")
    for i in range(3):
        worker.submit(i)
    await worker.aclose()
    assert sink.items == [0, 1, 2]


async def test_submit_after_close_is_a_counted_drop_and_close_is_idempotent(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    worker = BatchingWorker(sink, fast_settings(), name="t")
    worker.start(supervisor)
    await worker.aclose()
    await worker.aclose()
    assert worker.submit(1) is False
    assert worker.stats()["dropped"] == 1
    assert sink.items == []


async def test_start_twice_is_refused(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    worker = BatchingWorker(sink, fast_settings(), name="audit")
    worker.start(supervisor)
    with pytest.raises(BusStateError, match="audit worker is running"):
        worker.start(supervisor)
    await worker.aclose()


async def test_flush_task_is_named_and_tracked_by_the_supervisor(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    worker = BatchingWorker(sink, fast_settings(), name="metering")
    worker.start(supervisor)
    assert len(supervisor) == 1
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert "agentbus:metering-flush" in names
    await worker.aclose()
    await wait_until(lambda: len(supervisor) == 0)


async def test_batch_cancelled_mid_write_is_kept_for_a_later_close(
    sink: ControlledSink[int], supervisor: TaskSupervisor
) -> None:
    release = asyncio.Event()
    sink.hang = release
    worker = BatchingWorker(sink, fast_settings(sink_timeout_s=30), name="t")
    worker.start(supervisor)
    for i in range(10):
        worker.submit(i)
    await sink.started.wait()
    await supervisor.aclose()  # not a clean stop: the flush task is cancelled mid-write
    assert worker.stats()["retry_buffer_depth"] == 10
    sink.hang = None
    release.set()
    await worker.aclose()
    assert sink.items == list(range(10))


def test_settings_reject_inconsistent_backoff() -> None:
    with pytest.raises(ValidationError, match="backoff_initial_s"):
        BatchingSettings(backoff_initial_s=5, backoff_max_s=1)


def test_settings_reject_out_of_range_values() -> None:
    with pytest.raises(ValidationError, match="queue_size"):
        BatchingSettings(queue_size=0)
    with pytest.raises(ValidationError, match="extra"):
        BatchingSettings.model_validate({"batchsize": 10})


def test_write_limit_defaults_to_ten_batches_and_never_drops_below_one() -> None:
    assert BatchingSettings(batch_size=50).write_limit == 500
    assert BatchingSettings(batch_size=50, max_batch_size=80).write_limit == 80
    assert BatchingSettings(batch_size=50, max_batch_size=10).write_limit == 50


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    settings = BatchingSettings(backoff_initial_s=0.1, backoff_multiplier=2, backoff_max_s=0.5)
    assert [settings.backoff_s(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.5]
