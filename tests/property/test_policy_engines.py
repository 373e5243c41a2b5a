"""Differential property: the compiled RVM program and the interpreter decide alike.

The bus runs the default constitution compiled (about 5x faster); the
interpreter is the reference. On any input - well-formed or not - both must
give the same decision, or both fail.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enhanced_agent_bus.constitution import default_bundle_path, load_bundle
from enhanced_agent_bus.policy import (
    EmbeddedPolicy,
    PolicyDecision,
    PolicyEvaluationError,
    PolicySettings,
    canonical_json,
)

_BUNDLE = load_bundle(default_bundle_path())
COMPILED = EmbeddedPolicy.from_constitution(_BUNDLE, PolicySettings(rego_mode="compiled"))
INTERPRETED = EmbeddedPolicy.from_constitution(_BUNDLE, PolicySettings(rego_mode="interpreted"))

ROLES = st.sampled_from(["planner", "worker", "reviewer", "governance", "auditor", "ghost", ""])
TYPES = st.sampled_from(
    [
        "command",
        "query",
        "response",
        "event",
        "notification",
        "governance_request",
        "governance_response",
        "heartbeat",
        "governance_vote",
    ]
)
TENANTS = st.sampled_from(["acme", "acme-audit", "globex"])
IDS = st.sampled_from(["a-1", "a-2", "planner-1", "reviewer-1"])
ACTIONS = st.sampled_from(
    ["propose", "delegate", "execute", "report", "validate", "approve", "reject", "audit", "", "x"]
)


@st.composite
def agents(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": draw(IDS),
        "tenant_id": draw(TENANTS),
        "role": draw(ROLES),
        "capabilities": sorted(draw(st.sets(st.sampled_from(["plan", "run"])))),
    }


@st.composite
def policy_inputs(draw: st.DrawFn) -> dict[str, Any]:
    sender = draw(agents())
    metadata: dict[str, Any] = {}
    if draw(st.booleans()):
        metadata["action"] = draw(ACTIONS)
    if draw(st.booleans()):
        metadata["proposed_by"] = draw(st.one_of(IDS, st.just(sender["id"]), st.just("")))
    message: dict[str, Any] = {
        "type": draw(TYPES),
        "priority": draw(st.sampled_from(["low", "normal", "high", "critical"])),
        "tenant_id": draw(st.one_of(st.just(sender["tenant_id"]), TENANTS)),
        "size_bytes": draw(st.integers(min_value=0, max_value=70_000)),
        "topic": draw(st.one_of(st.none(), st.just("progress"))),
        "metadata": metadata,
    }
    document: dict[str, Any] = {
        "sender": sender,
        "recipient": draw(st.one_of(st.none(), agents())),
        "message": message,
        "payload": {},
    }
    # Now and then, break the input contract the way a buggy caller might.
    damage = draw(st.sampled_from(["none"] * 6 + ["role", "size", "metadata", "recipient"]))
    if damage == "role":
        del sender["role"]
    elif damage == "size":
        message["size_bytes"] = "big"
    elif damage == "metadata":
        message["metadata"] = "action=approve"
    elif damage == "recipient":
        document["recipient"] = {"id": "r"}
    return document


def _decide(policy: EmbeddedPolicy, raw: bytes) -> PolicyDecision | str:
    try:
        return policy.evaluate_json(raw)
    except PolicyEvaluationError:
        return "error"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_inputs())
def test_compiled_and_interpreted_decide_alike(document: dict[str, Any]) -> None:
    raw = canonical_json(document)
    assert _decide(COMPILED, raw) == _decide(INTERPRETED, raw)


@settings(max_examples=200, deadline=None)
@given(policy_inputs())
def test_every_denial_explains_itself(document: dict[str, Any]) -> None:
    decision = _decide(COMPILED, canonical_json(document))
    assert isinstance(decision, PolicyDecision)
    assert decision.allow == (decision.reasons == ())
