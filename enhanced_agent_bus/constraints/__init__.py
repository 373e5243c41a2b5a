"""Formal constraints: a safe expression language, two per-message engines, Z3 verification.

A constitution bundle may declare ``constraints.yaml``: named invariants over
typed variables bound to message fields ("a transfer's amount is within its
budget"). Expressions are parsed by a whitelist parser (never ``eval``) into
one AST that both engines share:

* ``compiled`` (default): plain Python closures, about a microsecond;
* ``z3``: a prepared Z3 solver in a thread pool, with a timeout.

When a constitution loads, Z3 proves the set consistent: each constraint
satisfiable, no two contradicting on a message both select, redundant ones
flagged, limits mirrored from ``data.json`` equal. :func:`verify_plan` checks
an aggregate (a budget) over every branch of a multi-step plan.

Example::

    from enhanced_agent_bus.constraints import load_constraints, verify_constraints

    constraints = load_constraints(constitution)
    verify_constraints(constraints, constitution.data_document()).raise_for_errors()
    reasons = CompiledChecker(constraints).check(message, sender, recipient)
"""

from ._ast import Expr, VarType, unparse
from ._binding import MISSING, BadValue, FieldSource, Participant, parse_field_source
from ._checker import ConstraintChecker
from ._compiled import CompiledChecker
from ._declarations import (
    DEFAULT_CONSTRAINTS_FILE,
    constraints_from_data,
    load_constraints,
    parse_constraints,
)
from ._errors import ConstraintDeclarationError, ConstraintSyntaxError, ConstraintVerificationError
from ._model import Agreement, Assertion, Constraint, ConstraintSet, Variable
from ._parser import parse_expression
from ._plan import PlanCounterexample, PlanStatus, PlanStep, PlanVerification, verify_plan
from ._runtime import CODE_ERROR, CODE_INPUT, CODE_VIOLATED, STAGE
from ._settings import ConstraintEngineName, ConstraintSettings
from ._typecheck import check_types
from ._verify import Finding, Severity, VerificationReport, verify_constraints
from ._z3engine import Z3Checker

__all__ = [
    "CODE_ERROR",
    "CODE_INPUT",
    "CODE_VIOLATED",
    "DEFAULT_CONSTRAINTS_FILE",
    "MISSING",
    "STAGE",
    "Agreement",
    "Assertion",
    "BadValue",
    "CompiledChecker",
    "Constraint",
    "ConstraintChecker",
    "ConstraintDeclarationError",
    "ConstraintEngineName",
    "ConstraintSet",
    "ConstraintSettings",
    "ConstraintSyntaxError",
    "ConstraintVerificationError",
    "Expr",
    "FieldSource",
    "Finding",
    "Participant",
    "PlanCounterexample",
    "PlanStatus",
    "PlanStep",
    "PlanVerification",
    "Severity",
    "VarType",
    "Variable",
    "VerificationReport",
    "Z3Checker",
    "check_types",
    "constraints_from_data",
    "load_constraints",
    "parse_constraints",
    "parse_expression",
    "parse_field_source",
    "unparse",
    "verify_constraints",
    "verify_plan",
]
