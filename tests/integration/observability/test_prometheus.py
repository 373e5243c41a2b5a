"""Every dashboard expression returns data from a REAL Prometheus scraping the bus.

Starts Debian's `prometheus` on 127.0.0.1 with a temporary config that scrapes
a MetricsServer every second while a representative run keeps feeding the
metrics, waits until the target is up, then evaluates every PromQL expression
of every dashboard through /api/v1/query. Prometheus is stopped in a finally.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest

from enhanced_agent_bus.observability import (
    DashboardQuery,
    MetricsServer,
    dashboard_queries,
    render,
)
from enhanced_agent_bus.tasks import TaskSupervisor

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(240)]

DASHBOARDS = Path(__file__).resolve().parents[3] / "grafana" / "dashboards"
STARTUP_DEADLINE_S = 60.0
DATA_DEADLINE_S = 60.0


def _queries() -> list[DashboardQuery]:
    return [
        query
        for path in sorted(DASHBOARDS.glob("*.json"))
        for query in dashboard_queries(json.loads(path.read_text(encoding="utf-8")))
    ]


async def _feed(run: Any, stop: asyncio.Event) -> None:
    while not stop.is_set():
        run.step()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.2)


async def _get_json(http: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with http.get(url, params=params) as response:
        return await response.json()


async def _wait_until_up(http: aiohttp.ClientSession, base: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            targets = await _get_json(http, f"{base}/api/v1/targets")
            active = targets["data"]["activeTargets"]
            if active and all(t["health"] == "up" for t in active):
                return
            last = json.dumps(active)[:500]
        except (aiohttp.ClientError, KeyError, ValueError) as exc:
            last = repr(exc)
        await asyncio.sleep(0.5)
    pytest.fail(f"Prometheus target never came up ({last}); log:\n{_tail(log)}")


def _has_finite_value(result: dict[str, Any]) -> bool:
    data = result["data"]
    if data["resultType"] == "scalar":
        return math.isfinite(float(data["result"][1]))
    return any(math.isfinite(float(item["value"][1])) for item in data["result"])


async def _evaluate(
    http: aiohttp.ClientSession, base: str, queries: list[DashboardQuery]
) -> dict[str, str]:
    """Query -> problem, for every query that has no finite sample yet."""
    problems: dict[str, str] = {}
    for query in queries:
        key = f"{query.dashboard} {query.where}"
        answer = await _get_json(http, f"{base}/api/v1/query", query=render(query.expr))
        if answer.get("status") != "success":
            problems[key] = f"error {answer.get('error')!r} for {render(query.expr)!r}"
        elif not answer["data"]["result"]:
            problems[key] = f"empty result for {render(query.expr)!r}"
        elif not _has_finite_value(answer):
            problems[key] = f"only NaN/Inf for {render(query.expr)!r}"
    return problems


def _tail(log: Path, lines: int = 30) -> str:
    if not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


async def test_every_dashboard_expression_returns_data_from_real_prometheus(
    tmp_path: Path,
    prometheus_binary: str,
    free_port: int,
    representative_run_module: ModuleType,
) -> None:
    queries = _queries()
    assert len(queries) >= 50

    run = representative_run_module.RepresentativeRun()
    run.step()
    supervisor = TaskSupervisor()
    stop = asyncio.Event()
    log = tmp_path / "prometheus.log"
    async with MetricsServer(run.metrics, run.health, host="127.0.0.1", port=0) as server:
        supervisor.spawn(_feed(run, stop), name="test:feed-metrics")
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: agentbus\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n",
            encoding="utf-8",
        )
        with log.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                prometheus_binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{free_port}",
                "--log.level=warn",
                stdout=log_file,
                stderr=log_file,
            )
        base = f"http://127.0.0.1:{free_port}"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                await _wait_until_up(http, base, log)
                deadline = time.monotonic() + DATA_DEADLINE_S
                problems = await _evaluate(http, base, queries)
                # rate() needs two scrapes inside its window: poll until every query answers.
                while problems and time.monotonic() < deadline:
                    await asyncio.sleep(1.0)
                    problems = await _evaluate(http, base, queries)
                assert not problems, "\n".join(f"{k}: {v}" for k, v in sorted(problems.items()))
                # Negative control: the same check does flag a metric nobody exports.
                control = DashboardQuery("control", "typo", "rate(agentbus_mesages_total[1m])")
                assert await _evaluate(http, base, [control]) == {
                    "control typo": "empty result for 'rate(agentbus_mesages_total[1m])'"
                }
                assert server.requests_total >= 2  # Prometheus really scraped our endpoint
        finally:
            stop.set()
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), timeout=15)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            await supervisor.wait(timeout_s=5)
            await supervisor.aclose()
    assert supervisor.failure is None
