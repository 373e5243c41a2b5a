"""Stage 5: the constitution's formal constraints (see :mod:`enhanced_agent_bus.constraints`).

Messages a constraint selects must satisfy its assertions. A violation denies
with code ``constraint_violated`` (naming the constraint, the false assertion
and the values); a missing or mistyped field with ``constraint_input``; an
engine that cannot decide (z3 timeout, solver error, overload) with
``constraint_error``. The ``compiled`` engine answers synchronously, so the
pipeline never suspends here; the ``z3`` engine returns an awaitable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from ..constitution import Constitution
from ..constraints import (
    CompiledChecker,
    ConstraintChecker,
    ConstraintDeclarationError,
    ConstraintSet,
    ConstraintSettings,
    VerificationReport,
    Z3Checker,
    load_constraints,
    verify_constraints,
)
from ..models import AgentMessage, Reason
from ._stage import ALLOW, StageContext, Verdict, VerdictKind

logger = logging.getLogger(__name__)

_DEFAULT_FILE = ConstraintSettings().file


class ConstraintStage:
    """Checks each message against the constitution's constraints.

    Build it with :meth:`from_constitution` (or ``await`` :meth:`load`), which
    refuses a bundle whose constraints fail static verification. A bundle
    without a constraints file gives a stage that allows everything for the
    price of one dict lookup.

    Example::

        stage = ConstraintStage.from_constitution(load_bundle(), ConstraintSettings())
        verdict = stage.check(message, StageContext(sender, recipient))
        stage.close()   # releases the z3 engine's threads; a no-op for "compiled"
    """

    name = "constraints"

    def __init__(
        self,
        constraints: ConstraintSet,
        settings: ConstraintSettings | None = None,
        *,
        report: VerificationReport | None = None,
    ) -> None:
        self.settings = settings or ConstraintSettings()
        self.constraints = constraints
        #: The load-time verification report (None when verification was off or not run).
        self.report = report
        checker: ConstraintChecker
        if self.settings.engine == "z3":
            checker = Z3Checker(
                constraints,
                timeout_ms=self.settings.constraint_timeout_ms,
                threads=self.settings.z3_threads,
                max_pending=self.settings.z3_max_pending,
                queue_timeout_ms=self.settings.z3_queue_timeout_ms,
            )
        else:
            checker = CompiledChecker(constraints)
        self._checker = checker
        self.denied_total = 0
        self.violations_total = 0
        self.input_errors_total = 0
        self.engine_errors_total = 0

    @classmethod
    def from_constitution(
        cls, constitution: Constitution, settings: ConstraintSettings | None = None
    ) -> ConstraintStage:
        """Load, verify and compile the bundle's constraints (blocking: Z3 proves the set).

        Raises:
            ConstraintDeclarationError: the declarations file is invalid (a ConfigurationError).
            ConstraintVerificationError: Z3 found errors (a ConfigurationError with the report).
        """
        settings = settings or ConstraintSettings()
        if settings.file != _DEFAULT_FILE and not constitution.has_file(settings.file):
            raise ConstraintDeclarationError(
                f"the bundle {str(constitution.path)!r} has no {settings.file!r}, which the "
                "settings name; fix ConstraintSettings.file or add the file",
                source=settings.file,
            )
        constraints = load_constraints(constitution, settings.file)
        report = None
        if settings.verify_on_load and len(constraints):
            report = verify_constraints(
                constraints,
                constitution.data_document(),
                timeout_ms=settings.verify_timeout_ms,
            )
            report.raise_for_errors()
            for finding in report.warnings:
                logger.warning(
                    "constitution %s constraint warning: %s",
                    constitution.hash[:12],
                    finding.summary(),
                    extra={"stage": cls.name, "constraint_ids": list(finding.constraint_ids)},
                )
        return cls(constraints, settings, report=report)

    @classmethod
    async def load(
        cls, constitution: Constitution, settings: ConstraintSettings | None = None
    ) -> ConstraintStage:
        """:meth:`from_constitution` in a worker thread, so verification never blocks the loop."""
        return await asyncio.to_thread(cls.from_constitution, constitution, settings)

    @property
    def engine(self) -> str:
        return self._checker.engine

    def check(self, message: AgentMessage, ctx: StageContext) -> Verdict | Awaitable[Verdict]:
        reasons = self._checker.check(message, ctx.sender, ctx.recipient)
        if isinstance(reasons, tuple):
            if not reasons:
                return ALLOW
            return self._deny(reasons)
        return self._finish(reasons)

    async def _finish(self, pending: Awaitable[tuple[Reason, ...]]) -> Verdict:
        reasons = await pending
        if not reasons:
            return ALLOW
        return self._deny(reasons)

    def _deny(self, reasons: tuple[Reason, ...]) -> Verdict:
        self.denied_total += 1
        for reason in reasons:
            if reason.code == "constraint_violated":
                self.violations_total += 1
            elif reason.code == "constraint_input":
                self.input_errors_total += 1
            else:
                self.engine_errors_total += 1
        return Verdict(VerdictKind.DENY, reasons)

    def stats(self) -> dict[str, int | float]:
        """Cheap counters for the metrics exporter (read at scrape time)."""
        engine = self._checker.stats()
        report = self.report
        return {
            "constraints_loaded": len(self.constraints),
            "checks_total": engine.get("checks_total", 0),
            "denied_total": self.denied_total,
            "violations_total": self.violations_total,
            "input_errors_total": self.input_errors_total,
            "engine_errors_total": self.engine_errors_total,
            "timeouts_total": engine.get("timeouts_total", 0),
            "overloaded_total": engine.get("overloaded_total", 0),
            "in_flight": engine.get("in_flight", 0),
            "verification_warnings": len(report.warnings) if report is not None else 0,
            "verification_ms": report.elapsed_ms if report is not None else 0.0,
        }

    async def start(self) -> None:
        """Warm the engine before the stage takes traffic (z3: each worker's prepared solver)."""
        await self._checker.warm()

    async def aclose(self) -> None:
        """:meth:`close`, for hosts that retire stages asynchronously."""
        self.close()

    def close(self) -> None:
        """Release the engine (the z3 engine's thread pool) when the stage is replaced.

        Safe while messages are in flight: checks already queued finish, and a late
        check on a closed z3 stage still gets a real answer from a one-off solver.
        """
        self._checker.close()
