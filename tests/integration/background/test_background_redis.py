"""Audit (Redis stream) and metering (Redis hashes) against a real Redis."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import redis.asyncio as aioredis
import typer
from bg_redis_proxy import RedisProxy
from typer.testing import CliRunner

from enhanced_agent_bus.background import (
    AuditLog,
    AuditSettings,
    Metering,
    MeteringSettings,
    RedisHashMeteringSink,
    RedisStreamAuditSink,
    SinkUnavailableError,
    UsageDelta,
    UsageKey,
    UsageTotals,
    verify_chain,
)
from enhanced_agent_bus.background.cli import audit_app, metering_command
from enhanced_agent_bus.models import AgentMessage, DeliveryResult, DeliveryStatus
from enhanced_agent_bus.tasks import TaskSupervisor

pytestmark = pytest.mark.redis

WIDE = {"COLUMNS": "240"}


def settings(**overrides: object) -> AuditSettings:
    base: dict[str, object] = {
        "batch_size": 20,
        "flush_interval_ms": 5,
        "backoff_initial_s": 0.005,
        "backoff_max_s": 0.02,
        "max_retries": 2,
        "sink_timeout_s": 1,
    }
    return AuditSettings.model_validate({**base, **overrides})


def msg(n: int) -> AgentMessage:
    return AgentMessage(
        from_agent="planner",
        to_agent="coder",
        tenant_id="acme",
        payload={"n": n},
        constitutional_hash="c" * 64,
    )


def delivered(message: AgentMessage) -> DeliveryResult:
    return DeliveryResult(message.message_id, DeliveryStatus.DELIVERED, recipient="coder")


def run_cli(app: typer.Typer, *args: str) -> tuple[int, str]:
    outcome = CliRunner().invoke(app, list(args), env=WIDE)
    return outcome.exit_code, outcome.output


async def verify_cli(redis_url: str, stream: str) -> tuple[int, str]:
    return await asyncio.to_thread(
        run_cli, audit_app, "verify", "--redis", redis_url, "--stream", stream
    )


async def write_stream(redis_url: str, stream: str, count: int) -> AuditLog:
    supervisor = TaskSupervisor()
    audit = AuditLog(RedisStreamAuditSink(redis_url, stream_key=stream), settings())
    await audit.start(supervisor)
    for n in range(count):
        message = msg(n)
        audit.on_decision(message, delivered(message))
    await audit.aclose()
    await supervisor.aclose()
    return audit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_stream_log_verifies_and_continues_across_restarts(
    redis_url: str, redis_keys: str
) -> None:
    stream = f"{redis_keys}audit"
    await write_stream(redis_url, stream, 70)
    second = await write_stream(redis_url, stream, 30)
    assert second.head_seq == 100
    code, output = await verify_cli(redis_url, stream)
    assert code == 0, output
    assert "100 records" in output
    client = aioredis.Redis.from_url(redis_url)
    assert await client.xlen(stream) == 100
    await client.aclose()


async def test_tampering_with_the_stream_is_detected(redis_url: str, redis_keys: str) -> None:
    stream = f"{redis_keys}audit"
    await write_stream(redis_url, stream, 30)
    client = aioredis.Redis.from_url(redis_url)
    entries: list[tuple[Any, dict[bytes, bytes]]] = await client.xrange(stream)  # type: ignore[assignment]

    async def rewrite(fields_in_order: list[dict[bytes, bytes]]) -> None:
        await client.delete(stream)
        for fields in fields_in_order:
            await client.xadd(stream, fields)  # type: ignore[arg-type]

    original = [fields for _, fields in entries]
    try:
        edited = [dict(f) for f in original]
        edited[11][b"record"] = edited[11][b"record"].replace(b'"delivered"', b'"denied"')
        await rewrite(edited)
        code, output = await verify_cli(redis_url, stream)
        assert code == 1
        assert "edited at seq 12" in output

        await rewrite(original[:5] + original[6:])
        code, output = await verify_cli(redis_url, stream)
        assert code == 1
        assert "broken_link at seq 7" in output

        swapped = list(original)
        swapped[20], swapped[21] = swapped[21], swapped[20]
        await rewrite(swapped)
        code, output = await verify_cli(redis_url, stream)
        assert code == 1
        assert "broken_link at seq 22" in output

        await rewrite(original)
        assert (await verify_cli(redis_url, stream))[0] == 0
    finally:
        await client.aclose()


async def test_tail_from_redis(redis_url: str, redis_keys: str) -> None:
    stream = f"{redis_keys}audit"
    await write_stream(redis_url, stream, 5)
    code, output = await asyncio.to_thread(
        run_cli, audit_app, "tail", "-n", "2", "--redis", redis_url, "--stream", stream
    )
    assert code == 0, output
    assert "last 2 audit records" in output
    assert "│ 5 " in output


async def test_redis_down_at_start_is_a_clear_error_without_the_password() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/15"
    audit = AuditLog(RedisStreamAuditSink(url, connect_timeout_s=0.5), settings())
    supervisor = TaskSupervisor()
    with pytest.raises(SinkUnavailableError) as excinfo:
        await audit.start(supervisor)
    text = str(excinfo.value)
    assert "Redis audit stream" in text
    assert "hunter2" not in text
    assert ":***@127.0.0.1" in text
    assert "Start Redis" in text
    await supervisor.aclose()
    code, output = await asyncio.to_thread(run_cli, audit_app, "verify", "--redis", url)
    assert code == 2
    assert "hunter2" not in output


async def test_redis_lost_mid_run_is_retried_and_nothing_accepted_is_lost(
    redis_url: str, redis_keys: str, redis_proxy: RedisProxy
) -> None:
    stream = f"{redis_keys}audit"
    sink = RedisStreamAuditSink(
        redis_proxy.url_for(redis_url),
        stream_key=stream,
        connect_timeout_s=0.2,
        socket_timeout_s=0.2,
    )
    audit = AuditLog(sink, settings(retry_buffer_size=10_000, max_retries=1))
    supervisor = TaskSupervisor()
    await audit.start(supervisor)
    for n in range(50):
        message = msg(n)
        audit.on_decision(message, delivered(message))
    assert await audit.flush()

    await redis_proxy.cut()
    for n in range(50, 120):
        message = msg(n)
        audit.on_decision(message, delivered(message))
    async with asyncio.timeout(10):
        while audit.stats()["sink_errors"] < 2:
            await asyncio.sleep(0.01)
    assert audit.stats()["written"] == 50

    await redis_proxy.restore()
    await audit.aclose()
    await supervisor.aclose()
    stats = audit.stats()
    assert (stats["written"], stats["dropped"], stats["discarded"]) == (120, 0, 0)
    code, output = await verify_cli(redis_url, stream)
    assert code == 0, output
    assert "120 records" in output


async def test_two_writers_on_one_stream_keep_one_chain(redis_url: str, redis_keys: str) -> None:
    stream = f"{redis_keys}audit"
    supervisor = TaskSupervisor()
    first = AuditLog(RedisStreamAuditSink(redis_url, stream_key=stream), settings(batch_size=5))
    second = AuditLog(RedisStreamAuditSink(redis_url, stream_key=stream), settings(batch_size=5))
    await first.start(supervisor)
    await second.start(supervisor)
    for n in range(120):
        message = msg(n)
        (first if n % 2 else second).on_decision(message, delivered(message))
        if n % 10 == 0:
            await asyncio.sleep(0)
    await first.aclose()
    await second.aclose()
    await supervisor.aclose()
    reader = RedisStreamAuditSink(redis_url, stream_key=stream)
    await reader.open()
    records = [record async for record in reader.iter_records(chunk_size=17)]
    await reader.aclose()
    assert len(records) == 120
    assert verify_chain(records).is_intact
    assert first.stats()["discarded"] + second.stats()["discarded"] == 0


async def test_metering_on_redis_hashes(redis_url: str, redis_keys: str) -> None:
    prefix = f"{redis_keys}metering"
    supervisor = TaskSupervisor()
    metering = Metering(
        RedisHashMeteringSink(redis_url, key_prefix=prefix),
        MeteringSettings(batch_size=10, flush_interval_ms=5),
    )
    await metering.start(supervisor)
    for n in range(35):
        message = msg(n)
        metering.on_decision(message, delivered(message))
    await metering.aclose()
    await supervisor.aclose()

    sink = RedisHashMeteringSink(redis_url, key_prefix=prefix)
    await sink.open()
    key = UsageKey("acme", "planner", "command", "delivered")
    total_bytes = sum(msg(n).payload_size_bytes for n in range(35))
    assert await sink.read_totals() == {key: UsageTotals(35, total_bytes)}
    assert metering.snapshot() == {key: UsageTotals(35, total_bytes)}
    # A batch id is applied once, even when sent again.
    await sink.add_usage("dup", [UsageDelta(key, 5, 50)])
    await sink.add_usage("dup", [UsageDelta(key, 5, 50)])
    assert (await sink.read_totals())[key] == UsageTotals(40, total_bytes + 50)
    await sink.aclose()

    app = typer.Typer()
    app.command()(metering_command)
    code, output = await asyncio.to_thread(
        run_cli, app, "--redis", redis_url, "--key-prefix", prefix
    )
    assert code == 0, output
    assert "acme" in output
    assert "40" in output


async def test_metering_redis_down_at_start() -> None:
    sink = RedisHashMeteringSink(f"redis://127.0.0.1:{free_port()}/15", connect_timeout_s=0.5)
    with pytest.raises(SinkUnavailableError, match="Redis metering hashes"):
        await sink.open()
