"""``run_rego_tests`` and the ``policy`` CLI sub-app (test, eval)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from enhanced_agent_bus.constitution import Constitution
from enhanced_agent_bus.errors import ConfigurationError
from enhanced_agent_bus.policy import run_rego_tests
from enhanced_agent_bus.policy.cli import policy_app

runner = CliRunner()

BROKEN_TEST = """package agentbus.broken_test

import data.agentbus.authz
import data.agentbus.fixtures

# test_in_a_comment is not a test
test_planner_may_command_planner if {
	msg := fixtures.message("command", {})
	authz.allow with input as fixtures.direct(fixtures.planner, fixtures.planner, msg)
}

test_passing_one if {
	not authz.allow with input as {}
}

test_engine_error if {
	to_number("not a number") == 1
}
"""


def test_default_constitution_tests_all_pass(constitution: Constitution) -> None:
    report = run_rego_tests(constitution)
    assert report.ok
    assert report.failed == 0
    assert report.passed >= 40
    files = {result.file for result in report.results}
    modules = ("authz", "input", "roles", "governance", "limits", "tenancy", "separation")
    for module in (*modules, "constitution"):
        assert f"agentbus/{module}_test.rego" in files


def test_failing_tests_are_reported_per_test(bundle_copy: Path) -> None:
    (bundle_copy / "agentbus" / "broken_test.rego").write_text(BROKEN_TEST)
    report = run_rego_tests(bundle_copy)
    outcome = {r.name: r for r in report.results if r.package == "agentbus.broken_test"}
    assert set(outcome) == {
        "test_planner_may_command_planner",
        "test_passing_one",
        "test_engine_error",
    }
    assert outcome["test_passing_one"].passed
    assert not outcome["test_planner_may_command_planner"].passed
    assert outcome["test_planner_may_command_planner"].failure == "undefined"
    assert outcome["test_planner_may_command_planner"].line == 7
    assert "could not parse string as number" in (outcome["test_engine_error"].failure or "")
    assert report.failed == 2
    assert not report.ok


def test_a_bundle_without_tests_is_not_ok(tmp_path: Path) -> None:
    (tmp_path / "authz.rego").write_text("package a\n\nallow := true\n")
    report = run_rego_tests(tmp_path)
    assert report.results == ()
    assert not report.ok


def test_broken_test_module_is_a_load_error(bundle_copy: Path) -> None:
    (bundle_copy / "agentbus" / "bad_test.rego").write_text("package bad_test\n\ntest_x if {\n")
    with pytest.raises(ConfigurationError, match=r"bad_test\.rego:\d+"):
        run_rego_tests(bundle_copy)


def test_cli_test_passes_on_the_default_constitution() -> None:
    result = runner.invoke(policy_app, ["test"])
    assert result.exit_code == 0, result.output
    assert "PASS data.agentbus.authz_test.test_separation_no_agent_validates_its_own_proposal" in (
        result.output
    )
    assert "0 failed" in result.output
    assert "FAIL" not in result.output


def test_cli_test_fails_on_a_broken_test(bundle_copy: Path) -> None:
    (bundle_copy / "agentbus" / "broken_test.rego").write_text(BROKEN_TEST)
    result = runner.invoke(policy_app, ["test", str(bundle_copy)])
    assert result.exit_code == 1
    assert "FAIL data.agentbus.broken_test.test_planner_may_command_planner" in result.output
    assert "PASS data.agentbus.broken_test.test_passing_one" in result.output
    assert "2 failed" in result.output


def test_cli_test_without_tests_fails(tmp_path: Path) -> None:
    (tmp_path / "authz.rego").write_text("package a\n\nallow := true\n")
    result = runner.invoke(policy_app, ["test", str(tmp_path)])
    assert result.exit_code == 1
    assert "no test_* rules found" in result.output


def test_cli_test_on_a_missing_directory_is_unusable(tmp_path: Path) -> None:
    result = runner.invoke(policy_app, ["test", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def _input_file(tmp_path: Path, **message: object) -> Path:
    document = {
        "sender": {"id": "planner-1", "tenant_id": "acme", "role": "planner", "capabilities": []},
        "recipient": {"id": "worker-1", "tenant_id": "acme", "role": "worker", "capabilities": []},
        "message": {
            "type": "command",
            "priority": "normal",
            "tenant_id": "acme",
            "size_bytes": 20,
            "topic": None,
            "metadata": {},
            **message,
        },
        "payload": {},
    }
    path = tmp_path / "input.json"
    path.write_bytes(orjson.dumps(document))
    return path


def test_cli_eval_allow(tmp_path: Path) -> None:
    result = runner.invoke(policy_app, ["eval", "--input", str(_input_file(tmp_path))])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "ALLOW"


def test_cli_eval_deny_prints_every_reason(tmp_path: Path) -> None:
    path = _input_file(tmp_path, priority="critical", size_bytes=40_000)
    result = runner.invoke(policy_app, ["eval", "--input", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == "DENY"
    assert any("exceeds the 32768-byte ceiling" in line for line in lines)
    assert any("may not send CRITICAL priority" in line for line in lines)


def test_cli_eval_json_and_bundle_option(tmp_path: Path, bundle_copy: Path) -> None:
    path = _input_file(tmp_path, priority="critical")
    result = runner.invoke(
        policy_app, ["eval", "--input", str(path), "--bundle", str(bundle_copy), "--json"]
    )
    assert result.exit_code == 1
    assert orjson.loads(result.output) == {
        "allow": False,
        "reasons": [
            'role "planner" may not send CRITICAL priority messages (data.critical_priority_roles)'
        ],
    }


def test_cli_eval_reads_stdin(tmp_path: Path) -> None:
    raw = _input_file(tmp_path).read_bytes()
    result = runner.invoke(policy_app, ["eval", "--input", "-"], input=raw)
    assert result.exit_code == 0
    assert "ALLOW" in result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"{oops", "is not JSON"), (b"[1]", "holds a JSON list")],
)
def test_cli_eval_rejects_bad_input_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(content)
    result = runner.invoke(policy_app, ["eval", "--input", str(path)])
    assert result.exit_code == 2
    assert expected in result.output


def test_cli_eval_missing_input_file(tmp_path: Path) -> None:
    result = runner.invoke(policy_app, ["eval", "--input", str(tmp_path / "none.json")])
    assert result.exit_code == 2
    assert "cannot read the input file" in result.output


def test_cli_eval_broken_bundle_names_file_and_line(tmp_path: Path, bundle_copy: Path) -> None:
    (bundle_copy / "agentbus" / "roles.rego").write_text(
        "package agentbus.authz\n\ndeny contains\n"
    )
    result = runner.invoke(
        policy_app, ["eval", "--input", str(_input_file(tmp_path)), "--bundle", str(bundle_copy)]
    )
    assert result.exit_code == 2
    assert "agentbus/roles.rego:" in result.output
