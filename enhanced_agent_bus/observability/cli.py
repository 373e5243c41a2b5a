"""``agent-bus observability``: the metric catalogue and a dashboard checker.

Mounted by the lead as ``app.add_typer(observability_app, name="observability")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from ._catalogue import FAMILIES, family_of_sample, sample_names
from ._promql import dashboard_queries, selectors

observability_app = typer.Typer(
    help="Metric catalogue and Grafana dashboard checks.", no_args_is_help=True
)


@observability_app.command("catalogue")
def show_catalogue() -> None:
    """List every agentbus_* metric family: type, labels, where it comes from, help."""
    table = Table(title="agentbus metrics")
    for column in ("family", "type", "labels", "source", "help"):
        table.add_column(column)
    for family in FAMILIES:
        table.add_row(
            ", ".join(sample_names(family)),
            family.kind,
            ", ".join(family.labels) or "-",
            family.source,
            family.help,
        )
    Console().print(table)


def dashboard_problems(path: Path) -> list[str]:
    """Problems of one dashboard file: unknown metrics, unknown labels, bad JSON.

    Raises:
        OSError: if the file cannot be read.
    """
    try:
        dashboard = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        return [f"{path}: not valid JSON ({exc})"]
    problems: list[str] = []
    queries = list(dashboard_queries(dashboard))
    if not queries:
        problems.append(f"{path}: no PromQL expressions found")
    for query in queries:
        for selector in selectors(query.expr):
            family = family_of_sample(selector.metric)
            if family is None:
                problems.append(
                    f"{path.name} {query.where}: metric {selector.metric!r} is not in the "
                    "agentbus catalogue"
                )
                continue
            allowed = set(family.labels) | ({"le"} if family.kind == "histogram" else set())
            for label in sorted(selector.labels - allowed):
                problems.append(
                    f"{path.name} {query.where}: {selector.metric!r} has no label {label!r} "
                    f"(it has {sorted(allowed)})"
                )
    return problems


@observability_app.command("check-dashboards")
def check_dashboards(
    paths: Annotated[
        list[Path], typer.Argument(help="Dashboard JSON files or directories holding them.")
    ],
) -> None:
    """Check that every query of every dashboard names catalogue metrics and labels."""
    console = Console(stderr=True)
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.glob("*.json")))
        elif path.is_file():
            files.append(path)
        else:
            console.print(f"[red]{path}: no such file or directory[/red]")
            raise typer.Exit(2)
    if not files:
        console.print("[red]no dashboard JSON files found[/red]")
        raise typer.Exit(2)
    problems = [problem for file in files for problem in dashboard_problems(file)]
    for problem in problems:
        console.print(f"[red]{problem}[/red]")
    if problems:
        raise typer.Exit(1)
    Console().print(f"{len(files)} dashboard(s) OK: every query names catalogue metrics")
