"""The ``agent-bus`` command, run in-process with typer's CliRunner."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from enhanced_agent_bus import __version__, load_bundle
from enhanced_agent_bus.cli import app

WIDE = {"COLUMNS": "400"}  # so rich does not wrap the reasons in its tables


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=WIDE)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = tmp_path and the default (relative) audit/metering file, so it lands there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTBUS_AUDIT__SQLITE_PATH")
    monkeypatch.delenv("AGENTBUS_METERING__SQLITE_PATH")
    return tmp_path


def test_version() -> None:
    outcome = run("--version")
    assert outcome.exit_code == 0
    assert outcome.output.strip() == f"agent-bus {__version__}"


def test_help_lists_the_commands() -> None:
    outcome = run("--help")
    assert outcome.exit_code == 0
    for command in ("demo", "bench", "policy", "audit", "constitution", "metering"):
        assert command in outcome.output


def test_demo_reports_outcomes_and_an_audit_log_that_verifies(in_tmp: Path) -> None:
    outcome = run("demo", "--rounds", "3")
    assert outcome.exit_code == 0, outcome.output
    text = outcome.output
    assert re.search(r"│ delivered\s+│\s+\d+ │", text)
    assert re.search(r"│ denied\s+│\s+\d+ │", text)
    assert "policy/policy_denied" in text
    assert 'role "worker" may not send "command" messages to role "planner"' in text
    assert "tenant/cross_tenant" in text
    assert "constitution/hash_stale" in text
    match = re.search(r"audit log: (\S+) \((\d+) records, chain head ([0-9a-f]{16})", text)
    assert match is not None, text
    db = in_tmp / match.group(1)
    assert db.parent == in_tmp
    assert db.is_file()

    verified = run("audit", "verify", "--db", str(db))
    assert verified.exit_code == 0, verified.output
    assert "audit chain intact" in verified.output
    assert f"{match.group(2)} records" in verified.output
    assert f"head hash {match.group(3)}" in verified.output


def test_demo_with_a_metrics_port(in_tmp: Path) -> None:
    outcome = run("demo", "--metrics-port", "0", "--hold-s", "0")
    assert outcome.exit_code == 0, outcome.output
    assert re.search(r"serving metrics on http://127\.0\.0\.1:\d+/metrics", outcome.output)
    assert "audit log:" in outcome.output


def test_policy_test_passes_on_the_default_bundle() -> None:
    outcome = run("policy", "test")
    assert outcome.exit_code == 0, outcome.output
    match = re.search(r"(\d+) passed, 0 failed", outcome.output)
    assert match is not None
    assert int(match.group(1)) > 0
    assert "FAIL" not in outcome.output


def agent(agent_id: str, role: str) -> dict[str, Any]:
    return {"id": agent_id, "tenant_id": "acme", "role": role, "capabilities": []}


def policy_input(
    sender: dict[str, Any], recipient: dict[str, Any] | None, message_type: str, topic: str | None
) -> dict[str, Any]:
    return {
        "sender": sender,
        "recipient": recipient,
        "message": {
            "type": message_type,
            "priority": "normal",
            "tenant_id": "acme",
            "size_bytes": 2,
            "topic": topic,
            "metadata": {},
        },
        "payload": {},
    }


PLANNER, WORKER = agent("planner-1", "planner"), agent("worker-1", "worker")


@pytest.mark.parametrize(
    ("document", "exit_code", "expected"),
    [
        pytest.param(policy_input(PLANNER, WORKER, "command", None), 0, ["ALLOW"], id="allow"),
        pytest.param(
            policy_input(WORKER, PLANNER, "command", None),
            1,
            [
                "DENY",
                'role "worker" may not send "command" messages to role "planner" '
                "(data.roles.worker.send)",
            ],
            id="role-matrix",
        ),
        # The publish rule: a message decided for a topic as a whole (no recipient).
        pytest.param(
            policy_input(WORKER, None, "command", "builds"),
            1,
            ["DENY", 'role "worker" may not publish "command" messages'],
            id="publish-rule",
        ),
        pytest.param(policy_input(WORKER, None, "event", "builds"), 0, ["ALLOW"], id="publish"),
    ],
)
def test_policy_eval_prints_the_decision(
    tmp_path: Path, document: dict[str, Any], exit_code: int, expected: list[str]
) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(orjson.dumps(document))
    outcome = run("policy", "eval", "--input", str(path))
    assert outcome.exit_code == exit_code, outcome.output
    for fragment in expected:
        assert fragment in outcome.output


def test_constitution_hash_matches_the_loaded_bundle() -> None:
    outcome = run("constitution", "hash")
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.output.splitlines()
    assert lines[0] == load_bundle().hash
    assert "  data.json" in lines
    assert "  agentbus/authz.rego" in lines


def test_bench_reports_interleaved_ratios_as_a_table_and_json(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    outcome = run(
        "bench", "-n", "400", "--senders", "10", "--rounds", "2", "--profile", "core",
        "--json", str(report),
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert "floor.queue x10" in outcome.output
    assert "core: request msgs/s vs queue floor:" in outcome.output
    results = orjson.loads(report.read_bytes())
    assert results["rounds"] == 2
    assert len(results["ratios_per_round"]) == 2
    assert set(results["pipelines"]) == {"core"}
    rows = {row["name"]: row for row in results["scenarios"]}
    # Two interleaved rounds of n/rounds requests each add up to n per scenario.
    assert rows["core: request"]["operations"] == 400
    assert rows["floor.queue"]["operations"] == 400
    key = "core: request msgs/s vs queue floor"
    per_round = sorted(ratios[key] for ratios in results["ratios_per_round"])
    assert per_round[0] > 0
    low, high = results["ratio_middle_half"][key]
    assert per_round[0] <= low <= results["ratios"][key] <= high <= per_round[-1]
    assert f"{key}: " in outcome.output
    assert "middle half" in outcome.output


def test_bench_names_an_unknown_profile() -> None:
    outcome = run("bench", "-n", "100", "--profile", "turbo")
    assert outcome.exit_code == 2
    assert "unknown profiles ['turbo']" in outcome.output
