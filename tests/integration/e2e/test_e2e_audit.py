"""The audit log and metering of a real bus, read back after it stops.

Traffic runs through AgentBus with the default constitution (allowed, denied
by the policy and by tenant isolation, dead-lettered by a handler that always
raises, a publish nobody receives). Then the SQLite file is opened with the
public background API, verified with ``agent-bus audit verify``, tampered with,
and verified again.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from enhanced_agent_bus import (
    AgentBus,
    AgentMessage,
    BusSettings,
    DeadLetter,
    DeliveryResult,
    DeliveryStatus,
    MessageType,
    RetrySettings,
)
from enhanced_agent_bus.background import (
    REDACTED,
    AuditRecord,
    AuditSettings,
    BreakKind,
    MeteringSettings,
    SQLiteAuditSink,
    SQLiteMeteringSink,
    UsageKey,
    UsageTotals,
    verify_chain,
)
from enhanced_agent_bus.cli import app
from enhanced_agent_bus.testing import InMemoryAuditSink
from tests.integration.e2e.e2e_helpers import Inbox, always_fails

SECRET_PAYLOAD = "launch-code-7b1e-do-not-store"
API_KEY = "sk-live-e2e-0123456789abcdef"
WIDE = {"COLUMNS": "240"}


def bus_settings(db: Path, **audit: object) -> BusSettings:
    # A long flush interval: everything is written by stop(), in one batch, so the
    # tamper tests know where each record sits.
    audit_settings = AuditSettings.model_validate(
        {"sqlite_path": db, "flush_interval_ms": 60_000, "batch_size": 10_000, **audit}
    )
    return BusSettings(
        drain_timeout_s=2.0,
        retry=RetrySettings(max_retries=0),
        audit=audit_settings,
        metering=MeteringSettings(sqlite_path=db),
    )


@dataclass
class Traffic:
    results: list[tuple[AgentMessage, DeliveryResult]]
    dead_letters: list[DeadLetter]
    constitutional_hash: str
    usage: dict[UsageKey, UsageTotals]


async def run_traffic(bus: AgentBus) -> list[tuple[AgentMessage, DeliveryResult]]:
    """Allowed, policy-denied, tenant-denied, dead-lettered (handler and no subscriber)."""
    await bus.register_agent("planner-1", Inbox(), tenant_id="acme", role="planner")
    await bus.register_agent("worker-1", Inbox(), tenant_id="acme", role="worker")
    await bus.register_agent("tool-1", always_fails, tenant_id="acme", role="worker")
    await bus.register_agent("worker-3", Inbox(), tenant_id="globex", role="worker")
    secret = {"prompt": SECRET_PAYLOAD}
    sends = [
        bus.message(
            "planner-1", "worker-1", secret, metadata={"action": "delegate", "api_key": API_KEY}
        ),
        bus.message("worker-1", "planner-1", secret, metadata={"api_key": API_KEY}),
        bus.message("planner-1", "worker-3", {"task": "cross"}),
        bus.message("planner-1", "tool-1", secret, metadata={"trace": "t-1"}),
    ]
    results = [(m, await bus.send_message(m)) for m in sends]
    orphan = bus.message("worker-1", None, {"build": 1}, message_type=MessageType.EVENT)
    (published,) = await bus.publish("nobody-listens", orphan)
    # publish() audits the message with its topic filled in.
    results.append((orphan.model_copy(update={"topic": "nobody-listens"}), published))
    statuses = [r.status for _, r in results]
    assert statuses == [
        DeliveryStatus.DELIVERED,
        DeliveryStatus.DENIED,
        DeliveryStatus.DENIED,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.DEAD_LETTERED,
    ]
    return results


async def traffic_through(settings: BusSettings, **bus_options: object) -> tuple[AgentBus, Traffic]:
    bus = AgentBus(settings, **bus_options)  # type: ignore[arg-type]
    async with bus:
        results = await run_traffic(bus)
    assert bus.metering is not None
    # stop() drained tool-1's mailbox: its handler failed once (max_retries=0).
    traffic = Traffic(results, bus.dead_letters(), bus.constitutional_hash, bus.metering.snapshot())
    return bus, traffic


async def read_sqlite_log(db: Path) -> list[AuditRecord]:
    sink = SQLiteAuditSink(db, read_only=True)
    await sink.open()
    try:
        return [record async for record in sink.iter_records()]
    finally:
        await sink.aclose()


def digest(payload: dict[str, object]) -> str:
    return hashlib.sha256(orjson.dumps(payload)).hexdigest()


def later_dead_letters(traffic: Traffic) -> list[DeadLetter]:
    """Dead letters of messages that had been accepted; a publish that reached nobody was
    already recorded as a DEAD_LETTERED decision and is not recorded twice."""
    already_dead = {
        m.message_id for m, r in traffic.results if r.status is DeliveryStatus.DEAD_LETTERED
    }
    return [d for d in traffic.dead_letters if d.message.message_id not in already_dead]


def check_records(records: list[AuditRecord], traffic: Traffic) -> None:
    """One decision record per send, one dead-letter record per later dead letter."""
    assert verify_chain(records).is_intact
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    letters = later_dead_letters(traffic)
    assert len(letters) < len(traffic.dead_letters)  # the orphan publish is in the traffic
    assert len(records) == len(traffic.results) + len(letters)
    decisions = {r.message_id: r for r in records if r.kind == "decision"}
    dead = {(r.message_id, r.to_agent): r for r in records if r.kind == "dead_letter"}
    assert len(decisions) == len(traffic.results)
    assert len(dead) == len(letters)
    for message, result in traffic.results:
        record = decisions[message.message_id]
        assert record.outcome == result.status.value
        assert record.codes == result.codes
        assert record.stage == (result.reasons[0].stage if result.reasons else None)
        assert record.tenant_id == message.tenant_id
        assert record.from_agent == message.from_agent
        assert record.to_agent == (result.recipient or message.to_agent)
        assert record.topic == message.topic
        assert record.message_type == message.message_type.value
        assert record.constitutional_hash == traffic.constitutional_hash
        assert record.payload_digest == digest(message.payload)
        assert record.payload_bytes == message.payload_size_bytes
        if "api_key" in message.metadata:
            assert record.metadata["api_key"] == REDACTED
        assert {k: v for k, v in record.metadata.items() if k != "api_key"} == {
            k: v for k, v in message.metadata.items() if k != "api_key"
        }
    for letter in letters:
        record = dead[(letter.message.message_id, letter.recipient)]
        assert (record.outcome, record.stage, record.codes) == (
            "dead_lettered",
            "delivery",
            (letter.code,),
        )
        assert record.tenant_id == "acme"
        assert record.payload_digest == digest(letter.message.payload)


def expected_usage(traffic: Traffic) -> dict[UsageKey, UsageTotals]:
    """One count per decision, under its status, and one per dead letter of a message
    that had been accepted (a publish that reached nobody is one dead-lettered message)."""
    counts: Counter[UsageKey] = Counter()
    sizes: Counter[UsageKey] = Counter()
    events = [(m, r.status.value) for m, r in traffic.results]
    events += [(d.message, "dead_lettered") for d in later_dead_letters(traffic)]
    for message, outcome in events:
        key = UsageKey(message.tenant_id, message.from_agent, message.message_type.value, outcome)
        counts[key] += 1
        sizes[key] += message.payload_size_bytes
    return {key: UsageTotals(counts[key], sizes[key]) for key in counts}


#: The publish that reached nobody: one dead-lettered event, metered once.
ORPHAN_KEY = UsageKey("acme", "worker-1", "event", "dead_lettered")


async def cli(*args: str) -> tuple[int, str]:
    # The CLI runs its own event loop (asyncio.run), so it runs in a thread here.
    outcome = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=WIDE)
    return outcome.exit_code, outcome.output


@pytest.fixture
async def audited(tmp_path: Path) -> tuple[Path, Traffic]:
    db = tmp_path / "e2e-audit.sqlite3"
    _, traffic = await traffic_through(bus_settings(db))
    return db, traffic


async def test_every_decision_and_dead_letter_is_audited_without_payloads(
    audited: tuple[Path, Traffic], tmp_path: Path
) -> None:
    db, traffic = audited
    assert {(d.recipient, d.code) for d in traffic.dead_letters} == {
        ("tool-1", "handler_error"),
        ("topic:nobody-listens", "no_subscribers"),
    }
    records = await read_sqlite_log(db)
    check_records(records, traffic)
    by_outcome = Counter((r.kind, r.outcome, r.codes) for r in records)
    assert by_outcome == {
        ("decision", "delivered", ()): 2,
        ("decision", "denied", ("policy_denied",)): 1,
        ("decision", "denied", ("cross_tenant",)): 1,
        ("decision", "dead_lettered", ("no_subscribers",)): 1,
        ("dead_letter", "dead_lettered", ("handler_error",)): 1,
    }
    stored = await asyncio.to_thread(
        lambda: b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(db.name))
    )
    assert SECRET_PAYLOAD.encode() not in stored
    assert API_KEY.encode() not in stored
    assert b"tool crashed" not in stored  # a dead letter's cause text is not audited either
    assert REDACTED.encode() in stored


async def test_the_cli_verifies_the_log_the_bus_wrote(audited: tuple[Path, Traffic]) -> None:
    db, _ = audited
    records = await read_sqlite_log(db)
    code, output = await cli("audit", "verify", "--db", str(db))
    assert code == 0, output
    assert "audit chain intact" in output
    assert f"{len(records)} records" in output
    assert records[-1].hash in output


def locate(conn: sqlite3.Connection, seq: int) -> tuple[int, int]:
    """(first_seq of the batch row holding record ``seq``, its index in that row)."""
    first = conn.execute(
        "SELECT first_seq FROM audit_batches WHERE first_seq <= ? AND last_seq >= ?", (seq, seq)
    ).fetchone()[0]
    return int(first), seq - int(first)


def edit_outcome(conn: sqlite3.Connection) -> None:
    """Turn the denial at seq 2 into a delivery, leaving its stored hash alone."""
    assert conn.execute("SELECT outcome FROM audit_records WHERE seq = 2").fetchone() == ("denied",)
    first, index = locate(conn, 2)
    conn.execute(
        "UPDATE audit_batches SET records = json_set(records, ?, 'delivered') WHERE first_seq = ?",
        (f"$[{index}][10]", first),
    )


def delete_record(conn: sqlite3.Connection) -> None:
    first, index = locate(conn, 2)
    conn.execute(
        "UPDATE audit_batches SET records = json_remove(records, ?) WHERE first_seq = ?",
        (f"$[{index}]", first),
    )


def swap_records(conn: sqlite3.Connection) -> None:
    first, index = locate(conn, 2)
    assert locate(conn, 3) == (first, index + 1)
    two, three = f"$[{index}]", f"$[{index + 1}]"
    conn.execute(
        "UPDATE audit_batches SET records = json_set(records, "
        "?, json(json_extract(records, ?)), ?, json(json_extract(records, ?))) "
        "WHERE first_seq = ?",
        (two, three, three, two, first),
    )


@pytest.mark.parametrize(
    ("tamper", "kind", "seq"),
    [
        pytest.param(edit_outcome, BreakKind.EDITED, 2, id="edit"),
        pytest.param(delete_record, BreakKind.BROKEN_LINK, 3, id="delete"),
        pytest.param(swap_records, BreakKind.BROKEN_LINK, 3, id="swap"),
    ],
)
async def test_tampering_breaks_the_chain_at_the_first_changed_record(
    audited: tuple[Path, Traffic],
    tamper: Callable[[sqlite3.Connection], None],
    kind: BreakKind,
    seq: int,
) -> None:
    db, _ = audited
    with sqlite3.connect(db) as conn:
        tamper(conn)
    conn.close()
    report = verify_chain(await read_sqlite_log(db))
    assert report.first_break is not None
    assert (report.first_break.kind, report.first_break.seq) == (kind, seq)
    assert report.records_checked == 1

    code, output = await cli("audit", "verify", "--db", str(db))
    assert code == 1, output
    assert "audit chain BROKEN" in output
    assert f"{kind.value} at seq {seq}" in output
    assert "1 records before it verified (last good seq 1)" in output


async def test_a_clean_stop_loses_no_decision(tmp_path: Path) -> None:
    db = tmp_path / "burst.sqlite3"
    count = 300
    async with AgentBus(bus_settings(db)) as bus:
        await bus.register_agent("planner-1", Inbox(), tenant_id="acme", role="planner")
        await bus.register_agent("worker-1", Inbox(), tenant_id="acme", role="worker")
        sent = []
        for n in range(count):
            # Alternate allowed and denied, and vary the payload so the cache keys differ.
            sender, recipient = ("planner-1", "worker-1") if n % 2 else ("worker-1", "planner-1")
            message = bus.message(sender, recipient, {"n": "x" * (n % 7)})
            result = await bus.send_message(message)
            assert result.status in (DeliveryStatus.DELIVERED, DeliveryStatus.DENIED)
            sent.append(message.message_id)
        assert bus.audit is not None
        # Nothing written yet: the flush interval is a minute away; stop() must write it all.
        assert bus.audit.stats()["written"] == 0
    records = await read_sqlite_log(db)
    assert verify_chain(records).is_intact
    assert [r.message_id for r in records if r.kind == "decision"] == sent
    assert Counter(r.outcome for r in records) == {"delivered": 150, "denied": 150}
    assert bus.audit.head_seq == count


async def test_metering_totals_match_the_traffic(audited: tuple[Path, Traffic]) -> None:
    db, traffic = audited
    expected = expected_usage(traffic)
    assert traffic.usage == expected
    assert expected[UsageKey("acme", "planner-1", "command", "delivered")] == UsageTotals(
        2, 2 * len(orjson.dumps({"prompt": SECRET_PAYLOAD}))
    )
    assert expected[UsageKey("acme", "planner-1", "command", "dead_lettered")].messages == 1
    assert ORPHAN_KEY in traffic.usage
    sink = SQLiteMeteringSink(db, read_only=True)
    await sink.open()
    try:
        assert await sink.read_totals() == traffic.usage
    finally:
        await sink.aclose()


async def test_an_in_memory_audit_sink_gets_the_same_chain(tmp_path: Path) -> None:
    db = tmp_path / "metering-only.sqlite3"
    sink = InMemoryAuditSink()
    bus, traffic = await traffic_through(bus_settings(db), audit_sink=sink)
    check_records(sink.records, traffic)
    assert bus.stats()["audit"]["written"] == len(sink.records)
    assert traffic.usage == expected_usage(traffic)
    # The sink replaced the configured SQLite audit log: only metering is in the file.
    with sqlite3.connect(db) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "audit_batches" not in tables

    edited = list(sink.records)
    edited[3] = edited[3]._replace(
        outcome="delivered" if edited[3].outcome != "delivered" else "denied"
    )
    report = verify_chain(edited)
    assert report.first_break is not None
    assert (report.first_break.kind, report.first_break.seq) == (BreakKind.EDITED, 4)
    shortened = sink.records[:2] + sink.records[3:]
    report = verify_chain(shortened)
    assert report.first_break is not None
    assert (report.first_break.kind, report.first_break.seq) == (BreakKind.BROKEN_LINK, 4)


async def test_a_publish_that_reaches_nobody_is_metered_once(tmp_path: Path) -> None:
    async with AgentBus(bus_settings(tmp_path / "orphan.sqlite3")) as bus:
        await bus.register_agent("worker-1", Inbox(), tenant_id="acme", role="worker")
        event = bus.message("worker-1", None, {"build": 1}, message_type=MessageType.EVENT)
        (result,) = await bus.publish("nobody-listens", event)
        assert result.codes == ("no_subscribers",)
    assert bus.stats()["bus"]["dead_lettered_total"] == 1
    assert bus.stats()["bus"]["sent_total"] == 1
    assert bus.metering is not None
    # One message of 11 payload bytes ({"build":1}), metered once.
    assert bus.metering.snapshot() == {ORPHAN_KEY: UsageTotals(1, 11)}
