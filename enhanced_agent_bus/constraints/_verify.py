"""Static verification of a constraint set with Z3, run when a constitution loads.

What is proved, for messages of every type each constraint selects:

* **satisfiable** - some selected message passes each constraint; otherwise the
  constraint denies everything it selects (error, with the clashing assertions);
* **dead selector** - the selector matches no message at all (warning);
* **contradiction** - two constraints that can select the same message can
  never both hold on it (error, with a witness message both select);
* **redundant** - everything a constraint would deny is already denied by
  others, or it can never deny at all (warning, naming the implying set);
* **limits agree** - a constraint's bound equals the data document's number it
  mirrors: each ``agrees_with`` entry, and any unconditional payload-size bound
  against ``limits.max_payload_bytes.<type>`` (error, with a witness);
* **type conflicts** - one field bound with incompatible types (warning).

Z3 answers each query within ``timeout_ms``; an undecided satisfiability or
agreement query is an error (a constitution that cannot be checked is not
loaded), an undecided contradiction or redundancy query is a warning.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any, Final

import z3

from ..models import MessageType
from ._ast import VarType
from ._errors import ConstraintVerificationError
from ._model import Agreement, Constraint, ConstraintSet
from ._symbolic import SymbolicMessage, format_witness_value, lookup_data
from ._z3terms import decode_value, rational_value

DEFAULT_VERIFY_TIMEOUT_MS: Final = 5_000
PAYLOAD_LIMITS_PATH: Final = "limits.max_payload_bytes"
_UNBOUNDED_PROBE: Final = 2**62


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of static verification."""

    severity: Severity
    kind: str
    constraint_ids: tuple[str, ...]
    message: str
    witness: Mapping[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        ids = " & ".join(repr(i) for i in self.constraint_ids)
        return f"[{self.kind}] {ids}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """Every finding of one verification run, errors first."""

    findings: tuple[Finding, ...]
    constraint_count: int
    queries: int
    elapsed_ms: float

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raises:
        ConstraintVerificationError: the report has at least one error.
        """
        if self.errors:
            raise ConstraintVerificationError(self)


class _Verifier:
    def __init__(self, constraints: ConstraintSet, data: Mapping[str, Any], timeout_ms: int):
        self.constraints = constraints
        self.data = data
        self.ctx = z3.Context()
        self.symbolic = SymbolicMessage(self.ctx)
        self.solver = z3.Solver(ctx=self.ctx)
        self.solver.set("timeout", timeout_ms)
        self.timeout_ms = timeout_ms
        self.queries = 0
        self.findings: list[Finding] = []
        self.selects = {c.id: self.symbolic.selects(c) for c in constraints}
        self.holds = {c.id: self.symbolic.holds(c) for c in constraints}
        self._axioms_added = 0

    def check(self, *formulas: z3.BoolRef, assumptions: Sequence[z3.BoolRef] = ()) -> Any:
        """Solve ``formulas`` in a pushed scope; returns (result, model or core)."""
        self.queries += 1
        axioms = self.symbolic.axioms
        if len(axioms) > self._axioms_added:
            # Terms (and their axioms) are created lazily; axioms hold in every scope.
            self.solver.add(*axioms[self._axioms_added :])
            self._axioms_added = len(axioms)
        self.solver.push()
        try:
            self.solver.add(*formulas)
            result = self.solver.check(*assumptions)
            if result == z3.sat:
                return result, self.solver.model()
            if result == z3.unsat:
                return result, self.solver.unsat_core()
            return result, self.solver.reason_unknown()
        finally:
            self.solver.pop()

    def add(
        self,
        severity: Severity,
        kind: str,
        ids: Sequence[str],
        message: str,
        witness: Mapping[str, str] | None = None,
    ) -> None:
        self.findings.append(Finding(severity, kind, tuple(ids), message, dict(witness or {})))

    def undecided(self, severity: Severity, ids: Sequence[str], what: str, why: object) -> None:
        self.add(
            severity,
            "inconclusive",
            ids,
            f"Z3 could not decide {what} within {self.timeout_ms} ms ({why}); simplify the "
            "constraint or raise verify_timeout_ms",
        )

    # ── the checks ───────────────────────────────────────────────────────────

    def satisfiable(self, constraint: Constraint) -> bool:
        cid = constraint.id
        result, detail = self.check(self.selects[cid])
        if result == z3.unsat:
            self.add(
                Severity.WARNING,
                "dead_selector",
                [cid],
                f"selects no message at all (its selector `{constraint.when_text}` can never "
                "hold); it never applies, so fix or remove it",
            )
            return False
        if result != z3.sat:
            self.undecided(Severity.ERROR, [cid], "whether the selector can hold", detail)
            return False
        trackers = [z3.Bool(f"assert#{i}", self.ctx) for i in range(len(constraint.assertions))]
        tracked = [
            z3.Implies(t, self.symbolic.assertion(constraint, i), self.ctx)
            for i, t in enumerate(trackers)
        ]
        result, detail = self.check(self.selects[cid], *tracked, assumptions=trackers)
        if result == z3.sat:
            return True
        if result == z3.unsat:
            core = {str(t) for t in detail}
            clashing = [
                f"`{a.text}`" for i, a in enumerate(constraint.assertions) if f"assert#{i}" in core
            ]
            self.add(
                Severity.ERROR,
                "unsatisfiable",
                [cid],
                "no message it selects can satisfy it, so it denies every one: "
                f"{' and '.join(clashing) or 'its assertions'} cannot hold together",
            )
        else:
            self.undecided(Severity.ERROR, [cid], "whether it can be satisfied", detail)
        return False

    def contradiction(self, first: Constraint, second: Constraint) -> None:
        a, b = first.id, second.id
        both = z3.And(self.selects[a], self.selects[b])
        result, detail = self.check(both)
        if result == z3.unsat:
            return  # they never select the same message
        if result != z3.sat:
            self.undecided(Severity.WARNING, [a, b], "whether they select a common message", detail)
            return
        result, detail = self.check(both, self.holds[a], self.holds[b])
        if result == z3.sat:
            return
        if result != z3.unsat:
            self.undecided(Severity.WARNING, [a, b], "whether they contradict", detail)
            return
        # A witness: a message both select that satisfies the first, so the second denies it.
        result, model = self.check(both, self.holds[a])
        if result != z3.sat:
            result, model = self.check(both)
        witness = self.symbolic.witness(model, (first, second)) if result == z3.sat else {}
        failing = []
        if result == z3.sat:
            for index, assertion in enumerate(second.assertions):
                value = model.eval(self.symbolic.assertion(second, index), model_completion=True)
                if z3.is_false(value):
                    failing.append(f"`{assertion.text}`")
        detail_text = f"; on the witness, {b!r} fails {', '.join(failing)}" if failing else ""
        self.add(
            Severity.ERROR,
            "contradiction",
            [a, b],
            f"{a!r} and {b!r} can select the same message but can never both hold on it, so "
            f"every such message is denied{detail_text}",
            witness,
        )

    def redundancy(self, constraint: Constraint, others: Sequence[Constraint]) -> None:
        cid = constraint.id
        trackers = {z3.Bool(f"keep#{o.id}", self.ctx): o for o in others}
        tracked = [z3.Implies(t, self.symbolic.permits(o), self.ctx) for t, o in trackers.items()]
        result, detail = self.check(
            self.selects[cid], z3.Not(self.holds[cid]), *tracked, assumptions=list(trackers)
        )
        if result == z3.sat:
            return
        if result != z3.unsat:
            self.undecided(Severity.WARNING, [cid], "whether it is redundant", detail)
            return
        core = {str(t) for t in detail}
        implied_by = [o.id for t, o in trackers.items() if str(t) in core]
        if not implied_by:
            self.add(
                Severity.WARNING,
                "vacuous",
                [cid],
                "can never deny a message: its assertions hold for every message it selects",
            )
            return
        self.add(
            Severity.WARNING,
            "redundant",
            [cid, *implied_by],
            f"{cid!r} is implied by {', '.join(repr(i) for i in implied_by)}: every message it "
            "would deny is already denied by them; remove it or state what it adds",
        )

    def agreement(
        self,
        constraint: Constraint,
        agreement: Agreement,
        *,
        only_type: MessageType | None = None,
        implicit: bool = False,
    ) -> None:
        cid = constraint.id
        variable = constraint.variables[agreement.var]
        try:
            limit = lookup_data(self.data, agreement.data_path)
        except KeyError as exc:
            self.add(
                Severity.ERROR,
                "limit_disagreement",
                [cid],
                f"agrees_with names data path {agreement.data_path!r}, but the data document "
                f"has no {exc.args[0]!r}; add the limit to data.json or fix the path",
            )
            return
        if isinstance(limit, bool) or not isinstance(limit, int | float):
            self.add(
                Severity.ERROR,
                "limit_disagreement",
                [cid],
                f"data path {agreement.data_path!r} holds {limit!r}, not a number",
            )
            return
        exact_limit = Fraction(repr(limit)) if isinstance(limit, float) else Fraction(limit)
        if variable.type is VarType.INT and exact_limit.denominator != 1:
            self.add(
                Severity.ERROR,
                "limit_disagreement",
                [cid],
                f"{agreement.var!r} is an Int but {agreement.data_path} is {limit!r}",
            )
            return
        term = self.symbolic.term(variable)
        bound = rational_value(exact_limit, self.ctx)
        if variable.type is VarType.INT:
            bound = z3.IntVal(exact_limit.numerator, self.ctx)
        scope = [self.selects[cid], self.holds[cid]]
        if only_type is not None:
            scope.append(self.symbolic.is_type(only_type))
        upper = agreement.bound == "upper"
        where = f" for {only_type.value} messages" if only_type is not None else ""
        if implicit:
            probe = term > _UNBOUNDED_PROBE if upper else term < -_UNBOUNDED_PROBE
            result, _ = self.check(*scope, probe)
            if result == z3.sat:
                return  # no bound on this side: the constraint does not restate the limit
        beyond = term > bound if upper else term < bound
        result, detail = self.check(*scope, beyond)
        shown = format_witness_value(exact_limit)
        if result == z3.sat:
            value = format_witness_value(decode_value(detail.eval(term, model_completion=True)))
            extreme = self.extreme(scope, term, upper)
            reach = f"{'up' if upper else 'down'} to {extreme}, e.g. " if extreme else ""
            self.add(
                Severity.ERROR,
                "limit_disagreement",
                [cid],
                f"allows {agreement.var} {reach}= {value}{where}, beyond the "
                f"{'ceiling' if upper else 'floor'} {agreement.data_path} = {shown} in the data "
                "document; make the two agree",
                self.symbolic.witness(detail, (constraint,)),
            )
            return
        if result != z3.unsat:
            self.undecided(Severity.ERROR, [cid], f"agreement with {agreement.data_path}", detail)
            return
        result, detail = self.check(*scope, term == bound)
        if result == z3.unsat:
            extreme = self.extreme(scope, term, upper)
            reach = f" (its {'largest' if upper else 'smallest'} is {extreme})" if extreme else ""
            self.add(
                Severity.ERROR,
                "limit_disagreement",
                [cid],
                f"never allows {agreement.var} = {shown}{where}{reach}, which "
                f"{agreement.data_path} allows: the constraint is stricter than the data "
                "document; make the two agree",
            )
        elif result != z3.sat:
            self.undecided(Severity.ERROR, [cid], f"agreement with {agreement.data_path}", detail)

    def extreme(self, scope: Sequence[z3.BoolRef], term: z3.ExprRef, upper: bool) -> str | None:
        """The largest (smallest) value of ``term`` under ``scope``, when Z3 finds one."""
        optimizer = z3.Optimize(ctx=self.ctx)
        optimizer.set("timeout", self.timeout_ms)
        optimizer.add(*self.symbolic.axioms, *scope)
        handle = optimizer.maximize(term) if upper else optimizer.minimize(term)
        self.queries += 1
        if optimizer.check() != z3.sat:
            return None
        value = handle.value()
        if not (z3.is_int_value(value) or z3.is_rational_value(value)):
            return None  # unbounded, or a supremum that is not attained
        return format_witness_value(decode_value(value))

    def implicit_payload_limits(self, constraint: Constraint) -> None:
        if constraint.when is not None:
            return  # a conditional bound is a narrower rule, not a restatement of the limit
        limits = self.data.get("limits", {})
        table = limits.get("max_payload_bytes") if isinstance(limits, Mapping) else None
        if not isinstance(table, Mapping):
            return
        declared = {a.var for a in constraint.agreements}
        for name, variable in constraint.variables.items():
            if name in declared or [s.text for s in variable.sources] != [
                "message.payload_size_bytes"
            ]:
                continue
            for message_type in sorted(constraint.message_types):
                if message_type.value in table:
                    self.agreement(
                        constraint,
                        Agreement(name, f"{PAYLOAD_LIMITS_PATH}.{message_type.value}"),
                        only_type=message_type,
                        implicit=True,
                    )

    def type_conflicts(self) -> None:
        seen: dict[str, tuple[VarType, str]] = {}
        for constraint in self.constraints:
            for variable in constraint.variables.values():
                for source in variable.sources:
                    previous = seen.get(source.text)
                    if previous is None:
                        seen[source.text] = (variable.type, constraint.id)
                        continue
                    kind, owner = previous
                    if kind is variable.type or (kind.is_numeric and variable.type.is_numeric):
                        continue
                    self.add(
                        Severity.WARNING,
                        "type_conflict",
                        [owner, constraint.id],
                        f"{source.text} is read as {kind} by {owner!r} and as {variable.type} "
                        f"by {constraint.id!r}; one of them denies every message that has it",
                    )

    def run(self) -> None:
        self.type_conflicts()
        alive = [c for c in self.constraints if self.satisfiable(c)]
        for first, second in itertools.combinations(alive, 2):
            if first.message_types & second.message_types:
                self.contradiction(first, second)
        contradicted = {
            i for f in self.findings if f.kind == "contradiction" for i in f.constraint_ids
        }
        for constraint in alive:
            for agreement in constraint.agreements:
                self.agreement(constraint, agreement)
            self.implicit_payload_limits(constraint)
            if constraint.id in contradicted:
                continue
            others = [
                o
                for o in alive
                if o.id != constraint.id and o.message_types & constraint.message_types
            ]
            self.redundancy(constraint, others)


def verify_constraints(
    constraints: ConstraintSet,
    data: Mapping[str, Any] | None = None,
    *,
    timeout_ms: int = DEFAULT_VERIFY_TIMEOUT_MS,
) -> VerificationReport:
    """Prove the constraint set consistent (see the module docstring for what is checked).

    Blocks while Z3 works (about a millisecond per query); from async code run it
    with ``await asyncio.to_thread(verify_constraints, ...)``. It uses a private
    Z3 context, so concurrent calls are safe.

    Example::

        report = verify_constraints(load_constraints(c), c.data_document())
        report.raise_for_errors()

    Args:
        constraints: the set to verify.
        data: the bundle's data document (for ``agrees_with`` and payload limits).
        timeout_ms: Z3's limit per query.
    """
    started = time.perf_counter()
    if not constraints.constraints:
        return VerificationReport((), 0, 0, 0.0)
    verifier = _Verifier(constraints, data or {}, timeout_ms)
    verifier.run()
    ordered = sorted(verifier.findings, key=lambda f: (f.severity is not Severity.ERROR, f.kind))
    return VerificationReport(
        tuple(ordered),
        len(constraints),
        verifier.queries,
        (time.perf_counter() - started) * 1000,
    )
