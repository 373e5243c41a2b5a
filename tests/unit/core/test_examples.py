"""The examples run as users run them: a fresh interpreter, its own working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_quickstart_runs_and_prints_the_delivery_and_the_reply(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTBUS_")}
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["delivered ()", "{'status': 'green'}"]
    assert "Traceback" not in completed.stderr
    # With no settings, the audit log is the default file in the working directory.
    assert (tmp_path / "agentbus-audit.sqlite3").is_file()
