from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from enhanced_agent_bus.constitution import Constitution, load_bundle
from enhanced_agent_bus.errors import ConfigurationError
from enhanced_agent_bus.policy import (
    EmbeddedPolicy,
    PolicyDecision,
    PolicyEvaluationError,
    PolicyLoadError,
    PolicySettings,
)

HEAD = """package agentbus.authz

default allow := false

allow if count(deny) == 0

decision := {"allow": allow, "deny": deny}
"""

GOOD = (
    HEAD
    + """
deny contains "commands are closed" if input.message.type == "command"
"""
)


def write_bundle(root: Path, modules: dict[str, str], data: dict[str, Any] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in modules.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "data.json").write_bytes(orjson.dumps(data or {}))
    return root


def load(root: Path, **settings: Any) -> EmbeddedPolicy:
    return EmbeddedPolicy.from_constitution(load_bundle(root), PolicySettings(**settings))


def message_input(message_type: str = "event", **message: Any) -> dict[str, Any]:
    return {
        "sender": {"id": "p1", "tenant_id": "acme", "role": "planner", "capabilities": []},
        "recipient": None,
        "message": {
            "type": message_type,
            "priority": "normal",
            "tenant_id": "acme",
            "size_bytes": 2,
            "topic": None,
            "metadata": {},
            **message,
        },
        "payload": {},
    }


@pytest.mark.parametrize("mode", ["compiled", "interpreted"])
def test_minimal_bundle_decides(tmp_path: Path, mode: str) -> None:
    policy = load(write_bundle(tmp_path, {"authz.rego": GOOD}), rego_mode=mode)
    assert policy.mode == mode
    assert policy.evaluate(message_input("event")) == PolicyDecision(allow=True)
    assert policy.evaluate(message_input("command")) == PolicyDecision(
        allow=False, reasons=("commands are closed",)
    )


def test_tests_and_non_rego_files_are_not_loaded(tmp_path: Path) -> None:
    root = write_bundle(
        tmp_path,
        {
            "authz.rego": GOOD,
            "authz_test.rego": "package broken_test\n\nthis is not rego\n",
            "README.md": "# notes\n",
        },
    )
    assert load(root).evaluate(message_input("event")).allow


def test_syntax_error_names_file_line_and_engine_message(tmp_path: Path) -> None:
    broken = HEAD + "\ndeny contains msg if {\n\tmsg := \n}\n"
    root = write_bundle(tmp_path, {"agentbus/broken.rego": broken})
    with pytest.raises(PolicyLoadError) as info:
        load(root)
    error = info.value
    assert error.file == f"{root.resolve()}/agentbus/broken.rego"
    assert (error.line, error.column) == (10, 9)
    assert error.engine_message.startswith("expecting")
    text = str(error)
    assert f"{root.resolve()}/agentbus/broken.rego:10:9: Rego module does not load" in text
    assert "msg := " in text  # the source excerpt
    assert "Stack backtrace" not in text
    assert isinstance(error, ConfigurationError)


def test_unknown_import_names_file_and_line(tmp_path: Path) -> None:
    root = write_bundle(
        tmp_path, {"authz.rego": HEAD.replace("\ndefault", "\nimport future.magic\n\ndefault")}
    )
    with pytest.raises(PolicyLoadError) as info:
        load(root)
    assert info.value.line == 3
    assert "invalid import" in info.value.engine_message


@pytest.mark.parametrize("mode", ["compiled", "interpreted"])
def test_unknown_function_is_a_load_error(tmp_path: Path, mode: str) -> None:
    policy = HEAD + '\ndeny contains "x" if no_such_builtin(input.message.type)\n'
    root = write_bundle(tmp_path, {"authz.rego": policy})
    with pytest.raises(PolicyLoadError) as info:
        load(root, rego_mode=mode)
    assert info.value.file == f"{root.resolve()}/authz.rego"
    assert info.value.line == 9
    assert "no_such_builtin" in str(info.value)


def test_conflicting_rules_are_a_load_error(tmp_path: Path) -> None:
    policy = (
        "package agentbus.authz\n\n"
        'decision := {"allow": true, "deny": []}\n\n'
        'decision := {"allow": false, "deny": []}\n'
    )
    root = write_bundle(tmp_path, {"authz.rego": policy})
    with pytest.raises(PolicyLoadError) as info:
        load(root)
    assert info.value.line == 5
    assert "conflicts" in info.value.engine_message


def test_non_boolean_allow_is_refused_at_load(tmp_path: Path) -> None:
    policy = 'package agentbus.authz\n\ndecision := {"allow": "yes", "deny": set()}\n'
    with pytest.raises(PolicyLoadError, match="allow='yes', not a boolean"):
        load(write_bundle(tmp_path, {"authz.rego": policy}))


@pytest.mark.parametrize("mode", ["compiled", "interpreted"])
def test_non_boolean_allow_for_some_inputs_fails_at_evaluation(tmp_path: Path, mode: str) -> None:
    policy = (
        "package agentbus.authz\n\n"
        'default decision := {"allow": true, "deny": set()}\n\n'
        'decision := {"allow": "maybe", "deny": set()} if input.message.type == "query"\n'
    )
    loaded = load(write_bundle(tmp_path, {"authz.rego": policy}), rego_mode=mode)
    assert loaded.evaluate(message_input("event")).allow
    with pytest.raises(PolicyEvaluationError, match="allow='maybe', not a boolean"):
        loaded.evaluate(message_input("query"))


@pytest.mark.parametrize("mode", ["compiled", "interpreted"])
def test_undefined_decision_for_some_inputs_fails_at_evaluation(tmp_path: Path, mode: str) -> None:
    policy = (
        "package agentbus.authz\n\n"
        'decision := {"allow": true, "deny": set()} if input.message.type == "heartbeat"\n'
    )
    loaded = load(write_bundle(tmp_path, {"authz.rego": policy}), rego_mode=mode)
    assert loaded.evaluate(message_input("heartbeat")).allow
    with pytest.raises(PolicyEvaluationError, match="undefined for this input"):
        loaded.evaluate(message_input("event"))


def test_engine_runtime_error_fails_at_evaluation(tmp_path: Path) -> None:
    policy = HEAD + '\ndeny contains "amount" if to_number(input.message.metadata.amount) > 10\n'
    loaded = load(write_bundle(tmp_path, {"authz.rego": policy}), rego_mode="interpreted")
    assert loaded.evaluate(message_input(metadata={"amount": "3"})).allow
    with pytest.raises(PolicyEvaluationError, match="could not parse string as number"):
        loaded.evaluate(message_input(metadata={"amount": "three"}))


def test_missing_decision_rule_is_a_load_error(tmp_path: Path) -> None:
    root = write_bundle(tmp_path, {"authz.rego": "package agentbus.authz\n\nallow := true\n"})
    with pytest.raises(
        PolicyLoadError, match=r"defines no decision rule data\.agentbus\.authz\.decision"
    ):
        load(root)


def test_decision_rule_is_configurable(tmp_path: Path) -> None:
    policy = 'package acme.gate\n\nanswer := {"allow": true, "deny": []}\n'
    loaded = load(
        write_bundle(tmp_path, {"gate.rego": policy}), decision_rule="data.acme.gate.answer"
    )
    assert loaded.evaluate(message_input()).allow


def test_bundle_without_modules_is_a_load_error(tmp_path: Path) -> None:
    root = write_bundle(tmp_path, {"authz_test.rego": "package t\n"})
    with pytest.raises(PolicyLoadError, match="no Rego modules"):
        load(root)


def test_module_that_is_not_utf8_is_a_load_error(tmp_path: Path) -> None:
    root = write_bundle(tmp_path, {"authz.rego": GOOD})
    (root / "latin1.rego").write_bytes(b"package x\n# caf\xe9\n")
    with pytest.raises(PolicyLoadError, match=r"latin1\.rego.*not UTF-8"):
        load(root)


def test_data_document_of_wrong_shape_is_a_load_error(tmp_path: Path) -> None:
    root = write_bundle(tmp_path, {"authz.rego": GOOD}, data={"limits": {"max_payload_bytes": []}})
    with pytest.raises(ConfigurationError, match=r"at limits\.max_payload_bytes"):
        load(root)


def test_constitution_errors_refuse_the_bundle(bundle_copy: Path) -> None:
    data_path = bundle_copy / "data.json"
    data = orjson.loads(data_path.read_bytes())
    data["roles"]["auditor"]["actions"] = ["audit", "approve"]
    data_path.write_bytes(orjson.dumps(data))
    with pytest.raises(PolicyLoadError) as info:
        load(bundle_copy)
    text = str(info.value)
    assert "the constitution contradicts itself" in text
    assert 'role "auditor" holds the powers of several branches ["audit", "judicial"]' in text


def test_constitution_errors_rule_may_be_absent_or_disabled(tmp_path: Path) -> None:
    root = write_bundle(tmp_path, {"authz.rego": GOOD})
    assert load(root).evaluate(message_input()).allow
    assert load(root, constitution_errors_rule=None).evaluate(message_input()).allow


def test_default_constitution_loads_in_both_modes(constitution: Constitution) -> None:
    compiled = EmbeddedPolicy.from_constitution(constitution)
    interpreted = EmbeddedPolicy.from_constitution(
        constitution, PolicySettings(rego_mode="interpreted")
    )
    allowed = message_input("event")
    denied = message_input("command", priority="critical")
    assert compiled.evaluate(allowed) == interpreted.evaluate(allowed)
    assert compiled.evaluate(denied) == interpreted.evaluate(denied)
    assert not compiled.evaluate(denied).allow


def test_policy_is_usable_from_other_threads(constitution: Constitution) -> None:
    policy = EmbeddedPolicy.from_constitution(constitution)
    expected = policy.evaluate(message_input("command", priority="critical"))
    results: list[PolicyDecision] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            replica_policy = policy.new_replica()
            del replica_policy
            results.append(policy.evaluate(message_input("command", priority="critical")))
        except BaseException as exc:  # a regorus thread panic is a BaseException
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [expected] * 3


def test_missing_data_section_refuses_the_bundle(bundle_copy: Path) -> None:
    data_path = bundle_copy / "data.json"
    data = orjson.loads(data_path.read_bytes())
    del data["limits"]
    data_path.write_bytes(orjson.dumps(data))
    with pytest.raises(PolicyLoadError) as info:
        load(bundle_copy)
    assert "data.limits is missing: the policy needs the payload ceilings" in str(info.value)
    assert info.value.file == f"{bundle_copy.resolve()}/data.json"
