"""ConstraintStage: the pipeline stage built from a constitution, and the default constitution."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from constraint_helpers import RECIPIENT, SENDER, message, write_bundle

from enhanced_agent_bus.components import LifecycleStage
from enhanced_agent_bus.constitution import load_bundle
from enhanced_agent_bus.constraints import (
    ConstraintDeclarationError,
    ConstraintSettings,
    ConstraintSyntaxError,
    ConstraintVerificationError,
)
from enhanced_agent_bus.errors import ConfigurationError
from enhanced_agent_bus.models import MessageType
from enhanced_agent_bus.pipeline import ALLOW, StageContext, ValidationStage, Verdict, VerdictKind
from enhanced_agent_bus.pipeline._constraints import ConstraintStage

CTX = StageContext(SENDER, RECIPIENT)

# The two demo messages of the default constitution (planner -> worker commands).
DEMO_PASS = message(
    {"action": "transfer", "amount": 2500, "currency": "EUR", "to_account": "ACME-OPS-7"},
    {"budget": "5000"},
)
DEMO_DENY = message(
    {"action": "transfer", "amount": 7500, "currency": "EUR", "to_account": "ACME-OPS-7"},
    {"budget": "5000"},
)


@pytest.fixture(scope="module")
def default_stage() -> Iterator[ConstraintStage]:
    stage = ConstraintStage.from_constitution(load_bundle())
    yield stage
    stage.close()


def test_the_stage_is_a_validation_stage(default_stage: ConstraintStage) -> None:
    assert isinstance(default_stage, ValidationStage)
    assert default_stage.name == "constraints"
    assert default_stage.engine == "compiled"
    assert default_stage.report is not None
    assert default_stage.report.ok


def test_demo_message_passes_synchronously(default_stage: ConstraintStage) -> None:
    verdict = default_stage.check(DEMO_PASS, CTX)
    assert verdict is ALLOW  # a Verdict, not an awaitable: the pipeline never suspends


def test_demo_message_is_denied_with_a_readable_explanation(default_stage: ConstraintStage) -> None:
    verdict = default_stage.check(DEMO_DENY, CTX)
    assert isinstance(verdict, Verdict)
    assert verdict.kind is VerdictKind.DENY
    (reason,) = verdict.reasons
    assert (reason.stage, reason.code) == ("constraints", "constraint_violated")
    assert reason.message == (
        "constraint 'spend_within_budget' violated: a transfer spends at most its budget: "
        "`amount <= budget` is false with amount=7500 (payload.amount), budget=5000 "
        "(metadata.budget). (A transfer moves a positive amount that fits within the budget it "
        "carries.)"
    )


@pytest.mark.parametrize(
    ("payload", "metadata", "denied_by"),
    [
        ({"action": "transfer", "amount": 20000}, {"budget": "50000", "approvals": "2"}, None),
        ({"action": "transfer", "amount": 20000}, {"budget": "50000"}, "large_transfer_approvals"),
        (
            {"action": "transfer", "amount": 200000},
            {"budget": "500000", "approvals": "2"},
            "large_transfer_approvals",
        ),
        ({"action": "transfer", "amount": 0}, {"budget": "5"}, "spend_within_budget"),
        ({"action": "deploy", "env": "staging"}, {}, None),
        ({"action": "deploy", "env": "prod"}, {"change_ticket": "CHG-1042"}, None),
        ({"action": "deploy", "env": "prod"}, {}, "prod_deploy_change_ticket"),
        ({"action": "deploy", "env": "qa"}, {}, "prod_deploy_change_ticket"),
        ({"action": "scale", "current_replicas": 4, "target_replicas": 8}, {}, None),
        (
            {"action": "scale", "current_replicas": 4, "target_replicas": 9},
            {},
            "scaling_rate_of_change",
        ),
        (
            {"action": "scale", "current_replicas": 40, "target_replicas": 61},
            {},
            "scaling_rate_of_change",
        ),
        (
            {"action": "scale", "current_replicas": 4, "target_replicas": 1},
            {},
            "scaling_rate_of_change",
        ),
        ({"action": "report", "text": "x" * 40_000}, {}, "command_payload_ceiling"),
        ({"task": "write tests"}, {}, None),
    ],
)
def test_each_default_constraint_passes_and_denies(
    default_stage: ConstraintStage,
    payload: dict[str, object],
    metadata: dict[str, str],
    denied_by: str | None,
) -> None:
    verdict = default_stage.check(message(payload, metadata), CTX)
    assert isinstance(verdict, Verdict)
    if denied_by is None:
        assert verdict is ALLOW, verdict.reasons
    else:
        assert verdict.kind is VerdictKind.DENY
        assert verdict.reasons[0].message.startswith(f"constraint {denied_by!r}")


def test_other_message_types_pass_through(default_stage: ConstraintStage) -> None:
    event = message({"action": "transfer", "amount": 10**9}, message_type=MessageType.EVENT)
    assert default_stage.check(event, CTX) is ALLOW


def test_stats_count_what_happened(tmp_path: Path) -> None:
    stage = ConstraintStage.from_constitution(load_bundle())
    stage.check(DEMO_PASS, CTX)
    stage.check(DEMO_DENY, CTX)
    stage.check(message({"action": "transfer", "amount": 1}), CTX)  # no budget: input
    stats = stage.stats()
    assert stats["constraints_loaded"] == 5
    assert stats["checks_total"] == 3
    assert stats["denied_total"] == 2
    assert stats["violations_total"] == 1
    assert stats["input_errors_total"] == 1
    assert stats["engine_errors_total"] == 0
    assert stats["verification_warnings"] == 0
    assert stats["verification_ms"] > 0
    assert set(stats) == {
        "constraints_loaded",
        "checks_total",
        "denied_total",
        "violations_total",
        "input_errors_total",
        "engine_errors_total",
        "timeouts_total",
        "overloaded_total",
        "in_flight",
        "verification_warnings",
        "verification_ms",
    }


async def test_z3_engine_returns_an_awaitable_with_the_same_verdicts() -> None:
    stage = ConstraintStage.from_constitution(load_bundle(), ConstraintSettings(engine="z3"))
    try:
        pending = stage.check(DEMO_DENY, CTX)
        assert inspect.isawaitable(pending)
        verdict = await pending
        compiled = ConstraintStage.from_constitution(load_bundle()).check(DEMO_DENY, CTX)
        assert verdict == compiled
        assert await stage.check(DEMO_PASS, CTX) is ALLOW  # type: ignore[misc]
        assert stage.engine == "z3"
    finally:
        stage.close()


def test_a_bundle_without_constraints_allows_everything_cheaply(tmp_path: Path) -> None:
    stage = ConstraintStage.from_constitution(load_bundle(write_bundle(tmp_path / "b", None)))
    assert len(stage.constraints) == 0
    assert stage.report is None
    assert stage.check(DEMO_DENY, CTX) is ALLOW
    assert stage.stats()["checks_total"] == 0


CONTRADICTORY = """
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
"""


def test_a_contradictory_bundle_is_refused_naming_the_pair(tmp_path: Path) -> None:
    bundle = load_bundle(write_bundle(tmp_path / "b", CONTRADICTORY))
    with pytest.raises(ConstraintVerificationError) as caught:
        ConstraintStage.from_constitution(bundle)
    error = caught.value
    assert isinstance(error, ConfigurationError)
    assert "'cap' & 'floor'" in str(error)
    (finding,) = error.report.errors
    assert finding.constraint_ids == ("cap", "floor")
    assert finding.witness["payload.action"] == "'transfer'"
    # with verification off the same bundle loads (and denies every transfer)
    stage = ConstraintStage.from_constitution(bundle, ConstraintSettings(verify_on_load=False))
    assert stage.report is None
    assert stage.check(message({"action": "transfer", "amount": 150}), CTX).kind is VerdictKind.DENY  # type: ignore[union-attr]


def test_invalid_declarations_are_configuration_errors(tmp_path: Path) -> None:
    bundle = load_bundle(
        write_bundle(
            tmp_path / "b",
            """
            constraints:
              - id: broken
                description: calls a function
                vars: {x: {field: payload.x, type: Int}}
                assert: ['abs(x) < 3']
            """,
        )
    )
    with pytest.raises(ConstraintSyntaxError, match=r"constraint 'broken'.*function calls"):
        ConstraintStage.from_constitution(bundle)


def test_redundancy_warnings_are_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = CONTRADICTORY.replace("amount >= 200", "amount <= 200")
    bundle = load_bundle(write_bundle(tmp_path / "b", body))
    with caplog.at_level(logging.WARNING, logger="enhanced_agent_bus.pipeline._constraints"):
        stage = ConstraintStage.from_constitution(bundle)
    assert stage.stats()["verification_warnings"] == 1
    assert any("'floor' is implied by 'cap'" in r.getMessage() for r in caplog.records)


def test_a_named_constraints_file_must_exist(tmp_path: Path) -> None:
    bundle = load_bundle(write_bundle(tmp_path / "b", None))
    with pytest.raises(ConstraintDeclarationError, match=r"has no 'rules\.yaml'"):
        ConstraintStage.from_constitution(bundle, ConstraintSettings(file="rules.yaml"))


async def test_load_verifies_in_a_worker_thread() -> None:
    stage = await ConstraintStage.load(load_bundle())
    assert stage.report is not None
    assert stage.report.ok
    assert stage.check(DEMO_PASS, CTX) is ALLOW


def test_settings_are_bounded() -> None:
    assert ConstraintSettings().engine == "compiled"
    assert ConstraintSettings().constraint_timeout_ms == 50
    with pytest.raises(ValueError, match="engine"):
        ConstraintSettings(engine="fast")
    with pytest.raises(ValueError, match="constraint_timeout_ms"):
        ConstraintSettings(constraint_timeout_ms=0)
    with pytest.raises(ValueError, match="extra"):
        ConstraintSettings(timeout=5)  # type: ignore[call-arg]


async def test_the_stage_has_the_bus_lifecycle() -> None:
    stage = ConstraintStage.from_constitution(load_bundle(), ConstraintSettings(engine="z3"))
    assert isinstance(stage, LifecycleStage)
    await stage.start()
    try:
        assert await stage.check(DEMO_PASS, CTX) is ALLOW  # type: ignore[misc]
    finally:
        await stage.aclose()
    assert stage.stats()["checks_total"] == 1
