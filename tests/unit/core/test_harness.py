"""The load harness runs end to end (its figures are benchmarks, never asserted here)."""

import pytest

from enhanced_agent_bus.harness import PROFILES, run_harness


async def test_harness_reports_every_scenario_and_ratio() -> None:
    results = await run_harness(n=200, senders=10, profiles=PROFILES, rounds=1)
    names = [s["name"] for s in results["scenarios"]]
    assert names[:3] == ["floor.direct", "floor.queue", "floor.queue x10"]
    for profile in PROFILES:
        assert f"{profile}: request" in names
        assert f"{profile}: request x10" in names
    assert all(s["operations"] >= 200 and s["msgs_per_s"] > 0 for s in results["scenarios"])
    assert results["pipelines"]["core"] == ["admission", "constitution", "tenant"]
    assert "policy" in results["pipelines"]["full"]
    assert set(results["ratios"]) == {
        f"{profile}: {ratio}"
        for profile in PROFILES
        for ratio in ("request msgs/s vs queue floor", "request x10 p99 vs queue floor p99")
    }


async def test_harness_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown profiles"):
        await run_harness(n=100, profiles=("turbo",))
    with pytest.raises(ValueError, match="rounds"):
        await run_harness(n=100, rounds=0)
