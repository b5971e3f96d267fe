"""A new design on day one: calibrate re-calibrates a trained model's threshold on good parts alone, through the
CLI and as a job of the job service; evaluate warns when its scores have drifted from the calibration set's."""

import base64
import json
import shutil
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from tao_siamese_oi.data.sample import LIGHTS, make_sample_dataset
from tests.conftest import TINY_KEY, load_tiny_checkpoint, tiny_spec_dict
from tests.integration.hardening_helpers import one_error_line, run_oi, snapshot, write_tiny_spec
from tests.integration.service_helpers import OrgClient, service, tiny_job_specs

pytestmark = pytest.mark.slow  # real scoring runs: the slow lane


@pytest.fixture(scope="module")
def new_design(tmp_path_factory) -> dict:
    """Another design's boards (another seed of the generator): an unlabelled CSV of good parts to calibrate on,
    and labelled boards held out; and a copy of the held boards whose inputs are brighter (a shifted set)."""
    root = tmp_path_factory.mktemp("new_design")
    make_sample_dataset(root, size=16, seed=21, splits={"good": (200, 0), "held": (200, 50)})
    good = pd.read_csv(root / "good.csv", dtype=str).drop(columns=["label"])  # day one: no labels
    good.to_csv(root / "good_unlabelled.csv", index=False)
    shifted = root / "shifted"
    shutil.copytree(root / "images", shifted / "images")
    for path in (shifted / "images").rglob("*.jpg"):
        if "golden" not in path.parts:
            pixels = np.asarray(Image.open(path), dtype=np.float32)
            Image.fromarray(np.clip(pixels * 0.6 + 90, 0, 255).astype(np.uint8)).save(path, quality=95)
    return {"root": root, "good": root / "good_unlabelled.csv", "held": root / "held.csv", "shifted": shifted}


def test_calibrate_on_good_parts_writes_a_copy_with_the_new_threshold(
    capsys, tmp_path, tiny_data, tiny_model, new_design
):
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results")
    model = tiny_model["checkpoint"]
    before = model.read_bytes()
    argv = ["calibrate", "-e", spec, f"calibrate.checkpoint={model}", "calibrate.target_fpr=5",
            f"dataset.infer_dataset.csv_path={new_design['good']}",
            f"dataset.infer_dataset.images_dir={new_design['root'] / 'images'}"]  # fmt: skip
    code, err = run_oi(capsys, *argv)
    assert code == 0, err
    out = tmp_path / "results" / "calibrate"
    calibrated = out / "oi_model_calibrated.pth"
    record = json.loads((out / "calibration.json").read_text())["thresholds"]["global"]
    assert record["num_pass"] == 200 and record["target_fpr"] == 5.0 and record["fpr"] <= 5.0
    assert record["split"] == "pass_only" and record["fpr_ci95"][0] <= record["fpr"] <= record["fpr_ci95"][1]
    (hint,) = [line for line in err.splitlines() if line.startswith("next: ")]
    assert hint.startswith(f"next: optical_inspection evaluate -e {spec} ")
    assert hint.endswith(f"evaluate.checkpoint={calibrated}")
    assert model.read_bytes() == before  # the given model is never changed
    assert calibrated.read_bytes().startswith(b"TAO-OI-AESGCM-1\n")  # encrypted with the spec's key, as trained
    stored = load_tiny_checkpoint(calibrated)
    assert stored["calibration"]["threshold"] == record["threshold"]
    assert stored["state_dict"].keys() == load_tiny_checkpoint(model)["state_dict"].keys()

    # scored on the good parts it was calibrated on, the new threshold flags exactly what it counted
    code, err = run_oi(capsys, "inference", "-e", spec, f"inference.checkpoint={calibrated}",
                       f"dataset.infer_dataset.csv_path={new_design['good']}",
                       f"dataset.infer_dataset.images_dir={new_design['root'] / 'images'}")  # fmt: skip
    assert code == 0, err
    decided = pd.read_csv(tmp_path / "results" / "inference" / "inference.csv")
    assert (decided["decision"] == "FAIL").mean() * 100 == pytest.approx(record["fpr"])
    assert "differ from those the threshold was calibrated on" not in err  # the calibration design: quiet

    # too few good parts for the target: one line, nothing written
    before = snapshot(tmp_path)
    code, err = run_oi(capsys, *argv, "calibrate.target_fpr=1", f"calibrate.results_dir={tmp_path}/few")
    assert code == 3 and "200 good parts (PASS pairs) for it; a threshold for this FPR target needs at least 368" in (
        one_error_line(err)
    )
    assert snapshot(tmp_path) == before


def test_per_group_thresholds_go_beside_the_models_others(capsys, tmp_path, tiny_data, tiny_model, new_design):
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results")
    code, err = run_oi(capsys, "calibrate", "-e", spec, f"calibrate.checkpoint={tiny_model['checkpoint']}",
                       "calibrate.target_fpr=10", "calibrate.calibrate_by=component_type",
                       f"dataset.infer_dataset.csv_path={new_design['good']}",
                       f"dataset.infer_dataset.images_dir={new_design['root'] / 'images'}")  # fmt: skip
    assert code == 0, err
    families = pd.read_csv(new_design["good"])["component_type"].value_counts()
    calibration = load_tiny_checkpoint(tmp_path / "results" / "calibrate" / "oi_model_calibrated.pth")["calibration"]
    own = calibration["by_group"]["thresholds"]
    assert set(own) == {f for f, n in families.items() if n >= 36}  # 10 % FPR needs 36 good parts
    for family, n in families.items():
        if n < 36:
            assert f"component_type={family}: " in err and f"{n} good parts" in err
    assert calibration["threshold"] == load_tiny_checkpoint(tiny_model["checkpoint"])["calibration"]["threshold"]

    # thresholds per another column cannot go beside these: refused before anything is written
    calibrated = tmp_path / "results" / "calibrate" / "oi_model_calibrated.pth"
    before = snapshot(tmp_path)
    code, err = run_oi(capsys, "calibrate", "-e", spec, f"calibrate.checkpoint={calibrated}",
                       "calibrate.target_fpr=10", "calibrate.calibrate_by=object_name",
                       f"calibrate.results_dir={tmp_path}/again",
                       f"dataset.infer_dataset.csv_path={new_design['good']}",
                       f"dataset.infer_dataset.images_dir={new_design['root'] / 'images'}")  # fmt: skip
    assert code == 2 and one_error_line(err).startswith(
        "error: the model's thresholds are per component_type, not per object_name"
    )
    assert snapshot(tmp_path) == before


def test_evaluate_warns_on_a_shifted_set_and_not_on_the_calibration_design(
    capsys, tmp_path, tiny_data, tiny_model, new_design
):
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results")
    images = new_design["root"] / "images"
    code, err = run_oi(capsys, "calibrate", "-e", spec, f"calibrate.checkpoint={tiny_model['checkpoint']}",
                       "calibrate.target_fpr=5", f"dataset.infer_dataset.csv_path={new_design['good']}",
                       f"dataset.infer_dataset.images_dir={images}")  # fmt: skip
    assert code == 0, err
    calibrated = tmp_path / "results" / "calibrate" / "oi_model_calibrated.pth"
    results = {}
    for name, images_dir in (("same design", images), ("shifted", new_design["shifted"] / "images")):
        code, err = run_oi(capsys, "evaluate", "-e", spec, f"evaluate.checkpoint={calibrated}",
                           f"evaluate.results_dir={tmp_path}/{name.replace(' ', '_')}",
                           f"dataset.test_dataset.csv_path={new_design['held']}",
                           f"dataset.test_dataset.images_dir={images_dir}")  # fmt: skip
        assert code == 0, err
        results[name] = (err, json.loads((tmp_path / name.replace(" ", "_") / "metrics.json").read_text()))
    err, metrics = results["same design"]
    assert metrics["drift"] == [] and "differ from those the threshold was calibrated on" not in err
    err, metrics = results["shifted"]
    assert len(metrics["drift"]) == 1 and metrics["drift"][0] in err
    assert metrics["drift"][0].startswith(f"evaluate on {new_design['held']}, all rows: the scores differ")


def test_calibrate_as_a_job_of_the_job_service(tmp_path, tiny_data, new_design, monkeypatch):
    """train -> calibrate (its inference dataset: good parts of the new design) -> evaluate, each by parent: the
    evaluation decides at the re-calibrated threshold; so does an inference microservice of the calibrate job."""
    pytest.importorskip("fastapi", reason="the job service needs tao-launcher[service]")
    client = service(tmp_path, monkeypatch)
    shutil.copytree(tiny_data, tmp_path / "data" / "acme" / "tiny")
    shutil.copytree(new_design["root"], tmp_path / "data" / "acme" / "new", ignore=shutil.ignore_patterns("shifted"))
    acme = OrgClient(client, "acme")
    specs = {**tiny_job_specs(tiny_spec_dict(tiny_data, tmp_path / "unused")), "encryption_key": TINY_KEY}
    trained = acme.run("train", specs, train_datasets=[acme.dataset("tiny/train.csv")],
                       eval_dataset=acme.dataset("tiny/val.csv"))  # fmt: skip
    calibrated = acme.run("calibrate", {**specs, "calibrate": {"target_fpr": 5.0}}, parent_job_id=trained,
                          inference_dataset=acme.dataset("new/good_unlabelled.csv"))  # fmt: skip
    evaluated = acme.run("evaluate", specs, parent_job_id=calibrated, eval_dataset=acme.dataset("new/held.csv"))
    state = tmp_path / "state" / "acme"
    record = json.loads((state / calibrated / "results" / "calibrate" / "calibration.json").read_text())
    metrics = json.loads((state / evaluated / "results" / "evaluate" / "metrics.json").read_text())
    assert metrics["threshold_source"] == "calibrated"
    assert metrics["threshold"] == record["thresholds"]["global"]["threshold"]
    assert yaml.safe_load((state / evaluated / "spec.yaml").read_text())["evaluate"]["checkpoint"].endswith(
        f"{calibrated}/results/calibrate/oi_model_calibrated.pth"
    )

    # The microservice of the calibrate job serves the re-calibrated model, scoring as evaluate did.
    started = acme.post("/inference_microservices:start", {"model_path": calibrated})
    assert started.status_code == 201, started.text
    ms = started.json()["id"]
    deadline = time.time() + 120
    while acme.get(f"/inference_microservices/{ms}:status").json()["status"] != "Ready":
        assert time.time() < deadline, acme.get(f"/jobs/{ms}:logs").text[-2000:]
        time.sleep(0.5)
    row = pd.read_csv(state / evaluated / "results" / "evaluate" / "evaluate.csv").iloc[0]
    images = [new_design["root"] / "images" / side / f"{row['object_name']}_{light}.jpg"
              for side in (row["input_path"], row["golden_path"]) for light in LIGHTS]  # fmt: skip
    uris = ["data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode() for path in images]
    answer = acme.post(f"/inference_microservices/{ms}:inference", {"input": uris}).json()
    assert answer["threshold"] == record["thresholds"]["global"]["threshold"], answer
    assert answer["score"] == pytest.approx(row["siamese_score"], rel=1e-4)
    acme.client.delete(f"/api/v2/orgs/acme/inference_microservices/{ms}:stop", headers=acme.headers)
