"""Signals tell the truth: Ctrl-C exits 130, SIGTERM 143, status.json ends with FAILURE saying which, locally and
through ``tao --local``; no temp file survives. Ctrl-C is typed into a real pseudo-terminal."""

import json
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import cli
from tests.integration.hardening_helpers import cli_env, oi_command, write_tiny_spec

pytestmark = pytest.mark.slow
TAO_LOCAL = [cli("tao"), "--local", "model", "optical_inspection"]


def wait_for(status: Path, text: str, process, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if status.exists() and text in status.read_text():
            return
        if process.poll() is not None if hasattr(process, "poll") else not process.isalive():
            break
        time.sleep(0.2)
    pytest.fail(f"{text!r} never appeared in {status}")


def last_status(status: Path) -> dict:
    return json.loads(status.read_text().splitlines()[-1])


def long_training(tmp_path, tiny_data, **dataset):
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results", train={"num_epochs": 5000}, dataset=dataset)
    return spec, tmp_path / "results" / "train" / "status.json"


def leftover_temp_files(folder: Path) -> list:
    return [p for p in folder.rglob("*.tmp")]


@pytest.mark.parametrize("prefix", [oi_command(), TAO_LOCAL], ids=["optical_inspection", "tao --local"])
def test_sigterm_during_training_exits_143_and_status_says_so(tmp_path, tiny_data, prefix):
    spec, status = long_training(tmp_path, tiny_data)
    process = subprocess.Popen([*prefix, "train", "-e", str(spec)], stderr=subprocess.PIPE, text=True, env=cli_env())
    wait_for(status, '"epoch": 2', process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert err.strip().splitlines()[-1] == "error: Interrupted by SIGTERM" and "Traceback" not in err
    assert last_status(status)["status"] == "FAILURE"
    assert last_status(status)["message"] == "Interrupted by SIGTERM."
    assert leftover_temp_files(status.parent) == []


def test_sigterm_during_inference_exits_143_and_status_says_so(tmp_path, tiny_data, tiny_model):
    frame = pd.read_csv(tiny_data / "test.csv", dtype=str)
    csv = tmp_path / "many.csv"
    pd.concat([frame] * 5000, ignore_index=True).to_csv(csv, index=False)  # 60,000 pairs: seconds to score
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results")
    status = tmp_path / "results" / "inference" / "status.json"
    process = subprocess.Popen(
        oi_command(
            "inference",
            "-e",
            spec,
            f"dataset.infer_dataset.csv_path={csv}",
            f"inference.checkpoint={tiny_model['checkpoint']}",
        ),
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    wait_for(status, "STARTED", process)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert err.strip().splitlines()[-1] == "error: Interrupted by SIGTERM" and "Traceback" not in err
    assert last_status(status) | {"date": None, "time": None} == {
        "date": None,
        "time": None,
        "status": "FAILURE",
        "verbosity": "ERROR",
        "message": "Interrupted by SIGTERM.",
    }
    assert not (status.parent / "inference.csv").exists() and leftover_temp_files(status.parent) == []


def test_ctrl_c_in_a_terminal_exits_130_without_tracebacks(tmp_path, tiny_data):
    """Typed into a pseudo-terminal, ^C reaches the whole foreground group: the task and its loader workers."""
    pexpect = pytest.importorskip("pexpect")
    spec, status = long_training(tmp_path, tiny_data, workers=2)
    child = pexpect.spawn(cli("optical_inspection"), ["train", "-e", str(spec)], env=cli_env(), encoding="utf-8")
    child.logfile_read = None
    wait_for(status, '"epoch": 2', child)
    child.sendintr()  # the terminal's interrupt character, as a user's Ctrl-C
    child.expect(pexpect.EOF, timeout=60)
    output = child.before
    child.close()
    assert child.exitstatus == 130, output[-3000:]
    assert "error: Interrupted by SIGINT (Ctrl-C)" in output and "Traceback" not in output, output[-3000:]
    assert last_status(status)["message"] == "Interrupted by SIGINT (Ctrl-C)."
    assert leftover_temp_files(status.parent) == []


def test_a_second_run_continues_where_the_interrupted_one_stopped(tmp_path, tiny_data):
    spec, status = long_training(tmp_path, tiny_data)
    process = subprocess.Popen(oi_command("train", "-e", spec), stderr=subprocess.PIPE, text=True, env=cli_env())
    wait_for(status, '"epoch": 1', process)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    epochs = [line["epoch"] for line in map(json.loads, status.read_text().splitlines()) if "epoch" in line]
    done = subprocess.run(
        oi_command("train", "-e", spec, f"train.num_epochs={epochs[-1] + 3}"), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"Resuming training from checkpoint: {tmp_path / 'results' / 'train' / 'oi_model_latest.pth'}" in (
        status.read_text()
    )
    assert json.loads(done.stdout.strip().splitlines()[-1])["epochs"] == epochs[-1] + 3
