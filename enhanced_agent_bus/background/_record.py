"""The audit record, its canonical hash, and metadata redaction.

A record never holds a payload: only ``payload_digest`` (SHA-256 of the
payload's orjson encoding, the same bytes ``max_payload_bytes`` measures) and
``payload_bytes``. Metadata values whose key matches the redaction pattern
are replaced by ``"[REDACTED]"`` before anything is hashed or stored.

The hash chain: ``hash = sha256(canonical JSON of every field except hash)``,
and ``prev_hash`` is the previous record's ``hash`` (64 zeros for the first
record, ``seq == 1``). The canonical JSON is a JSON *array* of the 19 field
values in declaration order (``seq`` first, ``prev_hash`` last), encoded by
:func:`~enhanced_agent_bus.models.encode_json` (orjson: no whitespace,
timestamps as ISO-8601 UTC with ``Z``), with metadata keys sorted. Sinks store
that array with the hash appended (:meth:`AuditRecord.stored_json`), so a
record is encoded once, while it is sealed; anyone can check an untouched
record by hashing its stored array without the last element. Verification
recomputes the canonical form from the parsed values, so any store that gives
the field values back yields the same hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final, NamedTuple

import orjson
from pydantic import Field, TypeAdapter

from ..models import encode_json

GENESIS_HASH: Final = "0" * 64
REDACTED: Final = "[REDACTED]"
_HEX64: Final = r"^[0-9a-f]{64}$"
_REDACTION_CACHE_SIZE: Final = 4096


class AuditRecord(NamedTuple):
    """One audited decision, dead letter or deliberation outcome (immutable).

    ``kind`` is ``"decision"``, ``"dead_letter"`` or ``"deliberation"``;
    ``outcome`` is the delivery status (``delivered``, ``denied``,
    ``deliberating``, ``dead_lettered``) or the deliberation outcome
    (``approved``, ``denied``, ``timed_out``...). ``stage`` and ``codes`` say why.

    A NamedTuple rather than a pydantic model: the flush task seals tens of
    thousands per second from values it produced itself, and a pydantic model
    or frozen dataclass costs 5x more to build. Records read back from a
    store go through :meth:`from_json` / :meth:`from_dict`, which validate
    every field and reject unknown ones.
    """

    seq: Annotated[int, Field(ge=1)]
    kind: Annotated[str, Field(min_length=1, max_length=32)]
    timestamp: datetime
    message_id: str
    correlation_id: str | None
    tenant_id: str
    from_agent: str
    to_agent: str | None
    topic: str | None
    message_type: str
    outcome: str
    stage: str | None
    codes: tuple[str, ...]
    actor: str | None
    constitutional_hash: str
    payload_digest: Annotated[str, Field(pattern=_HEX64)]
    payload_bytes: Annotated[int, Field(ge=0)]
    metadata: dict[str, str]
    prev_hash: Annotated[str, Field(pattern=_HEX64)]
    hash: Annotated[str, Field(pattern=_HEX64)]

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, hash last (JSON-ready apart from ``timestamp``)."""
        body = dict(zip(AuditRecord._fields, self, strict=True))
        body["metadata"] = dict(sorted(self.metadata.items()))
        return body

    def to_json(self) -> bytes:
        """The record (hash included) as one JSON object, for people and other tools."""
        return encode_json(self.to_dict())

    def canonical_json(self) -> bytes:
        """The exact bytes ``hash`` is the SHA-256 of: a JSON array of every field but hash."""
        return encode_json(canonical_values(self))

    def stored_json(self) -> bytes:
        """How sinks store a record: the canonical array with ``hash`` appended (20 values)."""
        return encode_json((*canonical_values(self), self.hash))

    @classmethod
    def from_stored_json(cls, data: bytes | str) -> AuditRecord:
        """Validate what :meth:`stored_json` produced.

        Raises:
            ValueError: not a JSON array of 20 values, or a field fails validation
                (pydantic's ``ValidationError`` and orjson's ``JSONDecodeError`` are
                both ``ValueError``).
        """
        return cls.from_values(orjson.loads(data))

    @classmethod
    def from_values(cls, values: object) -> AuditRecord:
        """Validate a decoded stored record (a list of the 20 field values in order)."""
        if not isinstance(values, list) or len(values) != len(AuditRecord._fields):
            shape = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
            raise ValueError(
                f"expected a JSON array of {len(AuditRecord._fields)} values, not {shape}"
            )
        return _RECORD_ADAPTER.validate_python(dict(zip(AuditRecord._fields, values, strict=True)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRecord:
        """Validate stored values by name (raises pydantic's ``ValidationError``)."""
        return _RECORD_ADAPTER.validate_python(data)

    @classmethod
    def from_json(cls, data: bytes | str) -> AuditRecord:
        """Parse and validate what :meth:`to_json` wrote (raises pydantic's ``ValidationError``)."""
        return _RECORD_ADAPTER.validate_json(data)


class SealedBatch(list[AuditRecord]):
    """Records as the audit log just sealed them, with each one's :meth:`~AuditRecord.stored_json`.

    Sealing encodes every record once to hash it; keeping those bytes lets a
    sink store them without encoding again. A sink given a plain sequence
    calls ``stored_json()`` itself.
    """

    __slots__ = ("stored",)

    def __init__(self) -> None:
        super().__init__()
        self.stored: list[bytes] = []


def stored_texts(records: Sequence[AuditRecord]) -> list[bytes]:
    """Each record's stored JSON, reusing what sealing computed when it can."""
    if isinstance(records, SealedBatch) and len(records.stored) == len(records):
        return records.stored
    return [record.stored_json() for record in records]


_RECORD_ADAPTER: Final = TypeAdapter(AuditRecord)
#: Every field but ``hash``, in the order the canonical JSON lists them.
_BODY_FIELDS: Final = AuditRecord._fields[:-1]
_METADATA: Final = AuditRecord._fields.index("metadata")


def canonical_values(record: AuditRecord) -> tuple[Any, ...]:
    """Every field except ``hash``, in order, metadata key-sorted: what the hash covers."""
    values: tuple[Any, ...] = record[:-1]
    metadata = record.metadata
    if list(metadata) != sorted(metadata):
        values = (*values[:_METADATA], dict(sorted(metadata.items())), *values[_METADATA + 1 :])
    return values


def compute_record_hash(record: AuditRecord) -> str:
    """The hash ``record`` should carry, recomputed from its fields."""
    return hashlib.sha256(encode_json(canonical_values(record))).hexdigest()


def seal_record(
    seq: int,
    kind: str,
    timestamp: datetime,
    message_id: str,
    correlation_id: str | None,
    tenant_id: str,
    from_agent: str,
    to_agent: str | None,
    topic: str | None,
    message_type: str,
    outcome: str,
    stage: str | None,
    codes: tuple[str, ...],
    actor: str | None,
    constitutional_hash: str,
    payload_digest: str,
    payload_bytes: int,
    metadata: dict[str, str],
    prev_hash: str,
) -> AuditRecord:
    """Hash the given field values and return the sealed record (no validation).

    ``metadata`` must already be redacted and key-sorted. The values come from
    this process, so validation is skipped; that is what keeps sealing cheap.
    """
    values = (
        seq, kind, timestamp, message_id, correlation_id, tenant_id, from_agent, to_agent,
        topic, message_type, outcome, stage, codes, actor, constitutional_hash,
        payload_digest, payload_bytes, metadata, prev_hash,
    )  # fmt: skip
    return AuditRecord(*values, hashlib.sha256(encode_json(values)).hexdigest())


def stored_from_canonical(canonical: bytes, record_hash: str) -> bytes:
    """The stored form (canonical array + hash) without encoding the record again."""
    return b'%s,"%s"]' % (canonical[:-1], record_hash.encode())


def payload_digest(encoded_payload: bytes) -> str:
    return hashlib.sha256(encoded_payload).hexdigest()


def timestamp_from_epoch(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


class Redactor:
    """Replaces metadata values whose key matches ``pattern`` (searched, case-insensitive).

    The result is sorted by key, the order the canonical form needs.

    Example::

        Redactor(r"token|secret").redact({"api_token": "abc", "trace": "t1"})
        # {"api_token": "[REDACTED]", "trace": "t1"}
    """

    __slots__ = ("_is_secret", "_pattern")

    def __init__(self, pattern: str) -> None:
        self._pattern = re.compile(pattern, re.IGNORECASE)
        # Metadata keys repeat across messages; remember the verdict per key (bounded).
        self._is_secret: dict[str, bool] = {}

    def redact(self, metadata: Mapping[str, str]) -> dict[str, str]:
        if not metadata:
            return {}
        is_secret = self.is_secret
        return {
            key: (REDACTED if is_secret(key) else value) for key, value in sorted(metadata.items())
        }

    def is_secret(self, key: str) -> bool:
        verdict = self._is_secret.get(key)
        if verdict is None:
            verdict = self._pattern.search(key) is not None
            if len(self._is_secret) >= _REDACTION_CACHE_SIZE:
                self._is_secret.clear()
            self._is_secret[key] = verdict
        return verdict
