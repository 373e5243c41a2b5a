"""``agent-bus policy verify [DIR]``: print the static verification report of a bundle.

The lead registers :func:`verify_bundle_command` on the policy Typer app; it is a
plain function so it can be tested without a CLI runner.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..constitution import load_bundle
from ..errors import ConfigurationError
from ._declarations import load_constraints
from ._settings import ConstraintSettings
from ._verify import Finding, Severity, VerificationReport, verify_constraints

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_UNREADABLE = 2


def _finding_lines(finding: Finding) -> list[str]:
    style = "bold red" if finding.severity is Severity.ERROR else "yellow"
    ids = ", ".join(finding.constraint_ids)
    lines = [
        f"[{style}]{finding.severity.value.upper()}[/] [bold]{escape(finding.kind)}[/] "
        f"({escape(ids)}): {escape(finding.message)}"
    ]
    if finding.witness:
        label = "counterexample" if finding.kind == "limit_disagreement" else "witness"
        shown = ", ".join(f"{escape(k)} = {escape(v)}" for k, v in finding.witness.items())
        lines.append(f"    {label}: {shown}")
    return lines


def render_report(report: VerificationReport, console: Console, *, title: str) -> None:
    """Print a verification report: one line per finding, witnesses indented, then a summary."""
    console.print(f"[bold]{escape(title)}[/]")
    for finding in report.findings:
        for line in _finding_lines(finding):
            console.print(line, highlight=False, soft_wrap=True)
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = "[bold green]verified[/]" if report.ok else "[bold red]FAILED[/]"
    console.print(
        f"{verdict}: {report.constraint_count} constraint(s), {errors} error(s), "
        f"{warnings} warning(s); {report.queries} Z3 queries in {report.elapsed_ms:.1f} ms",
        highlight=False,
    )


def verify_bundle_command(
    bundle: Path | None,
    *,
    console: Console | None = None,
    settings: ConstraintSettings | None = None,
) -> int:
    """Verify a constitution bundle's constraints and print the report.

    Args:
        bundle: the bundle directory; None verifies the default constitution.
        console: where to print (a fresh stdout console by default).
        settings: which file to read and Z3's per-query timeout.

    Returns:
        0 when verified (warnings allowed), 1 on verification errors, 2 when the bundle
        or its declarations cannot be read.
    """
    out = console or Console()
    settings = settings or ConstraintSettings()
    try:
        constitution = load_bundle(bundle)
        constraints = load_constraints(constitution, settings.file)
        data = constitution.data_document()
    except ConfigurationError as exc:
        out.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return EXIT_UNREADABLE
    title = f"{constitution.path} (constitution {constitution.hash[:12]})"
    if not len(constraints):
        out.print(f"[bold]{escape(title)}[/]\nno {escape(settings.file)}: nothing to verify")
        return EXIT_OK
    table = Table("constraint", "types", "selector", "assertions", box=None, pad_edge=False)
    for constraint in constraints:
        types = sorted(t.value for t in constraint.message_types)
        table.add_row(
            escape(constraint.id),
            escape(", ".join(types) if len(types) < 8 else "all"),
            escape(constraint.when_text or "-"),
            str(len(constraint.assertions)),
        )
    out.print(table)
    report = verify_constraints(constraints, data, timeout_ms=settings.verify_timeout_ms)
    render_report(report, out, title=title)
    return EXIT_OK if report.ok else EXIT_ERRORS
