"""The distributed path on a CPU machine: num_gpus 2 runs 2 gloo processes for train, inference and evaluate."""

import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import cli, load_tiny_checkpoint, tiny_spec_dict

pytestmark = pytest.mark.slow


def run(action: str, spec, *overrides: str) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # let the launcher pick the threads
    out = subprocess.run(
        [cli("optical_inspection"), action, "-e", str(spec), *overrides],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    reports = [line for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1, out.stdout  # only the main process reports
    return json.loads(reports[0]), out.stderr


def rounded(value):
    """Floats to 6 significant digits, in nested dicts too (the processes' float sums may differ in the last bit)."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return float(f"{value:.6g}") if isinstance(value, float) else value


@pytest.fixture(scope="module")
def ddp_run(tiny_data, tmp_path_factory):
    """One epoch on 2 CPU processes, and an inference CSV in an order of its own with an odd row count."""
    tmp = tmp_path_factory.mktemp("ddp")
    test = pd.read_csv(tiny_data / "test.csv")
    infer = test.sample(n=11, random_state=5).assign(row_id=lambda f: np.arange(len(f)) * 7 + 3)
    infer.to_csv(tmp / "infer.csv", index=False)
    spec = tiny_spec_dict(tiny_data, tmp / "results")
    spec["train"]["num_epochs"] = 1
    spec["dataset"]["infer_dataset"]["csv_path"] = str(tmp / "infer.csv")
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    result, stderr = run("train", path, "train.num_gpus=2")
    return {"spec": path, "results": tmp / "results", "infer": infer, "train": result, "stderr": stderr}


def test_two_cpu_processes_train_one_epoch_and_only_the_main_one_reports(ddp_run):
    result, stderr, out = ddp_run["train"], ddp_run["stderr"], ddp_run["results"] / "train"
    assert result["processes"] == 2 and result["epochs"] == 1
    assert "running 2 processes per node on the CPU (gloo backend)" in stderr
    threads = max(1, len(os.sched_getaffinity(0)) // 2)  # the cores shared between the processes
    assert f"Training on 2 process(es) x 1 node(s), {threads} torch threads per process." in stderr
    statuses = [json.loads(line)["status"] for line in (out / "status.json").read_text().splitlines()]
    assert statuses == ["STARTED", "RUNNING", "RUNNING", "RUNNING", "SUCCESS"]  # one process writes
    assert load_tiny_checkpoint(out / "oi_model_latest.pth")["epoch"] == 0
    assert 0 <= result["val_acc"] <= 100 and result["train_loss"] > 0


def test_two_process_inference_writes_every_row_once_in_the_input_order(ddp_run):
    spec, infer = ddp_run["spec"], ddp_run["infer"]
    checkpoint = f"inference.checkpoint={ddp_run['results'] / 'train' / 'oi_model_latest.pth'}"
    # 11 rows, batches of 4: the processes get 6 rows each (one repeated) in batches of 4 and 2.
    scored = {}
    for processes in (1, 2):
        run(
            "inference",
            spec,
            checkpoint,
            f"inference.num_gpus={processes}",
            "inference.batch_size=4",
            f"inference.results_dir={ddp_run['results'] / f'inference_{processes}'}",
        )
        scored[processes] = pd.read_csv(ddp_run["results"] / f"inference_{processes}" / "inference.csv")
    two = scored[2]
    assert list(two.columns) == [*infer.columns, "siamese_score", "decision"]
    pd.testing.assert_frame_equal(two.drop(columns=["siamese_score", "decision"]), infer.reset_index(drop=True))
    np.testing.assert_allclose(two["siamese_score"], scored[1]["siamese_score"], rtol=1e-5, atol=1e-6)
    assert two["decision"].tolist() == scored[1]["decision"].tolist()
    assert two["siamese_score"].nunique() > 1


def test_two_process_evaluation_matches_one_process(ddp_run):
    spec, results = ddp_run["spec"], ddp_run["results"]
    checkpoint = f"evaluate.checkpoint={results / 'train' / 'oi_model_latest.pth'}"
    metrics = {}
    for processes in (1, 2):
        metrics[processes], _ = run(
            "evaluate",
            spec,
            checkpoint,
            f"evaluate.num_gpus={processes}",
            "evaluate.batch_size=5",
            f"evaluate.results_dir={results / f'evaluate_{processes}'}",
        )
    assert metrics[2]["num_pairs"] == metrics[1]["num_pairs"] == 12  # no padded row counted twice
    # provenance names each run's own spec (results_dir, num_gpus differ); everything measured is the same
    assert rounded({**metrics[2], "provenance": None}) == rounded({**metrics[1], "provenance": None})
    rows = pd.read_csv(results / "evaluate_2" / "evaluate.csv")
    assert len(rows) == 12 and rows["decision"].isin(["PASS", "FAIL"]).all()
