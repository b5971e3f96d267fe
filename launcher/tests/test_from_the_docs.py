"""The second plugin, written from the docs alone (launcher/examples/from_the_docs), keeps every promise it relies
on: its check script exits 0. It declares the other way round from the example plugin (JSON specs, its own spec
option, its secret from the environment only)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses and jobs

CHECK = Path(__file__).resolve().parents[1] / "examples" / "from_the_docs" / "check.py"


def test_a_plugin_written_from_the_docs_alone_runs_everywhere_the_docs_say():
    pytest.importorskip("fastapi", reason="the job service needs tao-launcher[service]")
    done = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every promise of docs/plugin_protocol.md checked" in done.stdout
