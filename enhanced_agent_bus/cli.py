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
from .constitution import load_bundle
from .demo import DemoReport, run_demo
from .errors import AgentBusError
from .harness import run_harness
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
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _settings() -> BusSettings:
    try:
        return BusSettings()
    except ValueError as exc:
        console.print(f"[red]Invalid AGENTBUS_* settings:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.command()
def demo(
    rounds: Annotated[int, typer.Option(min=1, max=100_000, help="Normal-traffic rounds.")] = 20,
) -> None:
    """Run a two-tenant scenario on embedded defaults and print what happened."""
    report = asyncio.run(run_demo(_settings(), rounds=rounds))
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
    console.print(outcomes)

    denials = Table(title="Denied, by reason (stage/code)")
    denials.add_column("reason")
    denials.add_column("messages", justify="right")
    denials.add_column("example")
    examples: dict[str, str] = {}
    for label, result in report.results:
        if result.reasons and result.status.value == "denied":
            key = f"{result.reasons[0].stage}/{result.reasons[0].code}"
            examples.setdefault(key, f"{label}: {result.reasons[0].message}")
    for key, count in sorted(report.denials.items()):
        denials.add_row(key, str(count), examples[key][:110])
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


@app.command()
def bench(
    n: Annotated[int, typer.Option("-n", min=100, help="Operations per scenario.")] = 20_000,
    senders: Annotated[int, typer.Option(min=1, max=10_000, help="Concurrent senders.")] = 100,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
) -> None:
    """Measure the bus against a plain-asyncio floor in one process."""
    results = asyncio.run(run_harness(n=n, senders=senders, settings=_settings()))
    table = Table(title=f"agent-bus bench (n={n}, pipeline: {' → '.join(results['pipeline'])})")
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
    for name, value in results["ratios"].items():
        console.print(f"{name}: {value:.2f}")
    if json_file is not None:
        json_file.write_text(json.dumps(results, indent=2))
        console.print(f"wrote {json_file}")


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
