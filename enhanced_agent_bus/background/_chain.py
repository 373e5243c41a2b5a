"""Walk an audit hash chain and report the first broken link.

Each record must (1) hash to its stored ``hash`` — otherwise it was edited;
(2) carry the previous record's ``hash`` as ``prev_hash`` and the next
``seq`` — otherwise a record was deleted, inserted or reordered; and (3) the
first record must be ``seq == 1`` chaining from the genesis hash — otherwise
the start of the log is missing.

What a plain hash chain cannot show: records cut off the *end* of the log,
or a log rewritten wholesale by someone who recomputes every hash. Record the
head hash that ``verify`` prints somewhere else (a ticket, another system) and
pass it back later as ``anchor_hash``: the chain must still pass through that
record, which closes both gaps up to the anchor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ._record import GENESIS_HASH, AuditRecord, compute_record_hash


class BreakKind(StrEnum):
    EDITED = "edited"  # the record's content does not match its hash
    BROKEN_LINK = "broken_link"  # prev_hash or seq does not follow the previous record
    MISSING_START = "missing_start"  # the first record is not the genesis record
    ANCHOR_MISSING = "anchor_missing"  # the chain no longer contains the anchored record
    UNREADABLE = "unreadable"  # a stored record cannot be decoded


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place the chain does not hold: where, what kind, and why."""

    kind: BreakKind
    position: int  # 0-based index in the order the records were read
    seq: int | None
    message_id: str | None
    detail: str

    def describe(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else f"position {self.position}"
        return f"{self.kind.value} at {where} (record #{self.position + 1}): {self.detail}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of a verification."""

    records_checked: int
    head_seq: int
    head_hash: str
    first_break: ChainBreak | None

    @property
    def is_intact(self) -> bool:
        return self.first_break is None


class ChainVerifier:
    """Checks records one at a time, so a large log can be streamed through it.

    Example::

        verifier = ChainVerifier()
        for record in records:
            if not verifier.feed(record):
                break
        report = verifier.report()
    """

    def __init__(self, *, anchor_hash: str | None = None) -> None:
        self._anchor_hash = anchor_hash
        self._is_anchor_seen = anchor_hash is None
        self._count = 0
        self._prev_seq = 0
        self._prev_hash = GENESIS_HASH
        self._break: ChainBreak | None = None

    @property
    def is_intact(self) -> bool:
        return self._break is None

    def feed(self, record: AuditRecord) -> bool:
        """Check the next record; False once the chain is broken (later records are ignored)."""
        if self._break is not None:
            return False
        position = self._count
        actual = compute_record_hash(record)
        if actual != record.hash:
            return self._fail(
                BreakKind.EDITED,
                position,
                record,
                f"its content hashes to {actual[:16]}... but it carries {record.hash[:16]}...; "
                "the record was modified after it was written",
            )
        if record.prev_hash != self._prev_hash or record.seq != self._prev_seq + 1:
            if position == 0:
                return self._fail(
                    BreakKind.MISSING_START,
                    position,
                    record,
                    f"the log starts at seq {record.seq}, not at the genesis record (seq 1); "
                    "records before it were deleted",
                )
            return self._fail(
                BreakKind.BROKEN_LINK,
                position,
                record,
                f"it should follow seq {self._prev_seq} (hash {self._prev_hash[:16]}...) but "
                f"chains from {record.prev_hash[:16]}...; a record was deleted, inserted or "
                "reordered here",
            )
        if record.hash == self._anchor_hash:
            self._is_anchor_seen = True
        self._count += 1
        self._prev_seq = record.seq
        self._prev_hash = record.hash
        return True

    def fail_unreadable(self, detail: str) -> None:
        """Record that the next stored record could not be decoded."""
        if self._break is None:
            self._break = ChainBreak(BreakKind.UNREADABLE, self._count, None, None, detail)

    def report(self) -> ChainReport:
        first_break = self._break
        if first_break is None and not self._is_anchor_seen:
            first_break = ChainBreak(
                BreakKind.ANCHOR_MISSING,
                self._count,
                None,
                None,
                f"no record hashes to the anchor {self._anchor_hash!s:.16}...; the chain ends at "
                f"seq {self._prev_seq}, so records were cut off the end or the log was rewritten",
            )
        return ChainReport(self._count, self._prev_seq, self._prev_hash, first_break)

    def _fail(self, kind: BreakKind, position: int, record: AuditRecord, detail: str) -> bool:
        self._break = ChainBreak(kind, position, record.seq, record.message_id, detail)
        return False


def verify_chain(records: Iterable[AuditRecord], *, anchor_hash: str | None = None) -> ChainReport:
    """Verify ``records`` (in stored order) and report the first broken link.

    Args:
        records: the whole log, oldest first.
        anchor_hash: a head hash recorded earlier; the chain must still contain it
            (detects records cut off the end and wholesale rewrites).

    Example::

        report = verify_chain(records)
        if not report.is_intact:
            print(report.first_break.describe())
    """
    verifier = ChainVerifier(anchor_hash=anchor_hash)
    for record in records:
        if not verifier.feed(record):
            break
    return verifier.report()
