"""Our checkpoints load in NVIDIA's own class (TAO's OpticalInspectionModel.load_from_checkpoint) and TAO's
network scores with them exactly as ours does. Skips, saying how to get it, without the unpacked wheel."""

import numpy as np
import pytest
import torch
import yaml
from tao_siamese_oi.entry_points.optical_inspection import run_action

from tao_siamese_oi.artifacts.checkpoint import HPARAMS_KEY, load_network, read_checkpoint
from tao_siamese_oi.config import load_config
from tao_siamese_oi.data.transforms import layout_from_config
from tao_siamese_oi.model.networks import pair_distance
from tests.conftest import tiny_spec_dict
from tests.tao_reference import run_tao, tao_pytorch_dir

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("model_type", ["Siamese_3", "Siamese_1"])
def test_our_checkpoint_loads_in_taos_class_and_scores_the_same(model_type, tiny_data, tmp_path):
    tao_pytorch_dir()  # skip before training when TAO's code is absent
    spec = tiny_spec_dict(tiny_data, tmp_path / "results")
    del spec["encryption_key"]  # TAO decrypts with NVIDIA's eff package, which is not installable
    spec["model"] = {"model_type": model_type, "embedding_vectors": 5}
    spec["train"]["num_epochs"] = 1
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert run_action(["train", "-e", str(path)]) == 0
    checkpoint = tmp_path / "results" / "train" / "oi_model_latest.pth"
    stored = read_checkpoint(checkpoint)
    assert "hyper_parameters" not in stored and stored[HPARAMS_KEY]["model_type"] == model_type

    cfg = load_config(path)
    inputs = torch.rand(2, 5, *layout_from_config(cfg.dataset).shape, generator=torch.Generator().manual_seed(0))
    np.save(tmp_path / "inputs.npy", inputs.numpy())
    tao_spec = {
        "model": {"model_type": model_type, "embedding_vectors": 5, "model_backbone": "custom", "margin": 2.0},
        "dataset": {"image_width": 12, "image_height": 12, "num_input": 4},
        "train": {"tensorboard": {"enabled": False}},
    }
    tao = run_tao({"checkpoint": str(checkpoint), "spec": tao_spec, "inputs": str(tmp_path / "inputs.npy")})
    assert tao["class"] == "OpticalInspectionModel"

    network, _ = load_network(cfg, checkpoint)
    with torch.no_grad():
        ours = pair_distance(*network(inputs[0], inputs[1]))
    assert tao["distances"] == pytest.approx(ours.tolist(), abs=1e-6)
    assert len(set(np.round(tao["distances"], 6))) > 1  # distinct pairs, distinct scores: a real comparison
