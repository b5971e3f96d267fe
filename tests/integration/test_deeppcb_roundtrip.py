"""DeepPCB-dev -> dataset_convert -> train 1 epoch -> evaluate, through the real CLI."""

import json
import subprocess

import pandas as pd
import pytest
import yaml

from bench.deeppcb import deeppcb_root, missing_reason
from tests.conftest import cli

pytestmark = pytest.mark.slow  # real trainings and subprocesses: the slow lane

DEEPPCB = deeppcb_root()


def run(*args):
    out = subprocess.run([cli("optical_inspection"), *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_deeppcb_round_trip(tmp_path):
    data = tmp_path / "deeppcb"
    split = {
        name: {"csv_path": str(data / f"{csv}.csv"), "images_dir": str(data / "images")}
        for name, csv in [("train_dataset", "train"), ("validation_dataset", "val"), ("test_dataset", "test")]
    }
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "results_dir": str(tmp_path / "results"),
                "dataset": {
                    **split,
                    "num_input": 1,
                    "input_map": None,
                    "image_ext": ".png",
                    "image_width": 24,
                    "image_height": 24,
                    "batch_size": 16,
                    "workers": 0,
                    "fpratio_sampling": 0.5,
                },
                "dataset_convert": {
                    "source": "deeppcb",
                    "root_dataset_dir": str(DEEPPCB),
                    "data_convert_output_dir": str(data),
                    "max_images": 12,
                    "pass_crops_per_image": 4,
                    "crop_size": 48,
                },
                "train": {"num_epochs": 1, "seed": 3},
            }
        )
    )
    summary = run("dataset_convert", "-e", spec)
    assert summary["train"]["images"] + summary["val"]["images"] == 12 and summary["test"]["images"] == 12
    assert summary["train"]["labels"]["PASS"] == 4 * summary["train"]["images"]

    trained = run("train", "-e", spec)
    assert trained["epochs"] == 1
    metrics = run("evaluate", "-e", spec, f"evaluate.checkpoint={tmp_path}/results/train/oi_model_latest.pth")
    assert metrics["num_pairs"] == summary["test"]["pairs"]
    assert metrics["num_fail"] == summary["test"]["pairs"] - summary["test"]["labels"]["PASS"]
    assert metrics["auroc"] is not None
    evaluated = pd.read_csv(tmp_path / "results" / "evaluate" / "evaluate.csv")
    assert {"defect_type", "board", "siamese_score", "decision"} <= set(evaluated.columns)  # extra columns kept

    again = subprocess.run(
        [cli("optical_inspection"), "dataset_convert", "-e", str(spec)], capture_output=True, text=True
    )
    assert again.returncode == 5 and "choose another dataset_convert.data_convert_output_dir" in again.stderr
