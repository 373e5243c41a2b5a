"""Every Grafana dashboard query names metrics (and labels) a real bus exports.

The exposition comes from the ``real_run`` fixture in this folder's conftest:
demo.py's agents and traffic on a real AgentBus, captured before it stops.
Queries that read a component the bus does not have yet (deliberation,
workflow: ``NOT_YET_BUILT``) are checked against the synthetic feed instead,
in their own test; nothing else is exempt.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from enhanced_agent_bus.observability import (
    FAMILIES,
    DashboardQuery,
    dashboard_queries,
    family_of_sample,
    sample_names,
    selectors,
)
from enhanced_agent_bus.observability.cli import observability_app

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
EXPECTED_UIDS = {
    "agentbus-overview",
    "agentbus-caches",
    "agentbus-policy",
    "agentbus-async",
    "agentbus-deliberation-workflows",
    "agentbus-cost",
}


def _load_conftest() -> ModuleType:
    """This folder's conftest as a module: loaded by path, since tests/ is not a package.

    The name is the one tests/integration/observability/conftest.py uses, so a full
    run shares one module.
    """
    name = "agentbus_observability_representative_run"
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("conftest.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_RUN = _load_conftest()
KNOWN_GAPS: dict[str, str] = dict(_RUN.KNOWN_GAPS)
NOT_YET_BUILT: dict[str, str] = dict(_RUN.NOT_YET_BUILT)
known_gap = _RUN.known_gap
query_component = _RUN.query_component
unbuilt_families = _RUN.unbuilt_families
unbuilt_label_values = _RUN.unbuilt_label_values
equality_matchers = _RUN.equality_matchers


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _all_queries() -> list[DashboardQuery]:
    return [query for path in DASHBOARD_FILES for query in dashboard_queries(_load(path))]


def _query_id(query: DashboardQuery) -> str:
    return f"{query.dashboard}:{query.where}"


def _real_bus_queries() -> list[Any]:
    """Queries the real bus must answer; a known package gap is a strict xfail."""
    params = []
    for query in _all_queries():
        if query_component(query) is not None:
            continue
        reason = known_gap(query)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(query, id=_query_id(query), marks=marks))
    return params


def _unbuilt_queries() -> list[DashboardQuery]:
    return [query for query in _all_queries() if query_component(query) is not None]


Samples = dict[str, list[dict[str, str]]]


def _samples(exposition: bytes) -> Samples:
    """Sample name -> the label sets it has."""
    samples: Samples = {}
    for family in text_string_to_metric_families(exposition.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(dict(sample.labels))
    return samples


def _assert_answered(query: DashboardQuery, samples: Samples, source: str) -> None:
    """Every selector names a sample ``source`` exposes, with its labels and matched values."""
    found = selectors(query.expr)
    assert found, f"no metric in {query.expr!r}"
    for selector in found:
        assert selector.metric.startswith("agentbus_"), selector.metric
        assert selector.metric in samples, (
            f"{query.where}: {selector.metric!r} is not in the exposition of {source}"
        )
        exposed = set().union(*samples[selector.metric])
        missing = selector.labels - exposed
        assert not missing, f"{query.where}: {selector.metric!r} has no labels {missing}"
    for metric, matchers in equality_matchers(query.expr):
        assert any(matchers.items() <= labels.items() for labels in samples[metric]), (
            f"{query.where}: no {metric!r} sample with {matchers} in the exposition of {source}"
        )


def test_all_six_dashboards_exist_with_unique_uids() -> None:
    uids = [_load(path)["uid"] for path in DASHBOARD_FILES]
    assert sorted(uids) == sorted(EXPECTED_UIDS)
    assert {path.stem for path in DASHBOARD_FILES} == EXPECTED_UIDS


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_dashboard_is_grafana_10_import_ready(path: Path) -> None:
    dashboard = _load(path)
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["id"] is None
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = set()
    for panel in dashboard["panels"]:
        assert panel["id"] not in ids
        ids.add(panel["id"])
        grid = panel["gridPos"]
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        assert panel["description"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"


def test_there_are_queries_to_check() -> None:
    queries = _all_queries()
    assert len(queries) >= 50
    assert {query.dashboard for query in queries} == EXPECTED_UIDS


@pytest.mark.parametrize("query", _real_bus_queries())
def test_every_query_is_answered_by_the_real_bus(query: DashboardQuery, real_run: Any) -> None:
    _assert_answered(query, _samples(real_run.exposition), "a real bus after demo traffic")


@pytest.mark.parametrize("query", _unbuilt_queries(), ids=_query_id)
def test_not_yet_built_components_queries_against_the_synthetic_feed(
    query: DashboardQuery, real_run: Any, synthetic: bytes
) -> None:
    """Deliberation and workflow panels, proven on the hand-fed exposition.

    The parts of such a query that a built component feeds (``agentbus_messages_total``
    of the "sent to deliberation" panel) must still be on the real bus.
    """
    _assert_answered(query, _samples(synthetic), "the synthetic feed (RepresentativeRun)")
    real = _samples(real_run.exposition)
    unbuilt = unbuilt_families()
    for selector in selectors(query.expr):
        family = family_of_sample(selector.metric)
        assert family is not None, selector.metric
        if family.name not in unbuilt:
            assert selector.metric in real, f"{selector.metric!r} is not on the real bus"


def test_exemptions_are_only_the_not_yet_built_components() -> None:
    """Pin what may skip the real bus: the deliberation & workflows dashboard, nothing else."""
    assert set(NOT_YET_BUILT) == {"deliberation", "workflow"}
    assert unbuilt_families() == {
        "agentbus_deliberation_pending_messages": "deliberation",
        "agentbus_deliberation_resolved_total": "deliberation",
        "agentbus_workflow_runs_started_total": "workflow",
        "agentbus_workflow_runs_finished_total": "workflow",
        "agentbus_workflow_runs_active": "workflow",
        "agentbus_workflow_steps_total": "workflow",
        "agentbus_workflow_step_retries_total": "workflow",
        "agentbus_workflow_step_duration_seconds": "workflow",
    }
    assert unbuilt_label_values() == {
        ("agentbus_messages_total", "outcome", "deliberating"): "deliberation"
    }
    deliberation_dashboard = [
        q for q in _all_queries() if q.dashboard == "agentbus-deliberation-workflows"
    ]
    assert _unbuilt_queries() == deliberation_dashboard
    assert len(deliberation_dashboard) == 10


def test_not_yet_built_components_are_really_absent_from_the_bus(real_run: Any) -> None:
    """When one of them is built, this fails: take it out of NOT_YET_BUILT."""
    assert not NOT_YET_BUILT.keys() & real_run.stats.keys()
    assert not {"deliberation", "workflow"} & set(real_run.pipeline_stages)
    samples = _samples(real_run.exposition)
    by_name = {family.name: family for family in FAMILIES}
    for name in unbuilt_families():
        assert not samples.keys() & set(sample_names(by_name[name])), name
    for (name, label, value), component in unbuilt_label_values().items():
        for sample in sample_names(by_name[name]):
            assert all(labels.get(label) != value for labels in samples.get(sample, [])), component


def test_the_real_run_exports_every_family_but_the_exempt_ones(real_run: Any) -> None:
    """Beyond the dashboards: every catalogue family has samples after the real run."""
    samples = _samples(real_run.exposition)
    absent = {family.name for family in FAMILIES if not samples.keys() & set(sample_names(family))}
    only_on_overflow = {"agentbus_metrics_series_overflow_total"}
    assert absent == set(unbuilt_families()) | set(KNOWN_GAPS) | only_on_overflow


def test_the_real_run_is_the_demo_scenario(real_run: Any) -> None:
    """Every denial the demo shows, from the stage that makes it, plus a dead letter."""
    denials = {
        (result.reasons[0].stage, result.reasons[0].code)
        for result in real_run.results
        if result.reasons
    }
    assert denials == {
        ("admission", "payload_too_large"),
        ("constitution", "hash_stale"),
        ("constitution", "hash_mismatch"),
        ("tenant", "cross_tenant"),
        ("policy", "policy_denied"),
        ("constraints", "constraint_violated"),
    }
    assert real_run.pipeline_stages == (
        "admission",
        "constitution",
        "tenant",
        "policy",
        "constraints",
    )
    assert real_run.stats["dead_letters_by_code"] == {"handler_error": 3}
    assert real_run.stats["metering"]["snapshot_keys"] > 0


def test_every_catalogue_family_is_shown_somewhere() -> None:
    """Dashboards cover the catalogue: only self-monitoring families may be left out."""
    used = {s.metric for q in _all_queries() for s in selectors(q.expr)}
    unshown = {family.name for family in FAMILIES if not used.intersection(sample_names(family))}
    assert unshown == {
        "agentbus_constitution",
        "agentbus_stats_collection_errors_total",
        "agentbus_usage_collection_errors_total",
        "agentbus_health_transitions_total",
        "agentbus_health_callback_errors_total",
        "agentbus_metrics_series_overflow_total",
    }


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", GRAFANA / "build_dashboards.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve string annotations through sys.modules, so register it first.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_committed_dashboards_match_the_generator() -> None:
    rendered: dict[str, str] = _generator().render_all()
    assert sorted(rendered) == [path.name for path in DASHBOARD_FILES]
    for path in DASHBOARD_FILES:
        assert path.read_text(encoding="utf-8") == rendered[path.name], (
            f"{path.name} is stale: run python grafana/build_dashboards.py"
        )


def test_provisioning_files_point_at_the_dashboards() -> None:
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/agentbus-prometheus.yaml").read_text()
    )
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/agentbus.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
    prometheus = yaml.safe_load((GRAFANA / "prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:9464"]


def test_cli_check_dashboards_accepts_ours_and_rejects_a_typo(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(observability_app, ["check-dashboards", str(GRAFANA / "dashboards")])
    assert ok.exit_code == 0, ok.output
    broken = _load(DASHBOARD_FILES[0])
    panel = next(p for p in broken["panels"] if p["type"] != "row")
    panel["targets"][0]["expr"] = 'rate(agentbus_mesages_total{outcom="x"}[1m])'
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    bad = runner.invoke(observability_app, ["check-dashboards", str(tmp_path)])
    assert bad.exit_code == 1
    assert "agentbus_mesages_total" in bad.output


def test_cli_catalogue_lists_every_family() -> None:
    result = CliRunner().invoke(observability_app, ["catalogue"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "agentbus_send_duration_seconds_bucket" in result.output
    assert "agentbus_tenant_payload_bytes_total" in result.output
