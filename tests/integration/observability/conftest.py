"""Fixtures for the real-Prometheus test.

The demo traffic, the synthetic feed and the list of what is exempt from the
real bus live in tests/unit/observability/conftest.py (the one place that
defines "a demo-like run"); it is loaded here by path so both suites use the
same definitions without making tests/ a package.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import sys
from pathlib import Path
from types import ModuleType

import pytest

_UNIT_CONFTEST = Path(__file__).resolve().parents[2] / "unit" / "observability" / "conftest.py"


def _load_unit_conftest() -> ModuleType:
    name = "agentbus_observability_representative_run"
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, _UNIT_CONFTEST)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {_UNIT_CONFTEST}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def observability_run() -> ModuleType:
    """tests/unit/observability/conftest.py as a module (DemoTraffic, RepresentativeRun, ...)."""
    return _load_unit_conftest()


@pytest.fixture
def prometheus_binary() -> str:
    """Path of the `prometheus` server; fails in CI (CI=true) and skips elsewhere when absent."""
    binary = shutil.which("prometheus")
    if binary is None:
        reason = (
            "the 'prometheus' server is not on PATH; run scripts/ensure_prometheus.sh "
            "(installs Debian's prometheus package) and re-run"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: this test must run in CI)")
        pytest.skip(reason)
    return binary


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
