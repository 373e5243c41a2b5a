"""Errors of the constraint subsystem, all under :class:`~enhanced_agent_bus.ConfigurationError`.

::

    ConfigurationError (ValueError)
      ├─ ConstraintDeclarationError       constraints.yaml has the wrong shape
      │    └─ ConstraintSyntaxError       an expression does not parse or does not type-check
      └─ ConstraintVerificationError      Z3 found the declarations inconsistent (has the report)

A bad constraint file is a bad constitution: the bus refuses the bundle and
keeps the constitution it had.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ._verify import VerificationReport


def _where(source: str | None, constraint_id: str | None, field: str | None) -> str:
    parts = [source or "constraints"]
    if constraint_id is not None:
        parts.append(f"constraint {constraint_id!r}")
    if field is not None:
        parts.append(f"field {field!r}")
    return ", ".join(parts)


class ConstraintDeclarationError(ConfigurationError):
    """A constraint declaration is missing a field, has a wrong value, or repeats an id."""

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        constraint_id: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(f"{_where(source, constraint_id, field)}: {problem}")
        self.problem = problem
        self.source = source
        self.constraint_id = constraint_id
        self.field = field


class ConstraintSyntaxError(ConstraintDeclarationError):
    """An expression is outside the constraint language or does not type-check.

    ``column`` is 1-based and counts characters from the start of ``expression``.
    """

    def __init__(
        self,
        problem: str,
        *,
        expression: str,
        column: int,
        source: str | None = None,
        constraint_id: str | None = None,
        field: str | None = None,
    ) -> None:
        shown = expression if len(expression) <= 200 else expression[:197] + "..."
        line_start = expression.rfind("\n", 0, max(column - 1, 0)) + 1
        line_no = expression.count("\n", 0, line_start) + 1
        column_in_line = column - line_start
        position = (
            f"column {column}" if line_no == 1 else f"line {line_no}, column {column_in_line}"
        )
        super().__init__(
            f"cannot use expression {shown!r}: {problem} (at {position})",
            source=source,
            constraint_id=constraint_id,
            field=field,
        )
        self.cause = problem
        self.expression = expression
        self.column = column

    def in_context(
        self, *, source: str | None, constraint_id: str | None, field: str | None
    ) -> ConstraintSyntaxError:
        """The same error, naming where the expression was declared."""
        return ConstraintSyntaxError(
            self.cause,
            expression=self.expression,
            column=self.column,
            source=source,
            constraint_id=constraint_id,
            field=field,
        )


class ConstraintVerificationError(ConfigurationError):
    """Static verification found errors; ``report`` holds every finding with its witness."""

    def __init__(self, report: VerificationReport) -> None:
        errors = report.errors
        listed = "; ".join(f.summary() for f in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(
            f"the constitution's constraints failed verification with {len(errors)} error(s): "
            f"{listed}{more}. Fix the constraints (run 'agent-bus policy verify DIR' for "
            "witnesses) before loading this bundle."
        )
        self.report = report
