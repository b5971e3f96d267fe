"""One Scorer for every way of scoring: evaluate, inference and the job service's inference microservice score
the same pairs alike, at the same threshold, with the same cell maps."""

import base64
import json

import numpy as np
import pandas as pd
from tao_siamese_oi.entry_points.optical_inspection import run_action

LIGHTS = ("LowAngleLight", "SolderLight", "UniformLight", "WhiteLight")


def test_evaluate_inference_and_the_microservice_score_alike(tiny_data, tiny_grid_model, tmp_path):
    from tao_siamese_oi.deploy.microservice import predictor

    spec, checkpoint = str(tiny_grid_model["spec"]), tiny_grid_model["checkpoint"]
    evaluated, inferred = tmp_path / "evaluate", tmp_path / "inference"
    assert run_action(["evaluate", "-e", spec, f"evaluate.checkpoint={checkpoint}",
                       f"evaluate.results_dir={evaluated}", "evaluate.report=false"]) == 0  # fmt: skip
    assert run_action(["inference", "-e", spec, f"inference.checkpoint={checkpoint}",
                       f"inference.results_dir={inferred}"]) == 0  # fmt: skip
    by_evaluate = pd.read_csv(evaluated / "evaluate.csv", keep_default_na=False)
    by_inference = pd.read_csv(inferred / "inference.csv", keep_default_na=False)
    metrics = json.loads((evaluated / "metrics.json").read_text())
    # The infer split is the test CSV here: the same pairs, in one process, batch by batch, alike to the bit.
    assert by_inference["siamese_score"].nunique() > 1
    np.testing.assert_array_equal(by_inference["siamese_score"], by_evaluate["siamese_score"])
    for column in ("decision", "hotspot_light", "hotspot_x", "hotspot_y"):
        assert by_inference[column].tolist() == by_evaluate[column].tolist(), column
    assert json.loads((inferred / "inference.json").read_text())["threshold"] == metrics["threshold"]

    predict = predictor(tiny_grid_model["spec"].parent)  # the model job's folder: its spec names the training's
    served, goldens = [], []
    for _, row in by_evaluate.iterrows():
        images = [tiny_data / "images" / side / f"{row['object_name']}_{light}.jpg"
                  for side in (row["input_path"], row["golden_path"]) for light in LIGHTS]  # fmt: skip
        uris = ["data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode() for path in images]
        served.append(predict({"input": uris}))
        goldens.append("".join(uris[len(LIGHTS) :]))
    # One pair per request: the network runs on a batch of one, which may round the last bit otherwise.
    np.testing.assert_allclose([a["score"] for a in served], by_evaluate["siamese_score"], rtol=1e-5)
    assert [a["decision"] for a in served] == by_evaluate["decision"].tolist()
    assert {a["threshold"] for a in served} == {metrics["threshold"]}
    assert [a["heatmap"]["hotspot"]["light"] for a in served] == by_evaluate["hotspot_light"].tolist()
    # Each golden (the same images, byte for byte) is embedded once and then served from the cache.
    assert [a["golden_cached"] for a in served] == pd.Series(goldens).duplicated().tolist()


def test_a_checkpoint_is_scored_only_as_it_was_trained(tiny_grid_model, tmp_path, capsys):
    """Train records how its inputs were prepared; a spec that would feed the same shapes otherwise (the lights in
    another order, another normalisation) is refused in one line before anything is written."""
    from tao_siamese_oi.artifacts.checkpoint import read_checkpoint
    from tao_siamese_oi.artifacts.preprocessing import preprocessing_record
    from tao_siamese_oi.config import load_config

    spec, checkpoint = tiny_grid_model["spec"], tiny_grid_model["checkpoint"]
    cfg = load_config(spec)
    assert read_checkpoint(checkpoint, cfg.encryption_key)["preprocessing"] == preprocessing_record(cfg.dataset)
    swapped = ["dataset.input_map={LowAngleLight: 1, SolderLight: 0, UniformLight: 2, WhiteLight: 3}"]
    for overrides, key in ((swapped, "dataset.input_map"),
                           (["dataset.augmentation_config.rgb_input_mean=[0.4,0.4,0.4]"],
                            "dataset.augmentation_config.rgb_input_mean")):  # fmt: skip
        out = tmp_path / key
        argv = ["evaluate", "-e", str(spec), f"evaluate.checkpoint={checkpoint}", f"evaluate.results_dir={out}"]
        assert run_action([*argv, *overrides]) == 4
        err = capsys.readouterr().err.strip().splitlines()
        assert f"set {key} as the training did" in err[-1] and str(checkpoint) in err[-1], err
        assert not out.exists()
