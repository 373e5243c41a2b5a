"""Static verification with real Z3: satisfiable, contradictions, redundancy, limits."""

from __future__ import annotations

from typing import Any

import pytest
from constraint_helpers import constraints

from enhanced_agent_bus.constitution import load_bundle
from enhanced_agent_bus.constraints import (
    ConstraintSet,
    ConstraintVerificationError,
    Finding,
    Severity,
    VerificationReport,
    load_constraints,
    verify_constraints,
)
from enhanced_agent_bus.errors import ConfigurationError

TRANSFER_VARS = """
    vars:
      action: {field: payload.action, type: String}
      amount: {field: payload.amount, type: Real}
"""


def transfer_rule(cid: str, assertion: str, when: str = 'action == "transfer"') -> str:
    return f"""
  - id: {cid}
    description: rule {cid}
    applies_to: {{message_types: [command], when: '{when}'}}
{TRANSFER_VARS}
    assert: ['{assertion}']
"""


def verify(body: str, data: dict[str, Any] | None = None, **kw: Any) -> VerificationReport:
    return verify_constraints(constraints("constraints:\n" + body), data, **kw)


def only(report: VerificationReport, kind: str) -> Finding:
    found = [f for f in report.findings if f.kind == kind]
    assert len(found) == 1, report.findings
    return found[0]


def test_the_default_constitution_verifies_cleanly() -> None:
    constitution = load_bundle()
    report = verify_constraints(load_constraints(constitution), constitution.data_document())
    assert report.ok
    assert report.findings == ()
    assert report.constraint_count >= 5
    assert report.queries > report.constraint_count


def test_a_consistent_pair_passes() -> None:
    report = verify(transfer_rule("cap", "amount <= 100") + transfer_rule("floor", "amount >= 1"))
    assert report.ok
    assert report.findings == ()


def test_an_unsatisfiable_constraint_is_an_error_naming_it_and_its_assertions() -> None:
    body = """
  - id: impossible
    description: cannot hold
    vars: {x: {field: payload.x, type: Int}, y: {field: payload.y, type: Int}}
    assert: [x > 5, y >= 0, x < 3]
"""
    report = verify(body)
    finding = only(report, "unsatisfiable")
    assert finding.severity is Severity.ERROR
    assert finding.constraint_ids == ("impossible",)
    assert "`x > 5` and `x < 3` cannot hold together" in finding.message
    assert "`y >= 0`" not in finding.message
    with pytest.raises(ConstraintVerificationError, match="impossible") as caught:
        report.raise_for_errors()
    assert caught.value.report is report
    assert isinstance(caught.value, ConfigurationError)


def test_a_contradictory_pair_is_refused_with_the_pair_and_a_witness() -> None:
    report = verify(transfer_rule("cap", "amount <= 100") + transfer_rule("floor", "amount >= 200"))
    finding = only(report, "contradiction")
    assert finding.severity is Severity.ERROR
    assert finding.constraint_ids == ("cap", "floor")
    assert "'cap' and 'floor' can select the same message" in finding.message
    assert "'floor' fails `amount >= 200`" in finding.message
    witness = dict(finding.witness)
    assert witness["message_type"] == "command"
    assert witness["payload.action"] == "'transfer'"
    assert float(witness["payload.amount"]) <= 100
    assert not report.ok


def test_contradictions_are_found_through_shared_fields_not_names() -> None:
    body = """
  - id: whole
    description: n is a whole number above 5
    vars: {n: {field: payload.n, type: Int}}
    assert: [n > 5]
  - id: fraction
    description: the same field read as a Real, below 5.5
    vars: {v: {field: payload.n, type: Real}}
    assert: [v < 5.5]
"""
    finding = only(verify(body), "contradiction")
    assert finding.constraint_ids == ("whole", "fraction")


def test_rules_that_never_select_the_same_message_do_not_contradict() -> None:
    body = transfer_rule("cap", "amount <= 100") + transfer_rule(
        "deploy_floor", "amount >= 200", when='action == "deploy"'
    )
    body += """
  - id: query_rule
    description: only queries
    applies_to: {message_types: [query]}
    vars: {amount: {field: payload.amount, type: Real}}
    assert: [amount >= 500]
"""
    report = verify(body)
    assert report.ok
    assert [f.kind for f in report.findings] == []


def test_a_redundant_constraint_is_warned_with_what_implies_it() -> None:
    report = verify(
        transfer_rule("tight", "amount <= 100") + transfer_rule("loose", "amount <= 200")
    )
    finding = only(report, "redundant")
    assert finding.severity is Severity.WARNING
    assert finding.constraint_ids == ("loose", "tight")
    assert "'loose' is implied by 'tight'" in finding.message
    assert report.ok  # a warning does not refuse the bundle


def test_a_constraint_that_can_never_deny_is_warned() -> None:
    report = verify(transfer_rule("always", "amount <= amount + 1"))
    finding = only(report, "vacuous")
    assert finding.constraint_ids == ("always",)


def test_a_selector_that_never_matches_is_warned() -> None:
    when = 'action == "transfer" and amount > 5 and amount < 3'
    report = verify(transfer_rule("dead", "amount > 0", when=when))
    finding = only(report, "dead_selector")
    assert finding.severity is Severity.WARNING
    assert "amount > 5 and amount < 3" in finding.message


CEILING = """
  - id: ceiling
    description: payload ceiling
    applies_to: {{message_types: [command]}}
    vars: {{size: {{field: message.payload_size_bytes, type: Int}}}}
    assert: ['{assertion}']
    agrees_with: [{{var: size, data: {path}}}]
"""
LIMITS = {"limits": {"max_payload_bytes": {"command": 32768, "query": 1.5}}, "name": "x"}


def test_a_mirrored_limit_that_agrees_passes() -> None:
    body = CEILING.format(assertion="size <= 32768", path="limits.max_payload_bytes.command")
    assert verify(body, LIMITS).findings == ()


def test_a_looser_mirrored_limit_is_an_error_with_a_counterexample() -> None:
    body = CEILING.format(assertion="size <= 40000", path="limits.max_payload_bytes.command")
    finding = only(verify(body, LIMITS), "limit_disagreement")
    assert finding.severity is Severity.ERROR
    assert "beyond the ceiling limits.max_payload_bytes.command = 32768" in finding.message
    assert "allows size up to 40000, e.g. = " in finding.message
    assert 32768 < int(finding.witness["message.payload_size_bytes"]) <= 40000


def test_a_stricter_mirrored_limit_is_an_error() -> None:
    body = CEILING.format(assertion="size < 32768", path="limits.max_payload_bytes.command")
    finding = only(verify(body, LIMITS), "limit_disagreement")
    assert "never allows size = 32768 (its largest is 32767)" in finding.message
    assert "stricter" in finding.message


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("limits.max_payload_bytes.event", "has no 'limits.max_payload_bytes.event'"),
        ("name", "holds 'x', not a number"),
        ("limits.max_payload_bytes.query", "is an Int but"),
    ],
)
def test_mirrored_limits_must_exist_and_be_numbers(path: str, fragment: str) -> None:
    body = CEILING.format(assertion="size <= 32768", path=path)
    finding = only(verify(body, LIMITS), "limit_disagreement")
    assert fragment in finding.message


def test_a_lower_bound_agreement() -> None:
    body = """
  - id: minimum
    description: minimum order
    vars: {qty: {field: payload.qty, type: Int}}
    assert: [qty >= 10]
    agrees_with: [{var: qty, data: limits.min_qty, bound: lower}]
"""
    assert verify(body, {"limits": {"min_qty": 10}}).findings == ()
    finding = only(verify(body, {"limits": {"min_qty": 5}}), "limit_disagreement")
    assert "never allows qty = 5 (its smallest is 10)" in finding.message
    finding = only(verify(body, {"limits": {"min_qty": 20}}), "limit_disagreement")
    assert "allows qty down to 10, e.g. = " in finding.message


def test_payload_ceilings_are_compared_with_the_data_document_without_a_declaration() -> None:
    unconditional = """
  - id: ceiling
    description: payload ceiling
    applies_to: {message_types: [command, query]}
    vars: {size: {field: message.payload_size_bytes, type: Int}}
    assert: [size <= 32768]
"""
    data = {"limits": {"max_payload_bytes": {"command": 32768, "query": 8192}}}
    finding = only(verify(unconditional, data), "limit_disagreement")
    assert "for query messages" in finding.message
    assert "limits.max_payload_bytes.query = 8192" in finding.message
    # no upper bound at all: nothing is restated, nothing to compare
    floor = unconditional.replace("size <= 32768", "size >= 10")
    assert verify(floor, data).ok
    # a conditional bound is a narrower rule, not the limit itself
    conditional = """
  - id: small_transfers
    description: transfers are small
    applies_to: {message_types: [command], when: 'action == "transfer"'}
    vars:
      action: {field: payload.action, type: String}
      size: {field: message.payload_size_bytes, type: Int}
    assert: [size <= 1024]
"""
    assert verify(conditional, data).ok


def test_incompatible_types_on_one_field_are_warned() -> None:
    body = """
  - id: numeric
    description: n as a number
    vars: {n: {field: payload.n, type: Int}}
    assert: [n > 0]
  - id: textual
    description: n as text
    applies_to: {message_types: [query]}
    vars: {n: {field: payload.n, type: String}}
    assert: ['n != ""']
"""
    finding = only(verify(body), "type_conflict")
    assert finding.constraint_ids == ("numeric", "textual")
    assert "payload.n is read as Int by 'numeric' and as String by 'textual'" in finding.message


def test_an_undecidable_query_within_the_timeout_is_an_error() -> None:
    body = """
  - id: cubes
    description: sums of three cubes (famously hard for solvers)
    vars:
      x: {field: payload.x, type: Int}
      y: {field: payload.y, type: Int}
      z: {field: payload.z, type: Int}
    assert: [x * x * x + y * y * y + z * z * z == 42, x > 1000000]
"""
    finding = only(verify(body, timeout_ms=1), "inconclusive")
    assert finding.severity is Severity.ERROR
    assert "within 1 ms" in finding.message


def test_an_empty_set_verifies_trivially() -> None:
    report = verify_constraints(ConstraintSet(()))
    assert report.ok
    assert report.queries == 0
