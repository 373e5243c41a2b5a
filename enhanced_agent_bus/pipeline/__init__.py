"""The validation pipeline: one :class:`ValidationStage` protocol, one module per stage.

Stages run cheapest first; the first denial stops the run and says why.
"""

from ._admission import AdmissionStage
from ._constitution import ConstitutionalHashStage
from ._constraints import ConstraintStage
from ._pipeline import Pipeline, StageTimer
from ._policy import PolicyStage
from ._stage import ALLOW, StageContext, ValidationStage, Verdict, VerdictKind
from ._tenant import TenantIsolationStage, cross_tenant_rules

__all__ = [
    "ALLOW",
    "AdmissionStage",
    "ConstitutionalHashStage",
    "ConstraintStage",
    "Pipeline",
    "PolicyStage",
    "StageContext",
    "StageTimer",
    "TenantIsolationStage",
    "ValidationStage",
    "Verdict",
    "VerdictKind",
    "cross_tenant_rules",
]
