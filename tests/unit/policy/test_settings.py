from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from enhanced_agent_bus.constitution import Constitution
from enhanced_agent_bus.policy import (
    InlinePolicyEngine,
    OpaPolicyEngine,
    PolicySettings,
    ProcessPolicyEngine,
    ThreadPolicyEngine,
    create_policy_engine,
)


def test_defaults_run_without_servers() -> None:
    settings = PolicySettings()
    assert settings.backend == "embedded"
    assert settings.executor == "inline"
    assert settings.rego_mode == "compiled"
    assert settings.decision_rule == "data.agentbus.authz.decision"
    assert settings.opa_data_path == "agentbus/authz/decision"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"backend": "opa"}, "backend='opa' needs opa_url"),
        ({"opa_url": "ftp://opa:8181"}, "is not an http(s) URL with a host"),
        ({"opa_url": "http://opa:8181/?x=1"}, "has a query or fragment"),
        ({"decision_rule": "agentbus.authz.decision"}, "decision_rule"),
        ({"decision_rule": "data.agentbus/authz"}, "decision_rule"),
        ({"executor": "fibers"}, "executor"),
        ({"executor_workers": 0}, "executor_workers"),
        ({"eval_timeout_s": 0}, "eval_timeout_s"),
        ({"opa_retries": 11}, "opa_retries"),
        ({"unknown": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_fail_naming_the_field(kwargs: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(expected)):
        PolicySettings(**kwargs)  # type: ignore[arg-type]


def test_settings_are_frozen() -> None:
    settings = PolicySettings()
    with pytest.raises(ValidationError):
        settings.executor = "thread"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "engine_type", "name"),
    [
        ({}, InlinePolicyEngine, "embedded/inline"),
        ({"executor": "thread"}, ThreadPolicyEngine, "embedded/thread"),
        ({"executor": "process"}, ProcessPolicyEngine, "embedded/process"),
        ({"backend": "opa", "opa_url": "http://127.0.0.1:1"}, OpaPolicyEngine, "opa"),
    ],
)
def test_factory_builds_the_configured_engine(
    constitution: Constitution, kwargs: dict[str, object], engine_type: type, name: str
) -> None:
    engine = create_policy_engine(constitution, PolicySettings(**kwargs))  # type: ignore[arg-type]
    assert isinstance(engine, engine_type)
    assert engine.name == name
