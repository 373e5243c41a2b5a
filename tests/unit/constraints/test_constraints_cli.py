"""verify_bundle_command: the report 'agent-bus policy verify [DIR]' prints, and its exit code."""

from __future__ import annotations

import io
from pathlib import Path

from constraint_helpers import write_bundle
from rich.console import Console

from enhanced_agent_bus.constitution import default_bundle_path
from enhanced_agent_bus.constraints.cli import verify_bundle_command


def run(bundle: Path | None) -> tuple[int, str]:
    buffer = io.StringIO()
    code = verify_bundle_command(bundle, console=Console(file=buffer, width=400))
    return code, buffer.getvalue()


def test_the_default_constitution_verifies() -> None:
    code, out = run(None)
    assert code == 0
    assert "spend_within_budget" in out
    assert "verified: 5 constraint(s), 0 error(s), 0 warning(s)" in out
    assert run(default_bundle_path())[0] == 0


def test_errors_print_the_pair_and_witness_and_exit_non_zero(tmp_path: Path) -> None:
    body = """
    constraints:
      - id: cap
        description: at most 100
        applies_to: {when: 'action == "transfer"'}
        vars:
          action: {field: payload.action, type: String}
          amount: {field: payload.amount, type: Real}
        assert: [amount <= 100]
      - id: floor
        description: at least 200
        applies_to: {when: 'action == "transfer"'}
        vars:
          action: {field: payload.action, type: String}
          amount: {field: payload.amount, type: Real}
        assert: [amount >= 200]
      - id: loose
        description: at most 1000
        applies_to: {when: 'action == "transfer"'}
        vars:
          action: {field: payload.action, type: String}
          amount: {field: payload.amount, type: Real}
        assert: [amount <= 1000]
    """
    code, out = run(write_bundle(tmp_path / "b", body))
    assert code == 1
    assert "ERROR contradiction (cap, floor)" in out
    assert "witness: message_type = " in out
    assert "payload.action = 'transfer', payload.amount = " in out
    assert "WARNING redundant (loose, cap)" in out
    assert "FAILED: 3 constraint(s), 1 error(s), 1 warning(s)" in out


def test_limit_disagreements_print_a_counterexample(tmp_path: Path) -> None:
    body = """
    constraints:
      - id: ceiling
        description: command payloads
        applies_to: {message_types: [command]}
        vars: {size: {field: message.payload_size_bytes, type: Int}}
        assert: [size <= 40000]
        agrees_with: [{var: size, data: limits.max_payload_bytes.command}]
    """
    data = {"limits": {"max_payload_bytes": {"command": 32768}}}
    code, out = run(write_bundle(tmp_path / "b", body, data))
    assert code == 1
    assert "counterexample: message_type = command, message.payload_size_bytes = " in out


def test_a_bundle_without_constraints_has_nothing_to_verify(tmp_path: Path) -> None:
    code, out = run(write_bundle(tmp_path / "b", None))
    assert code == 0
    assert "no constraints.yaml: nothing to verify" in out


def test_unreadable_bundles_exit_2_with_the_reason(tmp_path: Path) -> None:
    code, out = run(tmp_path / "missing")
    assert code == 2
    assert "does not exist" in out
    bad = write_bundle(tmp_path / "b", "constraints:\n  - id: x\n")
    code, out = run(bad)
    assert code == 2
    assert "constraint 'x'" in out
    assert "description" in out
