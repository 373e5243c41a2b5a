"""The ``agent-bus`` command."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .background.cli import audit_app, metering_command
from .constitution import load_bundle
from .constraints.cli import verify_bundle_command
from .demo import DemoReport, run_demo
from .errors import AgentBusError
from .harness import PROFILES, run_harness
from .observability import configure_logging
from .observability.cli import observability_app
from .policy.cli import policy_app
from .settings import BusSettings

app = typer.Typer(
    name="agent-bus",
    help="An in-process message bus for AI agents with constitutional validation.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


def _version(value: bool) -> None:
    if value:
        console.print(f"agent-bus {__version__}")
        raise typer.Exit


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO.")] = False,
    json_logs: Annotated[
        bool, typer.Option("--json-logs", help="One JSON object per log line.")
    ] = False,
) -> None:
    configure_logging(logging.INFO if verbose else logging.WARNING, json=json_logs)


def _settings() -> BusSettings:
    try:
        return BusSettings()
    except ValueError as exc:
        console.print(f"[red]Invalid AGENTBUS_* settings:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.command()
def demo(
    rounds: Annotated[int, typer.Option(min=1, max=100_000, help="Normal-traffic rounds.")] = 20,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=0, max=65_535, help="Serve /metrics, /healthz, /readyz on this port."),
    ] = None,
    hold_s: Annotated[
        float,
        typer.Option(min=0, help="With --metrics-port: keep serving this long after the scenario."),
    ] = 0.0,
) -> None:
    """Run a two-tenant scenario on embedded defaults and print what happened."""
    settings = _settings()
    if hold_s and metrics_port is None and settings.observability.metrics_port is None:
        console.print(
            "[red]--hold-s needs --metrics-port (or AGENTBUS_OBSERVABILITY__METRICS_PORT)[/red]"
        )
        raise typer.Exit(2)

    def announce(port: int) -> None:
        console.print(f"serving metrics on http://127.0.0.1:{port}/metrics (/healthz, /readyz)")

    try:
        report = asyncio.run(
            run_demo(
                settings,
                rounds=rounds,
                metrics_port=metrics_port,
                hold_s=hold_s,
                on_serving=announce,
            )
        )
    except AgentBusError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    _print_demo(report)


def _print_demo(report: DemoReport) -> None:
    console.print(
        f"[bold]enhanced-agent-bus demo[/bold]: {report.agents} agents in {report.tenants} "
        f"tenants, constitution {report.constitutional_hash[:16]}…"
    )
    outcomes = Table(title="Outcomes", show_lines=False)
    outcomes.add_column("outcome")
    outcomes.add_column("messages", justify="right")
    for status, count in sorted(report.outcomes.items()):
        outcomes.add_row(status, str(count))
    outcomes.add_row("dead letters", str(len(report.dead_letters)))

    for reason, count in sorted(report.denials.items()):
        outcomes.add_row(f"  denied: {reason}", str(count))
    console.print(outcomes)

    denials = Table(title="Denied messages, and why", expand=True)
    denials.add_column("scenario", no_wrap=True)
    denials.add_column("stage/code", no_wrap=True)
    denials.add_column("reason", ratio=1)
    for label, result in report.results:
        if result.status.value == "denied" and result.reasons:
            first = result.reasons[0]
            denials.add_row(label, f"{first.stage}/{first.code}", first.message)
    console.print(denials)

    if report.dead_letters:
        letters = Table(title="Dead letters")
        letters.add_column("recipient")
        letters.add_column("code")
        for recipient, code in report.dead_letters:
            letters.add_row(recipient, code)
        console.print(letters)

    latency = report.latency_percentiles_us()
    console.print(
        "send latency (µs): " + ", ".join(f"{name} {value:.1f}" for name, value in latency.items())
    )
    if report.replies:
        console.print(f"request/reply: {report.replies[0]}")
    if report.audit_path:
        console.print(
            f"audit log: {report.audit_path} ({report.audit_records} records, chain head "
            f"{report.audit_head[:16]}…) — check it with: agent-bus audit verify --db "
            f"{report.audit_path}"
        )


@app.command()
def bench(
    n: Annotated[int, typer.Option("-n", min=100, help="Operations per scenario.")] = 20_000,
    senders: Annotated[int, typer.Option(min=1, max=10_000, help="Concurrent senders.")] = 100,
    profile: Annotated[
        list[str] | None,
        typer.Option(help=f"Bus profiles to run (default: all of {', '.join(PROFILES)})."),
    ] = None,
    rounds: Annotated[
        int,
        typer.Option(
            min=1,
            max=200,
            help="Interleaved rounds per profile; ratios are the median over rounds.",
        ),
    ] = 10,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
) -> None:
    """Measure the bus against a plain-asyncio floor in one process."""
    profiles = tuple(profile) if profile else PROFILES
    try:
        results = asyncio.run(
            run_harness(
                n=n, senders=senders, settings=_settings(), profiles=profiles, rounds=rounds
            )
        )
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    table = Table(
        title=f"agent-bus bench (n={n} per scenario, {senders} concurrent senders, {rounds} rounds)"
    )
    for column in ("scenario", "msgs/s", "p50 µs", "p99 µs", "p99.9 µs"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for s in results["scenarios"]:
        table.add_row(
            s["name"],
            f"{s['msgs_per_s']:,.0f}",
            f"{s['p50_us']:.1f}",
            f"{s['p99_us']:.1f}",
            f"{s['p999_us']:.1f}",
        )
    console.print(table)
    for name, stages in results["pipelines"].items():
        console.print(f"pipeline {name}: {' → '.join(stages)}")
    for name, value in results["ratios"].items():
        low, high = results["ratio_middle_half"][name]
        console.print(
            f"{name}: {value:.2f} (median of {rounds} rounds; middle half {low:.2f} to {high:.2f})"
        )
    if json_file is not None:
        json_file.write_text(json.dumps(results, indent=2))
        console.print(f"wrote {json_file}")


@policy_app.command("verify")
def policy_verify(
    bundle: Annotated[
        Path | None, typer.Argument(help="Bundle directory (default: shipped).")
    ] = None,
) -> None:
    """Prove the bundle's constraints consistent with Z3; print witnesses and counterexamples."""
    raise typer.Exit(verify_bundle_command(bundle))


app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")
app.command("metering", help="Print per-tenant usage totals from the metering sink.")(
    metering_command
)
app.add_typer(observability_app, name="observability")

constitution_app = typer.Typer(help="Inspect constitution bundles.", no_args_is_help=True)
app.add_typer(constitution_app, name="constitution")


@constitution_app.command("hash")
def constitution_hash(
    bundle: Annotated[
        Path | None, typer.Argument(help="Bundle directory (default: shipped).")
    ] = None,
) -> None:
    """Print a bundle's constitutional hash and its files."""
    try:
        constitution = load_bundle(bundle)
    except AgentBusError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(constitution.hash)
    for rel_path in sorted(constitution.files):
        console.print(f"  {rel_path}", style="dim")


def main() -> None:
    app()
