from __future__ import annotations

import pytest

from enhanced_agent_bus.policy import (
    ALLOWED,
    PolicyDecision,
    PolicyDecisionCodec,
    PolicyEvaluationError,
)
from enhanced_agent_bus.policy._decision import UNEXPLAINED_DENIAL


def test_allow_without_reasons_is_the_shared_allowed_decision() -> None:
    decision = PolicyDecision.from_result({"allow": True, "deny": set()}, source="rule")
    assert decision is ALLOWED
    assert decision.allow is True
    assert decision.reasons == ()


def test_deny_reasons_are_sorted_so_equal_decisions_compare_equal() -> None:
    first = PolicyDecision.from_result({"allow": False, "deny": {"b", "a"}}, source="rule")
    second = PolicyDecision.from_result({"allow": False, "deny": ["a", "b"]}, source="rule")
    assert first == second == PolicyDecision(allow=False, reasons=("a", "b"))


def test_a_stated_reason_to_deny_wins_over_allow_true() -> None:
    decision = PolicyDecision.from_result({"allow": True, "deny": ["too big"]}, source="rule")
    assert decision == PolicyDecision(allow=False, reasons=("too big",))


def test_denial_without_reasons_gets_an_explanation() -> None:
    decision = PolicyDecision.from_result({"allow": False, "deny": []}, source="rule")
    assert decision == PolicyDecision(allow=False, reasons=(UNEXPLAINED_DENIAL,))


def test_missing_deny_key_is_an_empty_set() -> None:
    assert PolicyDecision.from_result({"allow": True}, source="rule") is ALLOWED


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, "undefined"),
        ("allow", "returned str"),
        ({"allow": "yes", "deny": []}, "allow='yes', not a boolean"),
        ({"allow": 1, "deny": []}, "allow=1, not a boolean"),
        ({"deny": []}, "allow=None, not a boolean"),
        ({"allow": False, "deny": "reason"}, "not a set of strings"),
        ({"allow": False, "deny": {"reason": True}}, "not a set of strings"),
        ({"allow": False, "deny": [1]}, "deny reason 1 that is not a string"),
    ],
)
def test_answers_that_break_the_contract_are_errors(result: object, expected: str) -> None:
    with pytest.raises(PolicyEvaluationError, match=r"data\.x\.decision") as info:
        PolicyDecision.from_result(result, source="data.x.decision")
    assert expected in str(info.value)


def test_reasons_are_bounded() -> None:
    decision = PolicyDecision.from_result(
        {"allow": False, "deny": [f"r{i:03}" for i in range(100)] + ["x" * 5000]},
        source="rule",
    )
    assert len(decision.reasons) == 65
    assert decision.reasons[-1] == "... and 37 more reasons"


def test_bytes_round_trip() -> None:
    decision = PolicyDecision(allow=False, reasons=("a", "ü"))
    assert PolicyDecision.from_bytes(decision.to_bytes()) == decision
    codec = PolicyDecisionCodec()
    assert codec.decode(codec.encode(ALLOWED)) == ALLOWED


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff garbage",
        b'{"allow": true',
        b"[]",
        b'{"allow": "true", "reasons": []}',
        b'{"allow": true, "reasons": "none"}',
        b'{"allow": true, "reasons": [1]}',
        b'{"allow": true}',
        b'{"allow": true, "reasons": [], "extra": 1}',
    ],
)
def test_garbage_bytes_are_rejected(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not an encoded policy decision"):
        PolicyDecision.from_bytes(raw)
