"""Build the configured policy engine for a constitution."""

from __future__ import annotations

from ..constitution import Constitution
from ._embedded import EmbeddedPolicy
from ._engine import PolicyEngine
from ._executor import InlinePolicyEngine, ProcessPolicyEngine, ThreadPolicyEngine
from ._opa import OpaPolicyEngine
from ._settings import PolicySettings


def create_policy_engine(constitution: Constitution, settings: PolicySettings) -> PolicyEngine:
    """The engine ``settings`` asks for, loaded from ``constitution``.

    With ``backend="embedded"`` the bundle's Rego is loaded and checked here, so
    a broken bundle fails now, before the bus swaps it in. With ``backend="opa"``
    the remote server evaluates its own copy of the bundle; nothing is
    evaluated locally (a local engine might reject Rego that OPA accepts).

    Call ``await engine.start()`` before the first evaluation and
    ``await engine.aclose()`` when done.

    Raises:
        PolicyLoadError: the bundle's policy does not load (embedded backend).
        ConfigurationError: the data document has the wrong shape.
    """
    if settings.backend == "opa":
        return OpaPolicyEngine(settings)
    policy = EmbeddedPolicy.from_constitution(constitution, settings)
    if settings.executor == "thread":
        return ThreadPolicyEngine(policy, settings)
    if settings.executor == "process":
        return ProcessPolicyEngine(policy, settings)
    return InlinePolicyEngine(policy)
