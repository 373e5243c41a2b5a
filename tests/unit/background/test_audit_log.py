"""AuditLog: what one decision, dead letter or deliberation becomes; the chain across runs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from bg_helpers import delivered, denied, fast_settings, message, wait_until

from enhanced_agent_bus.background import (
    REDACTED,
    AuditChainConflictError,
    AuditLog,
    AuditRecord,
    AuditSettings,
    verify_chain,
)
from enhanced_agent_bus.models import DeadLetter, DeliveryStatus, Reason, encode_json
from enhanced_agent_bus.tasks import TaskSupervisor
from enhanced_agent_bus.testing._audit import InMemoryAuditSink


def audit_settings(**overrides: object) -> AuditSettings:
    return AuditSettings.model_validate({**fast_settings().model_dump(), **overrides})


async def test_decisions_become_chained_records_without_payload(
    supervisor: TaskSupervisor,
) -> None:
    sink = InMemoryAuditSink()
    audit = AuditLog(sink, audit_settings())
    await audit.start(supervisor)
    secret_payload = {"card": "4111-1111-1111-1111", "note": "do not log me"}
    msg = message(payload=secret_payload, metadata={"api_key": "k-123", "trace_id": "t-9"})
    audit.on_decision(msg, delivered(msg))
    audit.on_decision(msg, denied(msg, "policy_denied", "impact_too_high"))
    await audit.aclose()

    first, second = sink.records
    assert (first.seq, second.seq) == (1, 2)
    assert (first.kind, first.outcome, first.stage, first.codes) == (
        "decision",
        "delivered",
        None,
        (),
    )
    assert (second.outcome, second.stage, second.codes) == (
        "denied",
        "policy",
        ("policy_denied", "impact_too_high"),
    )
    assert first.message_id == msg.message_id
    assert (first.tenant_id, first.from_agent, first.to_agent) == ("acme", "planner", "coder")
    assert first.message_type == "command"
    assert first.constitutional_hash == msg.constitutional_hash
    assert first.payload_digest == hashlib.sha256(encode_json(secret_payload)).hexdigest()
    assert first.payload_bytes == msg.payload_size_bytes
    assert first.metadata == {"api_key": REDACTED, "trace_id": "t-9"}
    for record in sink.records:
        stored = record.to_json() + record.stored_json()
        assert b"4111" not in stored
        assert b"do not log me" not in stored
        assert b"k-123" not in stored
    assert verify_chain(sink.records).is_intact


async def test_dead_letters_and_deliberations_are_audited(supervisor: TaskSupervisor) -> None:
    sink = InMemoryAuditSink()
    audit = AuditLog(sink, audit_settings())
    await audit.start(supervisor)
    msg = message()
    audit.on_dead_letter(
        DeadLetter(message=msg, recipient="coder", cause="boom", code="handler_error", attempts=3)
    )
    assert audit.record_deliberation(
        msg,
        outcome="approved",
        reasons=(Reason("deliberation", "human_approved", "ok by alice"),),
        decided_by="alice",
    )
    assert audit.record_deliberation(msg, outcome="timed_out")
    await audit.aclose()

    dead, approved, timed_out = sink.records
    assert (dead.kind, dead.outcome, dead.stage, dead.codes, dead.to_agent) == (
        "dead_letter",
        "dead_lettered",
        "delivery",
        ("handler_error",),
        "coder",
    )
    assert (approved.kind, approved.outcome, approved.codes, approved.actor) == (
        "deliberation",
        "approved",
        ("human_approved",),
        "alice",
    )
    assert (timed_out.outcome, timed_out.stage, timed_out.actor) == (
        "timed_out",
        "deliberation",
        None,
    )
    assert verify_chain(sink.records).is_intact


async def test_on_decision_only_enqueues(supervisor: TaskSupervisor) -> None:
    sink = InMemoryAuditSink()
    audit = AuditLog(sink, audit_settings(batch_size=1000, flush_interval_ms=3_600_000))
    await audit.start(supervisor)
    msg = message()
    audit.on_decision(msg, delivered(msg))
    assert sink.records == []
    assert audit.stats()["queue_depth"] == 1
    assert await audit.flush()
    assert len(sink.records) == 1
    await audit.aclose()


async def test_broadcast_recipients_each_get_a_record(supervisor: TaskSupervisor) -> None:
    sink = InMemoryAuditSink()
    audit = AuditLog(sink, audit_settings())
    await audit.start(supervisor)
    msg = message()
    for recipient in ("a1", "a2", "a3"):
        result = delivered(msg)
        audit.on_decision(
            msg,
            type(result)(msg.message_id, DeliveryStatus.DELIVERED, recipient=recipient),
        )
    await audit.aclose()
    assert [r.to_agent for r in sink.records] == ["a1", "a2", "a3"]
    assert len({r.payload_digest for r in sink.records}) == 1


async def test_a_restarted_log_continues_the_same_chain() -> None:
    sink = InMemoryAuditSink()
    for run in range(3):
        supervisor = TaskSupervisor()
        audit = AuditLog(sink, audit_settings())
        await audit.start(supervisor)
        assert audit.head_seq == run * 5
        for n in range(5):
            msg = message(n)
            audit.on_decision(msg, delivered(msg))
        await audit.aclose()
        await supervisor.aclose()
    assert [r.seq for r in sink.records] == list(range(1, 16))
    assert verify_chain(sink.records).is_intact


async def test_two_writers_on_one_log_never_fork_the_chain(supervisor: TaskSupervisor) -> None:
    sink = InMemoryAuditSink()
    other_sink = InMemoryAuditSink()
    other_sink.records = sink.records  # two connections to one store
    first = AuditLog(sink, audit_settings(batch_size=5))
    second = AuditLog(other_sink, audit_settings(batch_size=5))
    await first.start(supervisor)
    await second.start(supervisor)
    for n in range(40):
        msg = message(n)
        (first if n % 2 else second).on_decision(msg, delivered(msg))
    await first.aclose()
    await second.aclose()
    assert len(sink.records) == 40
    assert verify_chain(sink.records).is_intact
    assert first.stats()["chain_conflicts"] + second.stats()["chain_conflicts"] > 0
    assert first.stats()["discarded"] + second.stats()["discarded"] == 0


class LandsThenTimesOut(InMemoryAuditSink):
    """Stores the batch, then reports a timeout once: a write that landed late."""

    def __init__(self) -> None:
        super().__init__()
        self.failures_left = 1

    async def write_batch(self, items: Sequence[AuditRecord]) -> None:
        await super().write_batch(items)
        if self.failures_left:
            self.failures_left -= 1
            raise TimeoutError("the answer was lost")


async def test_a_retry_of_a_batch_that_landed_is_not_stored_twice(
    supervisor: TaskSupervisor,
) -> None:
    sink = LandsThenTimesOut()
    audit = AuditLog(sink, audit_settings())
    await audit.start(supervisor)
    for n in range(7):
        msg = message(n)
        audit.on_decision(msg, delivered(msg))
    await audit.aclose()
    assert [r.seq for r in sink.records] == list(range(1, 8))
    assert audit.stats()["sink_errors"] == 1
    assert audit.stats()["written"] == 7
    assert verify_chain(sink.records).is_intact


async def test_in_memory_sink_refuses_a_batch_that_does_not_chain_from_its_head() -> None:
    sink = InMemoryAuditSink()
    await sink.open()
    audit = AuditLog(InMemoryAuditSink(), audit_settings())
    msg = message()
    audit.on_decision(msg, delivered(msg))
    audit.on_decision(msg, delivered(msg))
    await audit.flush()
    records = audit.sink.records  # type: ignore[attr-defined]
    with pytest.raises(AuditChainConflictError, match="moved on"):
        await sink.write_batch(records[1:])
    await audit.aclose()


async def test_full_queue_drops_are_counted_not_raised(supervisor: TaskSupervisor) -> None:
    sink = InMemoryAuditSink()
    audit = AuditLog(sink, audit_settings(queue_size=10, batch_size=5))
    await audit.start(supervisor)
    msg = message()
    for _ in range(1000):
        audit.on_decision(msg, delivered(msg))
    assert audit.stats()["dropped"] == 990
    await audit.aclose()
    assert len(sink.records) == 10
    assert verify_chain(sink.records).is_intact


async def test_unstarted_log_opens_its_sink_to_write_on_close() -> None:
    sink = InMemoryAuditSink()
    audit = AuditLog(sink, audit_settings())
    msg = message()
    audit.on_decision(msg, delivered(msg))
    await audit.aclose()
    assert len(sink.records) == 1
    assert sink.is_open is False


async def test_flush_waits_for_writes(supervisor: TaskSupervisor) -> None:
    sink = InMemoryAuditSink()
    audit = AuditLog(sink, audit_settings(flush_interval_ms=1))
    await audit.start(supervisor)
    msg = message()
    audit.on_decision(msg, delivered(msg))
    await wait_until(lambda: len(sink.records) == 1)
    assert audit.head_seq == 1
    assert audit.head_hash == sink.records[0].hash
    await audit.aclose()


def test_settings_validate_the_redaction_pattern_and_stream_key() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not a valid regular expression"):
        AuditSettings(redact_pattern="token|(")
    with pytest.raises(ValidationError, match="stream_key"):
        AuditSettings(stream_key="bad key with spaces")
