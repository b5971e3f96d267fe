"""The pretrained model shipped in the package: small, safe to read, named ``builtin:<name>``, a real starting point
for training, and a base experiment of the job service."""

import pytest
import torch
import yaml
from tao_launcher.plugins import discover
from tao_launcher.service.jobs import base_experiments, schema
from tao_siamese_oi.entry_points.optical_inspection import run_action

from tao_siamese_oi.artifacts.checkpoint import HPARAMS_KEY, check_model_file, model_state, read_checkpoint
from tao_siamese_oi.errors import CheckpointError
from tao_siamese_oi.pretrained import FOLDER, MODELS
from tests.conftest import load_tiny_checkpoint, tiny_spec_dict

BUILTIN = "builtin:siamese_grid_deeppcb"


def test_the_shipped_model_is_small_safe_to_read_and_says_what_it_is():
    path = check_model_file(BUILTIN, "train.pretrained_model_path")
    assert path == FOLDER / MODELS["siamese_grid_deeppcb"][0] and path.stat().st_size < 1024 * 1024
    checkpoint = read_checkpoint(path)  # the restricted unpickler: no code runs
    assert checkpoint[HPARAMS_KEY]["model_type"] == "Siamese_Grid" and checkpoint["grid_pool"] == "max"
    assert "optimizer_states" not in checkpoint  # a starting point, not a run to resume
    notes = (FOLDER / "README.md").read_text()
    assert "MIT" in notes and "bench/pretrained.py" in notes


def test_an_unknown_builtin_name_lists_the_ones_there_are():
    with pytest.raises(CheckpointError, match="no pretrained model 'builtin:resnet'; choose one of builtin:siamese"):
        check_model_file("builtin:resnet", "train.pretrained_model_path")


@pytest.mark.slow
def test_training_starts_from_the_builtin_weights(tiny_data, tmp_path):
    spec = tiny_spec_dict(tiny_data, tmp_path / "results")
    spec["model"] = {"model_type": "Siamese_Grid", "embedding_vectors": 5}  # size-agnostic: any crop, any lights
    spec["train"].update(num_epochs=1, pretrained_model_path=BUILTIN, optim={"lr": 0.0})
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert run_action(["train", "-e", str(path)]) == 0
    trained = model_state(load_tiny_checkpoint(tmp_path / "results" / "train" / "oi_model_latest.pth"))
    shipped = model_state(read_checkpoint(check_model_file(BUILTIN, "x")))
    weights = [k for k in shipped if "running" not in k and "num_batches" not in k]  # BatchNorm statistics move
    assert weights and all(torch.equal(trained[k], shipped[k]) for k in weights)


def test_the_job_service_lists_it_as_a_base_experiment():
    plugins = discover()
    entry = next(e for e in base_experiments(plugins) if e["name"] == "Siamese_Grid, pretrained on DeepPCB")
    default = schema(plugins, "train", "", entry["id"])["default"]
    assert default["train"]["pretrained_model_path"] == BUILTIN and default["model"]["model_type"] == "Siamese_Grid"


@pytest.mark.slow
def test_evaluate_scores_with_the_builtin_model_and_records_its_hash(tiny_data, tmp_path):
    import hashlib
    import json

    spec = tiny_spec_dict(tiny_data, tmp_path / "results")
    spec["model"] = {"model_type": "Siamese_Grid", "embedding_vectors": 5}
    spec["dataset"].update(image_width=32, image_height=32, alignment={"enable": True, "max_shift": 12})  # as made
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert run_action(["evaluate", "-e", str(path), f"evaluate.checkpoint={BUILTIN}"]) == 0
    recorded = json.loads((tmp_path / "results" / "evaluate" / "metrics.json").read_text())["provenance"]
    shipped = check_model_file(BUILTIN, "x").read_bytes()
    assert recorded["model_file"] == BUILTIN and recorded["model_sha256"] == hashlib.sha256(shipped).hexdigest()
