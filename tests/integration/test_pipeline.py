"""The real CLI, train -> evaluate -> inference -> export, on a tiny generated dataset."""

import hashlib
import json
import re
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from tao_siamese_oi.artifacts.checkpoint import load_checkpoint_file
from tao_siamese_oi.artifacts.crypto import decrypt
from tao_siamese_oi.errors import CheckpointError
from tests.conftest import TINY_KEY, cli, load_tiny_checkpoint, tiny_spec_dict

pytestmark = pytest.mark.slow  # real trainings and subprocesses: the slow lane


def run(action, spec, *overrides, env=None):
    out = subprocess.run(
        [cli("optical_inspection"), action, "-e", str(spec), *overrides],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def timedelta_seconds(text: str) -> float:
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@pytest.fixture(scope="module")
def pipeline(tiny_data, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    spec = tmp_path_factory.mktemp("spec") / "spec.yaml"  # the user's own file holds the key; outputs must not

    spec.write_text(yaml.safe_dump(tiny_spec_dict(tiny_data, results)))
    train = run("train", spec, "train.tensorboard.enabled=true")
    return {"spec": spec, "results": results, "data": tiny_data, "train": train}


def test_train_writes_tao_named_checkpoints_and_status(pipeline):
    out = pipeline["results"] / "train"
    assert pipeline["train"]["epochs"] == 2
    assert pipeline["train"]["train_pairs_per_second"] > 0
    with pytest.raises(CheckpointError, match="is encrypted; set encryption_key"):  # encrypted at rest
        load_checkpoint_file(out / "oi_model_latest.pth")
    latest = load_tiny_checkpoint(out / "oi_model_latest.pth")
    assert latest["epoch"] == 1
    assert all(k.startswith("model.") for k in latest["state_dict"])
    status = [json.loads(line) for line in (out / "status.json").read_text().splitlines()]
    assert [s["status"] for s in status] == ["STARTED"] + ["RUNNING"] * 4 + ["SUCCESS"]
    assert [s["message"] for s in status[1:5]] == [
        "Starting Training Loop.",
        "Train/Eval metrics generated.",
        "Train/Eval metrics generated.",
        "Training loop complete.",
    ]
    tao_kpis = {"train_loss", "train_acc", "train_fpr", "val_loss", "val_acc", "val_fpr"}  # TAO 7.3's names
    assert tao_kpis <= set(status[-1]["kpi"])
    epochs = status[2:4]
    assert [s["epoch"] for s in epochs] == [0, 1] and {s["max_epoch"] for s in epochs} == {1}
    assert epochs[1]["step"] == epochs[1]["max_step"] == 2 * epochs[0]["step"] > 0  # 36 pairs, batch 8: 4 steps
    # TAO's time fields are str(timedelta) text, which TAO's AutoML reads; the seconds stay under *_s keys.
    assert epochs[1]["eta"] == "0:00:00" and epochs[1]["eta_s"] == 0
    for epoch in epochs:
        assert re.fullmatch(r"0:00:\d\d(\.\d{6})?", epoch["time_per_epoch"]), epoch
        assert timedelta_seconds(epoch["time_per_epoch"]) == pytest.approx(epoch["time_per_epoch_s"], abs=1e-3)
        assert timedelta_seconds(epoch["time_per_step"]) == pytest.approx(epoch["time_per_step_s"], abs=1e-4)
        assert epoch["time_per_step_s"] > 0
    # TAO 7.3's checkpoint names: the 0-based epoch and the global step after it
    names = sorted(p.name for p in out.glob("*.pth"))
    steps = [e["step"] for e in epochs]
    assert names == [f"model_epoch_000_step_{steps[0]:05d}.pth", f"model_epoch_001_step_{steps[1]:05d}.pth"] + [
        "oi_model_latest.pth"
    ]
    for line in status:
        assert set(line) >= {"date", "time", "status", "verbosity", "message"}


def tensorboard_scalars(event_file) -> dict[str, list[float]]:
    """Scalars of a TensorBoard event file (TFRecord framing: length, its CRC, the Event, its CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    data, at, scalars = event_file.read_bytes(), 0, {}
    while at < len(data):
        length = int.from_bytes(data[at : at + 8], "little")
        event = Event.FromString(data[at + 12 : at + 12 + length])
        at += 12 + length + 4
        for value in event.summary.value:
            scalars.setdefault(value.tag, []).append(value.simple_value)
    return scalars


def test_tensorboard_scalars_match_the_csv_metrics(pipeline):
    out = pipeline["results"] / "train"
    (event_file,) = out.glob("tensorboard/version_*/events.out.tfevents.*")
    scalars = tensorboard_scalars(event_file)
    epochs = pd.read_csv(next(out.glob("lightning_logs/version_*/metrics.csv")))
    for tag in ("train_loss", "val_loss", "val_auroc", "train_acc"):
        assert scalars[tag] == pytest.approx(epochs[tag].dropna().tolist(), rel=1e-5), tag
    assert len(scalars["val_loss"]) == 2  # one per epoch


def test_tao_kpi_names_mean_tao_numbers_at_the_margin(pipeline, tmp_path):
    """test_acc, test_fpr, test_fnr and defect_acc are TAO's AOIMetrics at model.margin (TAO 7.3 formulas), whatever
    threshold decides; the decision's own rates keep names of their own. A margin at the median score makes the
    two thresholds disagree on this model."""
    checkpoint = f"{pipeline['results']}/train/oi_model_latest.pth"
    first = run("evaluate", pipeline["spec"], f"evaluate.checkpoint={checkpoint}", f"evaluate.results_dir={tmp_path}/a")
    scores = pd.read_csv(tmp_path / "a" / "evaluate.csv")["siamese_score"].to_numpy()
    margin = float(np.median(scores))
    out = tmp_path / "b"
    saved = run(
        "evaluate",
        pipeline["spec"],
        f"evaluate.checkpoint={checkpoint}",
        f"evaluate.results_dir={out}",
        f"model.margin={margin}",
    )
    frame = pd.read_csv(out / "evaluate.csv")
    defect, score = frame["label"].str.upper().ne("PASS").to_numpy(), frame["siamese_score"].to_numpy()

    def tao_aoi(threshold):  # TAO 7.3's AOIMetrics, written out
        flagged = score > threshold
        return {
            "test_acc": 100 * np.mean(flagged == defect),
            "test_fpr": 100 * np.mean(flagged[~defect]),
            "test_fnr": 100 * np.mean(~flagged[defect]),
            "defect_acc": 100 * np.mean(flagged[defect]),
        }

    at_margin, at_decision = tao_aoi(margin), tao_aoi(saved["threshold"])
    assert at_margin != at_decision and saved["threshold"] == first["threshold"] != margin
    kpi = json.loads((out / "status.json").read_text().splitlines()[-1])["kpi"]
    for name, value in at_margin.items():
        assert saved[name] == kpi[name] == pytest.approx(value), name
    assert saved["accuracy"] == kpi["accuracy"] == pytest.approx(at_decision["test_acc"])
    assert saved["fpr"] == pytest.approx(at_decision["test_fpr"])
    assert saved["recall"] == pytest.approx(at_decision["defect_acc"])
    assert saved["at_margin"]["total_accuracy"] == pytest.approx(at_margin["test_acc"])


def test_no_task_leaks_the_encryption_key(pipeline):
    for path in pipeline["results"].rglob("*"):
        if path.is_file() and path.suffix in {".yaml", ".json", ".csv", ".txt"}:
            assert "s3cret-key" not in path.read_text(errors="ignore"), path
    saved = (pipeline["results"] / "train" / "experiment.yaml").read_text()
    assert "encryption_key: '*****'" in saved


def test_evaluate_reports_tao_and_operating_metrics(pipeline):
    metrics = run("evaluate", pipeline["spec"], f"evaluate.checkpoint={pipeline['results']}/train/oi_model_latest.pth")
    saved = json.loads((pipeline["results"] / "evaluate" / "metrics.json").read_text())
    assert saved == metrics
    for key in ["accuracy", "fpr", "recall", "auroc", "test_acc", "test_fpr", "test_fnr", "defect_acc"]:
        assert key in saved
    for key in ["total_accuracy", "defect_accuracy", "false_alarm", "false_negative"]:  # TAO's, at the margin
        assert key not in saved and key in saved["at_margin"]
    assert saved["num_pass"] == 8 and saved["num_fail"] == 4
    assert 0.0 <= saved["auroc"] <= 1.0
    # The decision threshold is the one train calibrated on the validation set and stored in the checkpoint.
    stored = load_tiny_checkpoint(pipeline["results"] / "train" / "oi_model_latest.pth")["calibration"]
    assert saved["threshold_source"] == "calibrated" and saved["threshold"] == stored["threshold"]
    assert stored["epoch"] == 1 and stored["target_fpr"] == 1.0 and stored["fpr"] <= 1.0
    assert saved["calibration"] == stored and pipeline["train"]["calibration"] == stored
    assert saved["at_margin"]["threshold"] == 2.0  # the loss margin, reported beside for comparison
    per_pair = pd.read_csv(pipeline["results"] / "evaluate" / "evaluate.csv", keep_default_na=False)
    flagged = per_pair["siamese_score"] > saved["threshold"]
    assert (per_pair["decision"] == np.where(flagged, "FAIL", "PASS")).all()
    assert saved["recall"] == pytest.approx(100 * (flagged & (per_pair["label"] != "PASS")).sum() / 4)
    # The outcome column: a spreadsheet filter on FP / FN finds the errors; counts agree with the metrics.
    defect = per_pair["label"] != "PASS"
    expected = np.select([flagged & defect, flagged & ~defect, ~flagged & defect], ["TP", "FP", "FN"], "TN")
    assert (per_pair["outcome"] == expected).all()
    assert (per_pair["outcome"] == "FP").sum() == round(saved["fpr"] * 8 / 100)
    # Defect types: the label names them; PASS pairs have none.
    assert set(per_pair.loc[per_pair["label"] == "PASS", "defect_type"]) == {""}
    assert set(saved["by_defect_type"]) == set(per_pair.loc[per_pair["label"] != "PASS", "label"])
    # Provenance: the scored file and the data, by path and content hash; the same in status.json.
    checkpoint = pipeline["results"] / "train" / "oi_model_latest.pth"
    recorded = saved["provenance"]
    assert recorded["model_file"] == str(checkpoint) and recorded["model_type"] == "Siamese_3"
    assert recorded["model_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    test_csv = pipeline["data"] / "test.csv"
    assert recorded["data_csv_sha256"] == hashlib.sha256(test_csv.read_bytes()).hexdigest()
    assert len(recorded["spec_sha256"]) == 64 and recorded["package"].startswith("tao_siamese_oi ")
    status = [json.loads(line) for line in (pipeline["results"] / "evaluate" / "status.json").read_text().splitlines()]
    assert status[-1]["status"] == "SUCCESS" and status[-1]["provenance"] == recorded
    for name in ("roc.png", "score_histogram.png", "defect_recall.png"):
        with Image.open(pipeline["results"] / "evaluate" / name) as image:
            assert image.format == "PNG" and min(image.size) > 300


def test_inference_keeps_rows_order_and_columns(pipeline):
    run(
        "inference",
        pipeline["spec"],
        f"inference.checkpoint={pipeline['results']}/train/oi_model_latest.pth",
        "inference.batch_size=5",
    )
    source = pd.read_csv(pipeline["data"] / "test.csv", dtype=str)
    scored = pd.read_csv(pipeline["results"] / "inference" / "inference.csv", dtype={"object_name": str})
    assert list(scored.columns) == list(source.columns) + ["siamese_score", "decision"]
    pd.testing.assert_frame_equal(scored[source.columns].astype(str), source)
    assert scored["siamese_score"].notna().all() and (scored["siamese_score"] >= 0).all()
    evaluated = pd.read_csv(pipeline["results"] / "evaluate" / "evaluate.csv")
    np.testing.assert_allclose(scored["siamese_score"], evaluated["siamese_score"], rtol=1e-5)
    assert scored["decision"].tolist() == evaluated["decision"].tolist()  # both decide at the stored threshold
    # inference.csv's metadata beside it: the model and data it came from, and how it was decided.
    meta = json.loads((pipeline["results"] / "inference" / "inference.json").read_text())
    checkpoint = pipeline["results"] / "train" / "oi_model_latest.pth"
    assert meta["provenance"]["model_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    test_csv = (pipeline["data"] / "test.csv").read_bytes()
    assert meta["provenance"]["data_csv_sha256"] == hashlib.sha256(test_csv).hexdigest()
    assert meta["inference_csv"].endswith("inference.csv") and meta["threshold_source"] == "calibrated"


def test_export_is_checked_dynamic_and_matches_pytorch(pipeline):
    import onnx
    import onnxruntime as ort

    checkpoint = f"export.checkpoint={pipeline['results']}/train/oi_model_latest.pth"
    result = run("export", pipeline["spec"], checkpoint)
    assert result["max_abs_diff"] < 1e-4
    path = pipeline["results"] / "export" / "oi_model.onnx"
    assert result["encrypted"] is True
    plain = decrypt(path.read_bytes(), TINY_KEY, path)
    model = onnx.load_from_string(plain)
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["input_1", "input_2"]
    assert [o.name for o in model.graph.output] == ["output_1", "output_2"]
    session = ort.InferenceSession(plain, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(3, 3, 48, 12)).astype(np.float32)  # 4 lights x 12 px, batch 3
    out_1, out_2 = session.run(None, {"input_1": x, "input_2": x})
    assert out_1.shape == out_2.shape == (3, 4)
    # The sidecar says how to feed the model and how to decide, with the threshold calibrated at training.
    sidecar = json.loads((pipeline["results"] / "export" / "oi_model.json").read_text())
    stored = load_tiny_checkpoint(pipeline["results"] / "train" / "oi_model_latest.pth")["calibration"]
    assert sidecar["threshold"] == stored["threshold"] and sidecar["threshold_source"] == "calibrated"
    assert sidecar["input_shape"] == ["batch", 3, 48, 12] and len(sidecar["lights"]) == 4
    assert sidecar["preprocessing"]["mean"] == [0.485, 0.456, 0.406] and sidecar["encrypted"] is True
    trained = pipeline["results"] / "train" / "oi_model_latest.pth"
    assert sidecar["provenance"]["model_sha256"] == hashlib.sha256(trained.read_bytes()).hexdigest()

    again = subprocess.run(
        [cli("optical_inspection"), "export", "-e", str(pipeline["spec"]), checkpoint],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 5 and "export would replace" in again.stderr and "export.overwrite=true" in again.stderr
    assert path.stat().st_size > 0


def test_an_encrypted_training_exports_a_plain_onnx_file_for_tao_when_asked(pipeline):
    """TAO's own spec sets encryption_key; TAO's tools cannot read this project's encrypted files: the checkpoint
    is read with the key and export.encrypt=false writes the ONNX file in the clear."""
    import onnx

    path = pipeline["results"] / "export_plain" / "oi_model.onnx"
    checkpoint = f"export.checkpoint={pipeline['results']}/train/oi_model_latest.pth"
    result = run("export", pipeline["spec"], checkpoint, "export.encrypt=false", f"export.onnx_file={path}")
    assert result["encrypted"] is False and not path.read_bytes().startswith(b"TAO-OI-AESGCM-1")
    onnx.checker.check_model(onnx.load(path))  # no key needed
    assert json.loads(path.with_suffix(".json").read_text())["encrypted"] is False


def test_export_with_the_decision_in_the_graph(pipeline):
    import onnxruntime as ort

    results = pipeline["results"]
    path = results / "export_decision" / "oi_model.onnx"
    result = run(
        "export",
        pipeline["spec"],
        f"export.checkpoint={results}/train/oi_model_latest.pth",
        "export.include_decision=true",
        f"export.onnx_file={path}",
    )
    assert result["decision_in_graph"] is True and result["max_abs_diff"] < 1e-4
    session = ort.InferenceSession(decrypt(path.read_bytes(), TINY_KEY, path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["output_1", "output_2", "distance", "decision"]
    rng = np.random.default_rng(1)
    x1, x2 = (rng.normal(size=(5, 3, 48, 12)).astype(np.float32) for _ in range(2))
    out_1, out_2, distance, decision = session.run(None, {"input_1": x1, "input_2": x2})
    np.testing.assert_allclose(distance, np.linalg.norm(out_1 - out_2 + 1e-6, axis=1), rtol=1e-4, atol=1e-5)
    assert (decision == (distance > result["threshold"])).all()
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert set(sidecar["outputs"]) == {"output_1", "output_2", "distance", "decision"}


def test_onnxruntime_backend_and_golden_cache_agree_with_pytorch_on_every_row(pipeline):
    """After the export test: the encrypted ONNX file scores every row as the checkpoint does."""
    results = pipeline["results"]
    onnx_file = results / "export" / "oi_model.onnx"
    if not onnx_file.is_file():
        run("export", pipeline["spec"], f"export.checkpoint={results}/train/oi_model_latest.pth")
    runs = {
        "pytorch": [f"inference.checkpoint={results}/train/oi_model_latest.pth"],
        "pytorch_uncached": [
            f"inference.checkpoint={results}/train/oi_model_latest.pth",
            "inference.golden_cache=false",
        ],
        "onnxruntime": ["inference.backend=onnxruntime", f"inference.onnx_file={onnx_file}"],
    }
    scored = {}
    for name, overrides in runs.items():
        result = run("inference", pipeline["spec"], *overrides, f"inference.results_dir={results}/inference_{name}")
        assert result["threshold_source"] == "calibrated"  # from the checkpoint, or the export's sidecar
        scored[name] = pd.read_csv(results / f"inference_{name}" / "inference.csv")
    reference = scored["pytorch"]
    for name in ("pytorch_uncached", "onnxruntime"):
        np.testing.assert_allclose(scored[name]["siamese_score"], reference["siamese_score"], rtol=1e-5, atol=1e-6)
        assert scored[name]["decision"].tolist() == reference["decision"].tolist(), name
        assert scored[name].drop(columns=["siamese_score"]).equals(reference.drop(columns=["siamese_score"]))


def test_the_last_epoch_is_validated_and_calibrated_whatever_the_interval(pipeline, tmp_path):
    spec = yaml.safe_load(pipeline["spec"].read_text())
    spec["results_dir"] = str(tmp_path)
    spec["train"].update(num_epochs=3, validation_interval=2)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = run("train", path)
    epochs = pd.read_csv(next((tmp_path / "train").glob("lightning_logs/version_*/metrics.csv")))
    assert sorted(epochs.dropna(subset=["val_loss"])["epoch"]) == [1, 2]  # epoch 1 by the interval, 2 as the last
    assert load_tiny_checkpoint(tmp_path / "train" / "oi_model_latest.pth")["calibration"]["epoch"] == 2
    assert result["calibration"]["epoch"] == 2
    # An explicit threshold wins over the calibrated one.
    checkpoint = f"evaluate.checkpoint={tmp_path / 'train' / 'oi_model_latest.pth'}"
    metrics = run("evaluate", path, checkpoint, "evaluate.threshold=0.5")
    assert metrics["threshold"] == 0.5 and metrics["threshold_source"] == "spec"


def test_checkpoint_that_does_not_fit_the_spec_is_a_one_line_error(pipeline, tmp_path):
    checkpoint = f"{pipeline['results']}/train/oi_model_latest.pth"

    def evaluate(override: str) -> str:
        out = subprocess.run(
            [cli("optical_inspection"), "evaluate", "-e", str(pipeline["spec"]), override,
             f"evaluate.results_dir={tmp_path}", f"evaluate.checkpoint={checkpoint}"],
            capture_output=True,
            text=True,
        )  # fmt: skip
        assert out.returncode == 4 and "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
        return out.stderr

    # another input size: the checkpoint's preprocessing record names the key
    assert (
        f"{checkpoint} was trained for image_width 12 but the spec gives 16; set dataset.image_width as the training"
        in evaluate("dataset.image_width=16")
    )
    # another network: the weights do not fit, and the checkpoint says what it was trained as
    err = evaluate("model.embedding_vectors=8")
    assert "does not fit the spec's model" in err
    assert "it was trained as Siamese_3 with input shape (3, 48, 12) and embedding 4" in err


def test_rerun_of_a_finished_training_changes_nothing(pipeline):
    latest = pipeline["results"] / "train" / "oi_model_latest.pth"
    before = latest.stat().st_mtime_ns
    again = run("train", pipeline["spec"])
    assert again["epochs"] == 2
    assert latest.stat().st_mtime_ns == before


def test_evaluation_without_fail_rows_reports_fpr_only(pipeline, tmp_path):
    source = pd.read_csv(pipeline["data"] / "test.csv", dtype=str)
    passes = tmp_path / "pass_only.csv"
    source[source["label"] == "PASS"].to_csv(passes, index=False)
    metrics = run(
        "evaluate",
        pipeline["spec"],
        f"dataset.test_dataset.csv_path={passes}",
        f"evaluate.results_dir={tmp_path}/eval",
        f"evaluate.checkpoint={pipeline['results']}/train/oi_model_latest.pth",
    )
    assert metrics["num_fail"] == 0 and metrics["num_pass"] == 8
    assert metrics["recall"] is None and metrics["auroc"] is None
    assert 0.0 <= metrics["fpr"] <= 100.0


@pytest.mark.parametrize(
    "key, message",
    [("wrong-key", "cannot be decrypted: wrong encryption_key"), ("null", "is encrypted; set encryption_key")],
)
def test_encrypted_checkpoints_need_the_right_key(pipeline, key, message, tmp_path):
    out = subprocess.run(
        [
            cli("optical_inspection"),
            "evaluate",
            "-e",
            str(pipeline["spec"]),
            f"encryption_key={key}",
            f"evaluate.results_dir={tmp_path}",
            f"evaluate.checkpoint={pipeline['results']}/train/oi_model_latest.pth",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 4
    assert "Traceback" not in out.stderr and "Unpickling" not in out.stderr
    assert message in out.stderr.strip().splitlines()[-1]
    assert "s3cret-key" not in out.stdout + out.stderr


@pytest.mark.parametrize("keep", [1, 2])
def test_checkpoint_retention_keeps_exactly_the_last_n(tiny_data, tmp_path, keep):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec_dict(tiny_data, tmp_path / "results")))
    run("train", spec, "train.num_epochs=4", f"train.keep_checkpoints={keep}")
    names = sorted(p.name for p in (tmp_path / "results" / "train").glob("*.pth"))
    assert [n.split("_step_")[0] for n in names] == [f"model_epoch_{e:03d}" for e in range(4 - keep, 4)] + [
        "oi_model_latest.pth"
    ]
    assert load_tiny_checkpoint(tmp_path / "results" / "train" / "oi_model_latest.pth")["epoch"] == 3


def test_each_next_step_line_is_a_command_that_runs(tiny_data, tmp_path):
    import shlex

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec_dict(tiny_data, tmp_path / "results")))
    argv = [cli("optical_inspection"), "train", "-e", str(spec), "train.num_epochs=1"]
    seen = []
    for _ in range(3):  # train -> evaluate -> (export suggested by evaluate) -> inference with onnxruntime
        out = subprocess.run(argv, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        hint = next(line for line in out.stderr.splitlines() if line.startswith("next: "))[len("next: ") :]
        command = hint.split("; to deploy: ")[-1]
        argv = shlex.split(command)
        assert argv[0] == "optical_inspection"
        argv[0] = cli("optical_inspection")
        seen.append(argv[1])
    assert seen == ["evaluate", "export", "inference"]
    out = subprocess.run(argv, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "results" / "inference" / "inference.csv").is_file()
