"""Constraints through the public AgentBus with the default constitution and real Z3."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from enhanced_agent_bus import AgentBus, BusSettings, ConfigurationError, DeliveryStatus
from enhanced_agent_bus.constitution import default_bundle_path
from enhanced_agent_bus.constraints import ConstraintSettings
from tests.conftest import Recorder


def transfer(amount: object, **extra: Any) -> dict[str, Any]:
    return {"action": "transfer", "amount": amount, "currency": "EUR", **extra}


async def registered(bus: AgentBus) -> None:
    await bus.register_agent("planner-1", Recorder(), tenant_id="acme", role="planner")
    await bus.register_agent("worker-1", Recorder(), tenant_id="acme", role="worker")


@pytest.mark.parametrize("engine", ["compiled", "z3"])
async def test_transfers_are_checked_against_their_budget(engine: str) -> None:
    settings = BusSettings(constraints=ConstraintSettings(engine=engine))  # type: ignore[arg-type]
    async with AgentBus(settings) as bus:
        await registered(bus)
        assert "constraints" in bus.pipeline_stages
        ok = await bus.send_message(
            bus.message("planner-1", "worker-1", transfer(2500), metadata={"budget": "5000"})
        )
        assert ok.status is DeliveryStatus.DELIVERED
        over = await bus.send_message(
            bus.message("planner-1", "worker-1", transfer(7500), metadata={"budget": "5000"})
        )
        assert over.status is DeliveryStatus.DENIED
        reason = over.reasons[0]
        assert (reason.stage, reason.code) == ("constraints", "constraint_violated")
        assert "spend_within_budget" in reason.message
        assert "amount=7500" in reason.message
        assert "budget=5000" in reason.message
        assert bus.stats()["constraints"]["denied_total"] == 1


async def test_missing_and_mistyped_fields_deny_with_constraint_input() -> None:
    async with AgentBus() as bus:
        await registered(bus)
        missing = await bus.send_message(bus.message("planner-1", "worker-1", transfer(100)))
        assert missing.codes == ("constraint_input",)
        assert "budget" in missing.reasons[0].message
        mistyped = await bus.send_message(
            bus.message("planner-1", "worker-1", transfer("100"), metadata={"budget": "5000"})
        )
        assert set(mistyped.codes) == {"constraint_input"}
        unrelated = await bus.send_message(bus.message("planner-1", "worker-1", {"task": "x"}))
        assert unrelated.status is DeliveryStatus.DELIVERED


async def test_a_contradictory_bundle_is_refused_and_the_old_one_kept(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), bundle)
    text = (bundle / "constraints.yaml").read_text()
    (bundle / "constraints.yaml").write_text(
        text
        + """
  - id: never_spend
    description: contradicts spend_within_budget for every transfer
    applies_to:
      message_types: [command]
      when: action == "transfer"
    vars:
      action: {field: payload.action, type: String}
      amount: {field: payload.amount, type: Real}
    assert:
      - expr: amount <= 0
"""
    )
    async with AgentBus() as bus:
        before = bus.constitutional_hash
        with pytest.raises(ConfigurationError) as info:
            await bus.load_constitution(bundle)
        assert "never_spend" in str(info.value)
        assert "spend_within_budget" in str(info.value)
        assert bus.constitutional_hash == before
