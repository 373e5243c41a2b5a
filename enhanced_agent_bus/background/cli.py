"""``agent-bus audit verify|tail`` and ``agent-bus metering``.

Exit codes of ``audit verify``: 0 the chain is intact, 1 the chain is broken
(the first broken link is printed), 2 the log could not be read at all.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.table import Table

from ._audit_sink import AuditSink
from ._chain import ChainReport, ChainVerifier
from ._errors import AuditLogCorruptError, SinkUnavailableError
from ._metering import MeteringSink, UsageKey, UsageTotals
from ._record import AuditRecord
from ._redis_audit import RedisStreamAuditSink
from ._redis_metering import RedisHashMeteringSink
from ._settings import DEFAULT_AUDIT_STREAM_KEY, DEFAULT_METERING_KEY_PREFIX, DEFAULT_SQLITE_PATH
from ._sqlite_audit import SQLiteAuditSink
from ._sqlite_metering import SQLiteMeteringSink

EXIT_BROKEN: Final = 1
EXIT_UNREADABLE: Final = 2

audit_app = typer.Typer(
    name="audit", help="Verify and inspect the hash-chained audit log.", no_args_is_help=True
)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help=f"SQLite audit log file [default: {DEFAULT_SQLITE_PATH}]"),
]
RedisOption = Annotated[
    str | None, typer.Option("--redis", help="Redis URL of a stream audit log (instead of --db)")
]
StreamOption = Annotated[str, typer.Option("--stream", help="Stream key of the Redis audit log")]


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _audit_reader(db: Path | None, redis_url: str | None, stream: str) -> AuditSink:
    if db is not None and redis_url is not None:
        raise typer.BadParameter("pass either --db FILE or --redis URL, not both")
    if redis_url is not None:
        return RedisStreamAuditSink(redis_url, stream_key=stream)
    return SQLiteAuditSink(db if db is not None else DEFAULT_SQLITE_PATH, read_only=True)


async def _verify(sink: AuditSink, anchor_hash: str | None) -> ChainReport:
    verifier = ChainVerifier(anchor_hash=anchor_hash)
    await sink.open()
    try:
        async for record in sink.iter_records(chunk_size=2000):
            if not verifier.feed(record):
                break
    except AuditLogCorruptError as exc:
        verifier.fail_unreadable(str(exc))
    finally:
        await sink.aclose()
    return verifier.report()


@audit_app.command("verify")
def verify_command(
    db: DbOption = None,
    redis_url: RedisOption = None,
    stream: StreamOption = DEFAULT_AUDIT_STREAM_KEY,
    anchor: Annotated[
        str | None,
        typer.Option("--anchor", help="A head hash printed by an earlier verify; must still be in"),
    ] = None,
) -> None:
    """Walk the hash chain and report the first broken link (exit 1 when broken)."""
    console = _console()
    sink = _audit_reader(db, redis_url, stream)
    try:
        report = asyncio.run(_verify(sink, anchor))
    except SinkUnavailableError as exc:
        console.print(f"[red]cannot read the audit log:[/red] {exc}")
        raise typer.Exit(EXIT_UNREADABLE) from None
    if report.first_break is None:
        console.print(
            f"[green]audit chain intact[/green]: {report.records_checked} records, "
            f"head seq {report.head_seq}, head hash {report.head_hash}"
        )
        return
    console.print(
        f"[red]audit chain BROKEN[/red]: {report.first_break.describe()}\n"
        f"{report.records_checked} records before it verified (last good seq {report.head_seq})"
    )
    raise typer.Exit(EXIT_BROKEN)


async def _tail(sink: AuditSink, count: int) -> list[AuditRecord]:
    await sink.open()
    try:
        return await sink.tail(count)
    finally:
        await sink.aclose()


@audit_app.command("tail")
def tail_command(
    count: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many records")] = 20,
    db: DbOption = None,
    redis_url: RedisOption = None,
    stream: StreamOption = DEFAULT_AUDIT_STREAM_KEY,
) -> None:
    """Show the newest audit records (no payloads are ever stored)."""
    console = _console()
    sink = _audit_reader(db, redis_url, stream)
    try:
        records = asyncio.run(_tail(sink, count))
    except (SinkUnavailableError, AuditLogCorruptError) as exc:
        console.print(f"[red]cannot read the audit log:[/red] {exc}")
        raise typer.Exit(EXIT_UNREADABLE) from None
    if not records:
        console.print("the audit log is empty")
        return
    table = Table(title=f"last {len(records)} audit records")
    for column in ("seq", "time (UTC)", "kind", "outcome", "tenant", "from → to", "type",
                   "stage / codes", "message id", "hash"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for record in records:
        codes = ",".join(record.codes)
        table.add_row(
            str(record.seq),
            record.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            record.kind,
            record.outcome,
            record.tenant_id,
            f"{record.from_agent} → {record.to_agent or record.topic or '*'}",
            record.message_type,
            f"{record.stage or ''} {codes}".strip(),
            record.message_id,
            record.hash[:12],
        )
    console.print(table)


async def _read_totals(sink: MeteringSink) -> dict[UsageKey, UsageTotals]:
    await sink.open()
    try:
        return await sink.read_totals()
    finally:
        await sink.aclose()


def metering_command(
    db: Annotated[Path, typer.Option("--db", help="SQLite file holding metering totals")] = (
        DEFAULT_SQLITE_PATH
    ),
    redis_url: Annotated[
        str | None,
        typer.Option("--redis", help="Redis URL of the metering hashes (instead of --db)"),
    ] = None,
    key_prefix: Annotated[
        str, typer.Option("--key-prefix", help="Key prefix of the Redis metering hashes")
    ] = DEFAULT_METERING_KEY_PREFIX,
) -> None:
    """Print usage totals per tenant, agent, message type and outcome."""
    console = _console()
    sink: MeteringSink = (
        RedisHashMeteringSink(redis_url, key_prefix=key_prefix)
        if redis_url is not None
        else SQLiteMeteringSink(db, read_only=True)
    )
    try:
        totals = asyncio.run(_read_totals(sink))
    except SinkUnavailableError as exc:
        console.print(f"[red]cannot read metering totals:[/red] {exc}")
        raise typer.Exit(EXIT_UNREADABLE) from None
    if not totals:
        console.print("no usage recorded yet")
        return
    table = Table(title="metering totals")
    for column in ("tenant", "agent", "message type", "outcome"):
        table.add_column(column)
    table.add_column("messages", justify="right")
    table.add_column("payload bytes", justify="right")
    for key, usage in sorted(totals.items()):
        table.add_row(*key, f"{usage.messages:,}", f"{usage.payload_bytes:,}")
    table.add_section()
    table.add_row(
        "total",
        "",
        "",
        "",
        f"{sum(u.messages for u in totals.values()):,}",
        f"{sum(u.payload_bytes for u in totals.values()):,}",
    )
    console.print(table)
