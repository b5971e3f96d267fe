"""evaluate.calibrate_by through the tasks: train stores a threshold per part family, evaluate and inference (and
the ONNX export's sidecar, so the onnxruntime backend) decide each row by its family's threshold."""

import base64
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from tao_siamese_oi.entry_points.optical_inspection import run_action

from tao_siamese_oi.data.sample import make_sample_dataset
from tests.conftest import load_tiny_checkpoint, tiny_spec_dict

pytestmark = pytest.mark.slow


def test_each_family_is_decided_by_its_own_threshold(tmp_path, capsys):
    data = tmp_path / "data"
    make_sample_dataset(data, size=16, seed=5, splits={"train": (24, 12), "val": (36, 12), "test": (12, 6)})
    spec = tiny_spec_dict(data, tmp_path / "results")
    spec["train"]["num_epochs"] = 2
    # A 50 % FPR target needs 6 PASS pairs to be shown; each family has about 12 in validation.
    spec["evaluate"] = {"calibrate_by": "component_type", "target_fpr": 50.0}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert run_action(["train", "-e", str(path)]) == 0
    assert "Per-component_type thresholds:" in capsys.readouterr().err
    checkpoint = tmp_path / "results" / "train" / "oi_model_latest.pth"
    by_group = load_tiny_checkpoint(checkpoint)["calibration"]["by_group"]
    own = {value: entry["threshold"] for value, entry in by_group["thresholds"].items()}
    assert by_group["column"] == "component_type" and len(own) >= 2 and len(set(own.values())) == len(own)

    assert run_action(["evaluate", "-e", str(path), f"evaluate.checkpoint={checkpoint}"]) == 0
    frame = pd.read_csv(tmp_path / "results" / "evaluate" / "evaluate.csv", keep_default_na=False)
    metrics = json.loads((tmp_path / "results" / "evaluate" / "metrics.json").read_text())
    expected = frame["component_type"].map(own).fillna(metrics["threshold"])
    assert (frame["decision"] == np.where(frame["siamese_score"] > expected, "FAIL", "PASS")).all()
    assert metrics["calibration"]["by_group"] == by_group

    assert run_action(["export", "-e", str(path), f"export.checkpoint={checkpoint}"]) == 0
    onnx_file = tmp_path / "results" / "export" / "oi_model.onnx"
    assert json.loads(onnx_file.with_suffix(".json").read_text())["calibration"]["by_group"] == by_group
    decisions = {}
    for backend, model in (
        ("pytorch", f"inference.checkpoint={checkpoint}"),
        ("onnxruntime", f"inference.onnx_file={onnx_file}"),
    ):
        out = tmp_path / "results" / f"inference_{backend}"
        argv = ["inference", "-e", str(path), model, f"inference.backend={backend}", f"inference.results_dir={out}"]
        assert run_action(argv) == 0
        decisions[backend] = pd.read_csv(out / "inference.csv")["decision"].tolist()
    assert decisions["onnxruntime"] == decisions["pytorch"] == frame["decision"].tolist()

    # The job service's inference microservice decides a request by the group it names.
    from tao_siamese_oi.deploy.microservice import predictor

    predict = predictor(tmp_path)  # the folder of spec.yaml, whose train.results_dir holds the model
    row = frame.iloc[0]
    lights = ("LowAngleLight", "SolderLight", "UniformLight", "WhiteLight")
    images = [
        data / "images" / side / f"{row['object_name']}_{light}.jpg"
        for side in (row["input_path"], row["golden_path"])
        for light in lights
    ]
    uris = ["data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode() for path in images]
    family = str(row["component_type"])
    answer = predict({"input": uris, "component_type": family})
    assert answer["threshold"] == own.get(family, metrics["threshold"])
    assert answer["score"] == pytest.approx(row["siamese_score"], rel=1e-4)
    assert predict({"input": uris})["threshold"] == metrics["threshold"]  # no group named: the global one


def test_calibrate_by_a_column_the_validation_csv_lacks_is_refused_before_training(tiny_data, tmp_path, capsys):
    spec = tiny_spec_dict(tiny_data, tmp_path / "results")
    spec["evaluate"] = {"calibrate_by": "part_family"}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert run_action(["train", "-e", str(path)]) == 3
    err = capsys.readouterr().err
    assert "has no column part_family (evaluate.calibrate_by); its columns: input_path" in err
    assert not (tmp_path / "results" / "train").exists() or not list((tmp_path / "results" / "train").glob("*.pth"))
