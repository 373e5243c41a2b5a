"""Audit and metering on real SQLite files: chain, tampering, CLI, faults."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from enhanced_agent_bus.background import (
    AuditLog,
    AuditSettings,
    Metering,
    MeteringSettings,
    SinkUnavailableError,
    SQLiteAuditSink,
    SQLiteMeteringSink,
    UsageDelta,
    UsageKey,
    UsageTotals,
    verify_chain,
)
from enhanced_agent_bus.background.cli import audit_app, metering_command
from enhanced_agent_bus.models import AgentMessage, DeliveryResult, DeliveryStatus, Reason
from enhanced_agent_bus.tasks import TaskSupervisor

WIDE = {"COLUMNS": "240"}
SENTINEL = "payload-sentinel-7f3a"


def settings(**overrides: object) -> AuditSettings:
    base: dict[str, object] = {
        "batch_size": 25,
        "flush_interval_ms": 5,
        "backoff_initial_s": 0.001,
        "backoff_max_s": 0.002,
        "sink_timeout_s": 5,
    }
    return AuditSettings.model_validate({**base, **overrides})


def msg(n: int, tenant: str = "acme") -> AgentMessage:
    return AgentMessage(
        from_agent="planner",
        to_agent="coder",
        tenant_id=tenant,
        payload={"task": f"{SENTINEL}-{n}"},
        metadata={"authorization": "Bearer sk-live-secret", "trace": f"t{n}"},
        constitutional_hash="c" * 64,
    )


def result(message: AgentMessage, n: int) -> DeliveryResult:
    if n % 4 == 0:
        return DeliveryResult(
            message.message_id,
            DeliveryStatus.DENIED,
            (Reason("tenant_isolation", "cross_tenant", "no"),),
            recipient="coder",
        )
    return DeliveryResult(message.message_id, DeliveryStatus.DELIVERED, recipient="coder")


async def write_audit(path: Path, count: int, *, start: int = 0) -> AuditLog:
    supervisor = TaskSupervisor()
    audit = AuditLog(SQLiteAuditSink(path), settings())
    await audit.start(supervisor)
    for n in range(start, start + count):
        message = msg(n)
        audit.on_decision(message, result(message, n))
    await audit.aclose()
    await supervisor.aclose()
    assert supervisor.failure is None
    return audit


def locate(conn: sqlite3.Connection, seq: int) -> tuple[int, int]:
    """(first_seq of the batch row holding record ``seq``, its index in that row)."""
    first = conn.execute(
        "SELECT first_seq FROM audit_batches WHERE first_seq <= ? AND last_seq >= ?", (seq, seq)
    ).fetchone()[0]
    return int(first), seq - int(first)


def run_cli(app: typer.Typer, *args: str) -> tuple[int, str]:
    outcome = CliRunner().invoke(app, list(args), env=WIDE)
    return outcome.exit_code, outcome.output


async def verify_cli(*args: str) -> tuple[int, str]:
    # The CLI runs its own event loop (asyncio.run), so it runs in a thread here.
    return await asyncio.to_thread(run_cli, audit_app, "verify", *args)


def metering_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(metering_command)
    return app


async def test_crash_free_run_verifies_from_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    audit = await write_audit(db, 120)
    assert audit.stats()["written"] == 120
    code, output = await verify_cli("--db", str(db))
    assert code == 0, output
    assert "audit chain intact" in output
    assert "120 records" in output
    assert audit.head_hash in output


async def test_log_continues_across_restarts_and_is_in_wal_mode(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    await write_audit(db, 30)
    second = await write_audit(db, 30, start=30)
    assert second.head_seq == 60
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        seqs = [row[0] for row in conn.execute("SELECT seq FROM audit_records")]
        tenants = conn.execute("SELECT DISTINCT tenant_id FROM audit_records").fetchall()
    assert seqs == list(range(1, 61))
    assert tenants == [("acme",)]
    assert (await verify_cli("--db", str(db)))[0] == 0


async def test_payload_and_secret_metadata_never_reach_the_file(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    await write_audit(db, 20)
    stored = await asyncio.to_thread(
        lambda: b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    )
    assert SENTINEL.encode() not in stored
    assert b"sk-live-secret" not in stored
    assert b"[REDACTED]" in stored


async def test_verify_detects_an_edited_record(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    await write_audit(db, 40)
    with sqlite3.connect(db) as conn:
        # Turn denial seq 17 into a delivery, leaving its stored hash alone.
        first, index = locate(conn, 17)
        assert conn.execute("SELECT outcome FROM audit_records WHERE seq = 17").fetchone() == (
            "denied",
        )
        conn.execute(
            "UPDATE audit_batches SET records = json_set(records, ?, 'delivered') "
            "WHERE first_seq = ?",
            (f"$[{index}][10]", first),
        )
    code, output = await verify_cli("--db", str(db))
    assert code == 1
    assert "audit chain BROKEN" in output
    assert "edited at seq 17" in output
    assert "16 records before it verified" in output


async def test_verify_detects_a_deleted_record(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    await write_audit(db, 40)
    with sqlite3.connect(db) as conn:
        first, index = locate(conn, 23)
        conn.execute(
            "UPDATE audit_batches SET records = json_remove(records, ?) WHERE first_seq = ?",
            (f"$[{index}]", first),
        )
    code, output = await verify_cli("--db", str(db))
    assert code == 1
    assert "broken_link at seq 24" in output


async def test_verify_detects_swapped_records(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    await write_audit(db, 40)
    with sqlite3.connect(db) as conn:
        first, index = locate(conn, 8)
        assert locate(conn, 9) == (first, index + 1)
        eight, nine = f"$[{index}]", f"$[{index + 1}]"
        conn.execute(
            "UPDATE audit_batches SET records = json_set(records, "
            "?, json(json_extract(records, ?)), ?, json(json_extract(records, ?))) "
            "WHERE first_seq = ?",
            (eight, nine, nine, eight, first),
        )
    code, output = await verify_cli("--db", str(db))
    assert code == 1
    assert "broken_link at seq 9" in output


async def test_verify_reports_an_unreadable_row(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    await write_audit(db, 10)
    with sqlite3.connect(db) as conn:
        first, index = locate(conn, 4)
        conn.execute(
            "UPDATE audit_batches SET records = json_set(records, ?, 'garbage') "
            "WHERE first_seq = ?",
            (f"$[{index}]", first),
        )
    code, output = await verify_cli("--db", str(db))
    assert code == 1
    assert "unreadable" in output
    assert f"record #{index + 1} of the batch starting at seq {first}" in output
    assert "3 records before it verified" in output


async def test_verify_with_an_anchor_detects_truncation(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    audit = await write_audit(db, 20)
    assert (await verify_cli("--db", str(db), "--anchor", audit.head_hash))[0] == 0
    with sqlite3.connect(db) as conn:
        for seq in range(20, 15, -1):
            first, index = locate(conn, seq)
            conn.execute(
                "UPDATE audit_batches SET records = json_remove(records, ?), last_seq = ? "
                "WHERE first_seq = ?",
                (f"$[{index}]", seq - 1, first),
            )
    assert (await verify_cli("--db", str(db)))[0] == 0  # a plain chain cannot see this
    code, output = await verify_cli("--db", str(db), "--anchor", audit.head_hash)
    assert code == 1
    assert "anchor_missing" in output


async def test_verify_of_a_missing_file_exits_2_without_creating_it(tmp_path: Path) -> None:
    db = tmp_path / "nope.sqlite3"
    code, output = await verify_cli("--db", str(db))
    assert code == 2
    assert "cannot read the audit log" in output
    assert str(db) in output
    assert not db.exists()


def test_verify_refuses_both_sources() -> None:
    outcome = CliRunner().invoke(
        audit_app, ["verify", "--db", "x.sqlite3", "--redis", "redis://127.0.0.1:1/0"]
    )
    assert outcome.exit_code == 2
    assert "either --db FILE or --redis URL" in outcome.output


async def test_tail_shows_the_newest_records(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    await write_audit(db, 12)
    code, output = await asyncio.to_thread(run_cli, audit_app, "tail", "-n", "4", "--db", str(db))
    assert code == 0, output
    assert "last 4 audit records" in output
    for seq in ("9", "10", "11", "12"):
        assert f"│ {seq} " in output
    assert "│ 8 " not in output
    assert "tenant_isolation cross_tenant" in output  # seq 9 is a denial
    assert SENTINEL not in output


async def test_tail_of_an_empty_log(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    sink = SQLiteAuditSink(db)
    await sink.open()
    await sink.aclose()
    code, output = await asyncio.to_thread(run_cli, audit_app, "tail", "--db", str(db))
    assert code == 0
    assert "empty" in output


@pytest.mark.parametrize("layout", ["parent_is_a_file", "path_is_a_directory"])
async def test_unwritable_sqlite_path_fails_at_start_with_a_clear_error(
    tmp_path: Path, layout: str
) -> None:
    if layout == "parent_is_a_file":
        (tmp_path / "plain-file").write_text("x")
        db = tmp_path / "plain-file" / "audit.sqlite3"
    else:
        db = tmp_path / "a-directory"
        db.mkdir()
    audit = AuditLog(SQLiteAuditSink(db), settings())
    supervisor = TaskSupervisor()
    with pytest.raises(SinkUnavailableError) as excinfo:
        await audit.start(supervisor)
    message = str(excinfo.value)
    assert str(db) in message
    assert "writable" in message
    await supervisor.aclose()


async def test_a_file_with_another_layout_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE audit_batches (id INTEGER, text TEXT)")
    with pytest.raises(SinkUnavailableError, match="another layout"):
        await SQLiteAuditSink(db).open()


async def test_two_writers_on_one_file_keep_one_chain_and_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    supervisor = TaskSupervisor()
    first = AuditLog(SQLiteAuditSink(db), settings(batch_size=7))
    second = AuditLog(SQLiteAuditSink(db), settings(batch_size=7))
    await first.start(supervisor)
    await second.start(supervisor)
    for n in range(200):
        message = msg(n)
        (first if n % 2 else second).on_decision(message, result(message, n))
    await first.aclose()
    await second.aclose()
    await supervisor.aclose()
    reader = SQLiteAuditSink(db, read_only=True)
    await reader.open()
    records = [record async for record in reader.iter_records(chunk_size=64)]
    await reader.aclose()
    assert len(records) == 200
    assert verify_chain(records).is_intact
    assert first.stats()["discarded"] + second.stats()["discarded"] == 0


async def test_metering_on_sqlite_adds_up_across_runs_and_prints(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    for _run in range(2):
        supervisor = TaskSupervisor()
        metering = Metering(
            SQLiteMeteringSink(db),
            MeteringSettings(batch_size=10, flush_interval_ms=5),
        )
        await metering.start(supervisor)
        for n in range(25):
            message = msg(n, tenant="acme" if n % 5 else "globex")
            metering.on_decision(message, result(message, n))
        await metering.aclose()
        await supervisor.aclose()
    reader = SQLiteMeteringSink(db, read_only=True)
    await reader.open()
    totals = await reader.read_totals()
    await reader.aclose()
    assert sum(t.messages for t in totals.values()) == 50
    # globex: n in {0, 5, 10, 15, 20}; denied: n % 4 == 0, so n in {0, 20}; two runs.
    size = msg(0).payload_size_bytes + msg(20).payload_size_bytes
    assert totals[UsageKey("globex", "planner", "command", "denied")] == UsageTotals(4, 2 * size)
    assert totals[UsageKey("globex", "planner", "command", "delivered")].messages == 6

    code, output = await asyncio.to_thread(run_cli, metering_app(), "--db", str(db))
    assert code == 0, output
    assert "globex" in output
    assert "denied" in output
    assert "50" in output


async def test_metering_batch_ids_are_applied_once(tmp_path: Path) -> None:
    sink = SQLiteMeteringSink(tmp_path / "m.sqlite3")
    await sink.open()
    key = UsageKey("acme", "planner", "command", "delivered")
    await sink.add_usage("batch-1", [UsageDelta(key, 3, 30)])
    await sink.add_usage("batch-1", [UsageDelta(key, 3, 30)])
    await sink.add_usage("batch-2", [UsageDelta(key, 1, 5)])
    assert await sink.read_totals() == {key: UsageTotals(4, 35)}
    await sink.aclose()


def test_metering_cli_on_a_file_without_metering(tmp_path: Path) -> None:
    db = tmp_path / "audit-only.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    code, output = run_cli(metering_app(), "--db", str(db))
    assert code == 0, output
    assert "no usage recorded" in output
    assert run_cli(metering_app(), "--db", str(tmp_path / "missing.sqlite3"))[0] == 2


async def test_audit_and_metering_share_one_file(tmp_path: Path) -> None:
    db = tmp_path / "agentbus.sqlite3"
    supervisor = TaskSupervisor()
    audit = AuditLog(SQLiteAuditSink(db), settings(batch_size=5))
    metering = Metering(SQLiteMeteringSink(db), MeteringSettings(batch_size=5, flush_interval_ms=5))
    await audit.start(supervisor)
    await metering.start(supervisor)
    for n in range(300):
        message = msg(n)
        outcome = result(message, n)
        audit.on_decision(message, outcome)
        metering.on_decision(message, outcome)
    await audit.aclose()
    await metering.aclose()
    await supervisor.aclose()
    assert audit.stats()["written"] == 300
    assert sum(t.messages for t in metering.snapshot().values()) == 300
    assert (await verify_cli("--db", str(db)))[0] == 0
