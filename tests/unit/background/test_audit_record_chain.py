"""Audit records: canonical hash, redaction, serialisation; chain verification."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from enhanced_agent_bus.background import (
    GENESIS_HASH,
    REDACTED,
    AuditRecord,
    BreakKind,
    Redactor,
    compute_record_hash,
    verify_chain,
)
from enhanced_agent_bus.background._record import seal_record
from enhanced_agent_bus.background._settings import DEFAULT_REDACT_PATTERN
from enhanced_agent_bus.models import encode_json


def chain(count: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    prev = GENESIS_HASH
    for seq in range(1, count + 1):
        record = seal_record(
            seq, "decision", datetime(2025, 1, 1, 12, 0, seq, 1234, tzinfo=UTC),
            f"m{seq:03d}", None, "acme", "planner", "coder", None, "command",
            "delivered" if seq % 2 else "denied", None if seq % 2 else "policy",
            () if seq % 2 else ("policy_denied",), None, "c" * 64, "d" * 64, 10 * seq,
            {"trace": str(seq)}, prev,
        )  # fmt: skip
        records.append(record)
        prev = record.hash
    return records


def test_hash_is_sha256_of_the_canonical_json_and_covers_prev_hash() -> None:
    record = chain(1)[0]
    values = record[:-1]
    assert record.hash == hashlib.sha256(encode_json(values)).hexdigest()
    assert record.canonical_json() == encode_json(values)
    assert orjson.loads(record.canonical_json())[-1] == record.prev_hash
    assert compute_record_hash(record._replace(prev_hash="1" * 64)) != record.hash


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("outcome", "delivered!"),
        ("codes", ("other",)),
        ("metadata", {"trace": "x"}),
        ("payload_bytes", 11),
        ("seq", 2),
        ("timestamp", datetime(2025, 1, 1, 12, 0, 1, 1235, tzinfo=UTC)),
    ],
)
def test_any_field_change_changes_the_hash(field: str, value: Any) -> None:
    record = chain(1)[0]
    assert compute_record_hash(record._replace(**{field: value})) != record.hash


def test_metadata_key_order_does_not_change_the_hash() -> None:
    record = chain(1)[0]._replace(metadata={"b": "2", "a": "1"})
    reordered = record._replace(metadata={"a": "1", "b": "2"})
    assert compute_record_hash(record) == compute_record_hash(reordered)


def test_json_round_trips_and_revalidates() -> None:
    record = chain(3)[2]
    assert AuditRecord.from_json(record.to_json()) == record
    assert AuditRecord.from_stored_json(record.stored_json()) == record
    restored = AuditRecord.from_stored_json(record.stored_json().decode())
    assert compute_record_hash(restored) == record.hash


def test_from_stored_data_rejects_bad_values() -> None:
    record = chain(1)[0]
    with pytest.raises(ValidationError, match="seq"):
        AuditRecord.from_dict({**record.to_dict(), "seq": 0})
    with pytest.raises(ValidationError, match="payload"):
        AuditRecord.from_dict({**record.to_dict(), "payload": {"secret": 1}})
    with pytest.raises(ValidationError, match="hash"):
        AuditRecord.from_stored_json(record.stored_json().replace(record.hash.encode(), b"nope"))
    with pytest.raises(ValueError, match="JSON array of 20 values, not 2 values"):
        AuditRecord.from_stored_json(b"[1, 2]")
    with pytest.raises(ValueError, match="JSON array of 20 values, not dict"):
        AuditRecord.from_stored_json(b"{}")
    with pytest.raises(ValueError, match="invalid literal"):
        AuditRecord.from_stored_json(b"not json")


@pytest.mark.parametrize(
    "key",
    ["token", "X-Auth-Token", "client_secret", "PASSWORD", "db_passwd", "api_key", "API-KEY",
     "apikey", "Authorization", "session_cookie"],
)  # fmt: skip
def test_default_pattern_redacts_secret_looking_keys(key: str) -> None:
    redacted = Redactor(DEFAULT_REDACT_PATTERN).redact({key: "s3cr3t", "trace_id": "t-1"})
    assert redacted == {key: REDACTED, "trace_id": "t-1"}


def test_redaction_pattern_is_configurable_and_output_is_key_sorted() -> None:
    redactor = Redactor(r"^ssn$")
    assert redactor.redact({"ssn": "123", "token": "kept", "a": "1"}) == {
        "a": "1",
        "ssn": REDACTED,
        "token": "kept",
    }
    assert list(redactor.redact({"b": "1", "a": "2"})) == ["a", "b"]
    assert redactor.redact({}) == {}


def test_intact_chain_verifies() -> None:
    records = chain(10)
    report = verify_chain(records)
    assert report.is_intact
    assert (report.records_checked, report.head_seq, report.head_hash) == (
        10,
        10,
        records[-1].hash,
    )


def test_empty_log_verifies() -> None:
    report = verify_chain([])
    assert report.is_intact
    assert (report.records_checked, report.head_hash) == (0, GENESIS_HASH)


def test_edited_record_is_reported_at_its_seq() -> None:
    records = chain(10)
    assert records[4].outcome == "delivered"
    records[4] = records[4]._replace(outcome="denied")  # hash left alone
    report = verify_chain(records)
    assert report.first_break is not None
    assert (report.first_break.kind, report.first_break.seq) == (BreakKind.EDITED, 5)
    assert report.records_checked == 4
    assert "modified" in report.first_break.describe()


def test_deleted_record_is_reported_at_the_next_seq() -> None:
    records = chain(10)
    del records[6]
    report = verify_chain(records)
    assert report.first_break is not None
    assert (report.first_break.kind, report.first_break.seq) == (BreakKind.BROKEN_LINK, 8)
    assert "deleted, inserted or reordered" in report.first_break.detail


def test_swapped_records_are_detected() -> None:
    records = chain(10)
    records[2], records[3] = records[3], records[2]
    report = verify_chain(records)
    assert report.first_break is not None
    assert report.first_break.kind is BreakKind.BROKEN_LINK
    assert report.first_break.position == 2


def test_deleted_first_record_is_a_missing_start() -> None:
    report = verify_chain(chain(5)[1:])
    assert report.first_break is not None
    assert (report.first_break.kind, report.first_break.seq) == (BreakKind.MISSING_START, 2)


def test_rewritten_record_with_recomputed_hash_breaks_the_next_link() -> None:
    records = chain(6)
    edited = records[2]._replace(outcome="approved")
    records[2] = edited._replace(hash=compute_record_hash(edited))
    report = verify_chain(records)
    assert report.first_break is not None
    assert (report.first_break.kind, report.first_break.seq) == (BreakKind.BROKEN_LINK, 4)


def test_anchor_detects_records_cut_off_the_end() -> None:
    records = chain(8)
    anchor = records[-1].hash
    assert verify_chain(records, anchor_hash=anchor).is_intact
    assert verify_chain([*records, *chain(0)], anchor_hash=records[5].hash).is_intact
    report = verify_chain(records[:6], anchor_hash=anchor)
    assert report.first_break is not None
    assert report.first_break.kind is BreakKind.ANCHOR_MISSING


def test_canonical_form_is_a_json_array_of_the_fields_but_hash() -> None:
    record = chain(1)[0]
    values = orjson.loads(record.canonical_json())
    assert isinstance(values, list)
    assert len(values) == len(AuditRecord._fields) - 1
    stored = orjson.loads(record.stored_json())
    assert stored == [*values, record.hash]
    # An untouched stored record checks with sha256 of its canonical part alone.
    assert hashlib.sha256(encode_json(stored[:-1])).hexdigest() == record.hash


def test_sealing_keeps_the_stored_form_it_hashed() -> None:
    from enhanced_agent_bus.background._record import SealedBatch, stored_texts

    records = chain(3)
    assert stored_texts(records) == [record.stored_json() for record in records]
    batch = SealedBatch()
    batch.extend(records)
    batch.stored.extend(b"sentinel" for _ in records)
    assert stored_texts(batch) == [b"sentinel"] * 3
