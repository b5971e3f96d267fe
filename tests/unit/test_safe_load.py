"""Model files are read without running code: what real checkpoints hold loads, anything else is refused."""

import collections
import fractions
import os

import pytest
import torch

from tao_siamese_oi.artifacts.checkpoint import load_checkpoint_file
from tao_siamese_oi.artifacts.crypto import encrypt
from tao_siamese_oi.artifacts.safe_load import PickledRecord
from tao_siamese_oi.errors import CheckpointError


class RunsCommand:
    """What an attacker pickles: unpickling it calls os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious_checkpoint(path, marker) -> None:
    torch.save({"state_dict": {}, "epoch": 0, "payload": RunsCommand(marker)}, path)


def lightning_checkpoint_with_omegaconf_hparams(folder):
    """A checkpoint written by Lightning's ModelCheckpoint for a module that saved an OmegaConf spec as its
    hyper-parameters (what older TAO modules do with save_hyperparameters)."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from omegaconf import OmegaConf

    class Module(L.LightningModule):
        def __init__(self, experiment_spec):
            super().__init__()
            self.save_hyperparameters()
            self.model = torch.nn.Linear(4, 2)

        def training_step(self, batch, index):
            return self.model(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 1e-3)

    spec = OmegaConf.create({"results_dir": "/r", "train": {"num_epochs": 1, "gpu_ids": [0], "lr": 1.5e-3}})
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=4)
    callback = ModelCheckpoint(dirpath=folder, filename="model_epoch_{epoch:03d}", auto_insert_metric_name=False)
    trainer = L.Trainer(
        max_epochs=1, callbacks=[callback], logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(Module(spec), data)
    return folder / "model_epoch_000.ckpt"


def test_a_malicious_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    malicious_checkpoint(path, marker)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint_file(path)
    assert not marker.exists()
    assert str(caught.value) == (
        f"checkpoint {path} holds a Python object of type posix.system that no model file needs; refused "
        "without running it (the file may be malicious). Use a checkpoint written by train or TAO"
    )


def test_an_encrypted_malicious_checkpoint_is_refused_too(tmp_path):
    marker = tmp_path / "pwned"
    plain = tmp_path / "evil.pth"
    malicious_checkpoint(plain, marker)
    encrypted = tmp_path / "evil_encrypted.pth"
    encrypted.write_bytes(encrypt(plain.read_bytes(), "key"))
    with pytest.raises(CheckpointError, match="type posix.system that no model file needs"):
        load_checkpoint_file(encrypted, "key")
    assert not marker.exists()


def test_a_harmless_type_that_no_checkpoint_holds_is_refused_all_the_same(tmp_path):
    path = tmp_path / "fraction.pth"
    torch.save({"state_dict": {}, "ratio": fractions.Fraction(1, 3)}, path)
    with pytest.raises(CheckpointError, match="type fractions.Fraction that no model file needs"):
        load_checkpoint_file(path)


def test_a_lightning_checkpoint_with_an_omegaconf_spec_loads_as_inert_records(tmp_path):
    path = lightning_checkpoint_with_omegaconf_hparams(tmp_path)
    checkpoint = load_checkpoint_file(path, mmap=True)
    assert set(checkpoint["state_dict"]) == {"model.weight", "model.bias"}
    assert checkpoint["epoch"] == 0 and checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == 1e-3
    spec = checkpoint["hyper_parameters"]["experiment_spec"]
    assert isinstance(spec, PickledRecord) and spec.type_name == "omegaconf.dictconfig.DictConfig"
    assert "DictConfig" not in type(spec).__mro__[1].__name__  # a stand-in: no OmegaConf method can run
    assert repr(spec) == "<omegaconf.dictconfig.DictConfig (not rebuilt)>"


def test_our_own_and_tao_layout_checkpoints_load(tmp_path):
    """TAO's files (Lightning ModelCheckpoint, no hyper-parameters) hold only plain containers and tensors."""
    state = collections.OrderedDict({"model.fc1.weight": torch.randn(3, 2)})
    checkpoint = {
        "epoch": 9,
        "global_step": 90,
        "pytorch-lightning_version": "2.2.0",
        "state_dict": state,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 10}}}},
        "callbacks": {"ModelCheckpoint{'monitor': None}": {"best_model_score": None, "kth_value": torch.tensor(1.0)}},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 5e-4, "betas": (0.9, 0.999), "params": [0]}]}],
        "lr_schedulers": [],
    }
    path = tmp_path / "model_epoch_009_step_00090.pth"
    torch.save(checkpoint, path)
    loaded = load_checkpoint_file(path)
    assert torch.equal(loaded["state_dict"]["model.fc1.weight"], state["model.fc1.weight"])
    assert loaded["optimizer_states"][0]["param_groups"][0]["betas"] == (0.9, 0.999)
