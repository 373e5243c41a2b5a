"""Every Grafana dashboard query names metrics (and labels) the bus really exports.

The exposition comes from ``exposition_after_run()`` in this folder's conftest:
switch that one function to a real demo run and these tests follow.
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


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _all_queries() -> list[DashboardQuery]:
    return [query for path in DASHBOARD_FILES for query in dashboard_queries(_load(path))]


def _exposed(exposition: bytes) -> dict[str, set[str]]:
    """Sample name -> label names seen on it."""
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(exposition.decode()):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


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


@pytest.mark.parametrize("query", _all_queries(), ids=lambda q: f"{q.dashboard}:{q.where}")
def test_every_query_names_exported_metrics_and_labels(
    query: DashboardQuery, exposition: bytes
) -> None:
    exposed = _exposed(exposition)
    found = selectors(query.expr)
    assert found, f"no metric in {query.expr!r}"
    for selector in found:
        assert selector.metric.startswith("agentbus_"), selector.metric
        assert selector.metric in exposed, (
            f"{query.where}: {selector.metric!r} is not in the exposition after a run"
        )
        missing = selector.labels - exposed[selector.metric]
        assert not missing, f"{query.where}: {selector.metric!r} has no labels {missing}"


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
