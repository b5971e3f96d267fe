"""Training you can trust: same seed -> same result, and a run killed at any point resumes to the same weights."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from tests.conftest import cli, load_tiny_checkpoint, tiny_spec_dict

pytestmark = pytest.mark.slow  # real trainings and subprocesses: the slow lane

EPOCHS = 4

KILL_DURING_WRITE = """
import os, signal, sys
from tao_siamese_oi.artifacts import checkpoint
real_write = checkpoint.atomic_write
writes = []

def dying_write(path, write):
    writes.append(path)
    if len(writes) == 3:  # epoch 1's model_epoch_001_step_*.pth: half written, then the process dies
        def half(tmp):
            write(tmp)
            with open(tmp, "r+b") as handle:
                handle.truncate(os.path.getsize(tmp) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        return real_write(path, half)
    return real_write(path, write)

checkpoint.atomic_write = dying_write
from tao_siamese_oi.entry_points.optical_inspection import main
main(["train", "-e", sys.argv[1]])
"""


def write_spec(tmp_path, data, name: str):
    spec = tiny_spec_dict(data, tmp_path / name)
    spec["train"]["num_epochs"] = EPOCHS
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def train(spec):
    out = subprocess.run([cli("optical_inspection"), "train", "-e", str(spec)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def weights(results_dir):
    return load_tiny_checkpoint(results_dir / "train" / "oi_model_latest.pth")


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    result = train(write_spec(tmp, tiny_data, "run"))
    return {"result": result, "checkpoint": weights(tmp / "run")}


def assert_same_weights(checkpoint, reference):
    assert checkpoint["epoch"] == reference["epoch"] == EPOCHS - 1
    state, expected = checkpoint["state_dict"], reference["state_dict"]
    assert state.keys() == expected.keys()
    different = [k for k in state if not torch.equal(state[k], expected[k])]
    assert different == []


def test_same_seed_same_data_gives_identical_metrics(reference, tiny_data, tmp_path):
    again = train(write_spec(tmp_path, tiny_data, "again"))
    varying = ("checkpoint", "train_pairs_per_second")  # a path and a timing; every metric must match exactly
    assert {k: v for k, v in again.items() if k not in varying} == {
        k: v for k, v in reference["result"].items() if k not in varying
    }
    assert_same_weights(weights(tmp_path / "again"), reference["checkpoint"])


def test_sigkill_mid_training_resumes_to_the_same_weights(reference, tiny_data, tmp_path):
    spec = write_spec(tmp_path, tiny_data, "killed")
    status = tmp_path / "killed" / "train" / "status.json"
    proc = subprocess.Popen(
        [cli("optical_inspection"), "train", "-e", str(spec)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if status.exists() and '"epoch": 1' in status.read_text():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # somewhere in epoch 2: after epoch 1's checkpoints, before the run ends
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert weights(tmp_path / "killed")["epoch"] < EPOCHS - 1
    resumed = train(spec)
    assert resumed["epochs"] == EPOCHS
    assert "Resuming training from checkpoint" in status.read_text()
    assert_same_weights(weights(tmp_path / "killed"), reference["checkpoint"])


def test_kill_during_a_checkpoint_write_leaves_the_latest_intact(reference, tiny_data, tmp_path):
    spec = write_spec(tmp_path, tiny_data, "torn")
    out = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, str(spec)], capture_output=True, text=True)
    assert out.returncode == -signal.SIGKILL
    train_dir = tmp_path / "torn" / "train"
    assert [p.name for p in train_dir.glob(".*.tmp")] != []  # the torn write never replaced anything
    assert not list(train_dir.glob("model_epoch_001_step_*.pth"))
    assert weights(tmp_path / "torn")["epoch"] == 0  # the latest is the complete epoch-0 checkpoint
    resumed = train(spec)
    assert resumed["epochs"] == EPOCHS
    assert list(train_dir.glob(".*.tmp")) == []
    assert_same_weights(weights(tmp_path / "torn"), reference["checkpoint"])
