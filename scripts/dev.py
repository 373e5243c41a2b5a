#!/usr/bin/env python3
"""Set up and run enhanced-agent-bus with nothing but Python >= 3.11 and pip.

    python3 scripts/dev.py demo [ARGS...]   # create/refresh .venv, then `agent-bus demo`
    python3 scripts/dev.py test [ARGS...]   # create/refresh .venv, then the whole suite + lint
    python3 scripts/dev.py bench [ARGS...]  # create/refresh .venv, then `agent-bus bench`

The environment is refreshed whenever pyproject.toml changes (a stamp file in
.venv records the hash of the file it was installed from).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".agentbus-installed"


def run(*command: str | Path) -> None:
    print("+", " ".join(str(c) for c in command), flush=True)
    completed = subprocess.run([str(c) for c in command], cwd=ROOT, check=False)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def ensure_environment() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"demo", "test", "bench", "setup"}:
        sys.exit(__doc__)
    command, rest = argv[0], argv[1:]
    ensure_environment()
    if command == "demo":
        run(BIN / "agent-bus", "demo", *rest)
    elif command == "bench":
        run(BIN / "agent-bus", "bench", *rest)
    elif command == "test":
        run(PYTHON, "-m", "pytest", *rest)
        run(PYTHON, "-m", "ruff", "check", "enhanced_agent_bus", "tests", "benchmarks", "scripts")
        run(
            PYTHON,
            "-m",
            "ruff",
            "format",
            "--check",
            "enhanced_agent_bus",
            "tests",
            "benchmarks",
            "scripts",
        )
        run(PYTHON, "-m", "mypy")


if __name__ == "__main__":
    main(sys.argv[1:])
