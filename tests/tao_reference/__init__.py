"""NVIDIA's own TAO code, run beside ours in a separate process (tests/tao_reference/run_tao.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DEFAULT_DIR = Path.home() / ".cache" / "nvidia-tao-pytorch-7.3.0"  # where .ci/run unpacks it
RUNNER = Path(__file__).with_name("run_tao.py")


def tao_pytorch_dir() -> Path:
    """The unpacked nvidia-tao-pytorch wheel (TAO_PYTORCH_DIR), or a skip naming how to get it."""
    folder = Path(os.environ.get("TAO_PYTORCH_DIR", DEFAULT_DIR))
    if not (folder / "nvidia_tao_pytorch" / "cv" / "optical_inspection").is_dir():
        pytest.skip(f"nvidia-tao-pytorch is not unpacked in {folder} (TAO_PYTORCH_DIR); .ci/run fetches it")
    return folder


def run_tao(request: dict) -> dict:
    """Run one request in TAO's code in a child process: TAO patches torch (.cuda() is a no-op there) and
    imports its own Lightning, which must not leak into this test process."""
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(tao_pytorch_dir())],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
