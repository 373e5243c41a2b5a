"""``agent-bus policy ...``: run the constitution's Rego tests, evaluate one input.

The lead mounts :data:`policy_app` under the ``agent-bus`` command. Exit codes:
0 success (``eval``: allowed), 1 a test failed (``eval``: denied), 2 the bundle,
the input or the engine is unusable.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from ..constitution import load_bundle
from ..errors import AgentBusError
from ._embedded import EmbeddedPolicy
from ._settings import PolicySettings
from ._testrunner import run_rego_tests

policy_app = typer.Typer(
    help="Test and evaluate the constitution's Rego policy.", no_args_is_help=True
)

EXIT_FAILED = 1
EXIT_UNUSABLE = 2

BundleDir = Annotated[
    Path | None,
    typer.Option(
        "--bundle",
        "-b",
        help="Constitution bundle directory (default: the one shipped with the package).",
        file_okay=False,
    ),
]


@policy_app.command("test")
def run_tests_command(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Bundle directory (default: the shipped constitution).", file_okay=False
        ),
    ] = None,
) -> None:
    """Run every test_* rule of the bundle's *_test.rego files; print pass/fail per test."""
    out = Console(highlight=False, soft_wrap=True)
    try:
        report = run_rego_tests(directory)
    except AgentBusError as exc:
        _fail(str(exc))
    for result in report.results:
        where = f"{result.file}:{result.line}"
        if result.passed:
            out.print(f"[green]PASS[/green] {escape(result.rule)}  [dim]{escape(where)}[/dim]")
        else:
            out.print(
                f"[red]FAIL[/red] {escape(result.rule)}  [dim]{escape(where)}[/dim]  "
                f"{escape(result.failure or '')}"
            )
    if not report.results:
        out.print(f"[red]no test_* rules found in {escape(report.bundle)}[/red]")
        raise typer.Exit(EXIT_FAILED)
    colour = "green" if report.ok else "red"
    out.print(f"[{colour}]{report.passed} passed, {report.failed} failed[/{colour}]")
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@policy_app.command("eval")
def eval_command(
    input_file: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="JSON file holding one policy input document ('-' for stdin)."
        ),
    ],
    bundle: BundleDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Evaluate one policy input and print the decision with its reasons."""
    out = Console(highlight=False, soft_wrap=True)
    policy_input = _read_input(input_file)
    try:
        policy = EmbeddedPolicy.from_constitution(load_bundle(bundle), PolicySettings())
        decision = policy.evaluate(policy_input)
    except AgentBusError as exc:
        _fail(str(exc))
    if as_json:
        out.print_json(
            orjson.dumps({"allow": decision.allow, "reasons": decision.reasons}).decode()
        )
    elif decision.allow:
        out.print("[green]ALLOW[/green]")
    else:
        out.print("[red]DENY[/red]")
        for reason in decision.reasons:
            out.print(f"  - {escape(reason)}")
    if not decision.allow:
        raise typer.Exit(EXIT_FAILED)


def _read_input(input_file: str) -> dict[str, Any]:
    try:
        raw = sys.stdin.buffer.read() if input_file == "-" else Path(input_file).read_bytes()
    except OSError as exc:
        _fail(f"cannot read the input file {input_file!r}: {exc.strerror or exc}")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        _fail(f"{input_file!r} is not JSON: {exc}")
    if not isinstance(document, dict):
        _fail(
            f"{input_file!r} holds a JSON {type(document).__name__}; a policy input is an object "
            "with sender, recipient, message and payload (see policies/README.md)"
        )
    return document


def _fail(message: str) -> NoReturn:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[red]error:[/red] {escape(message)}"
    )
    raise typer.Exit(EXIT_UNUSABLE)
