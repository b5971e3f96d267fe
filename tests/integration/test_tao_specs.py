"""Specs as NVIDIA TAO writes and serves them load here, and the TAO keys they carry are honoured: best-k
checkpoints (train.checkpointer) and W&B tracking (wandb). Fixtures: tests/fixtures/tao/README.md."""

import csv
import json
from pathlib import Path

import pytest
import yaml
from tao_siamese_oi.entry_points.optical_inspection import run_action

from tao_siamese_oi.config import load_config
from tao_siamese_oi.errors import ConfigError
from tests.conftest import TINY_KEY, tiny_spec_dict

TAO_FIXTURES = Path(__file__).parent.parent / "fixtures" / "tao"
LIGHTS_OVERRIDE = "dataset.input_map={LowAngleLight: 0, SolderLight: 1, UniformLight: 2, WhiteLight: 3}"


def tao_spec(tmp_path: Path, name: str) -> Path:
    """A fixture as a YAML spec with its paths in tmp_path (the JSON one converted as a client would send it)."""
    text = (TAO_FIXTURES / name).read_text().replace("__DATA__", str(tmp_path))
    data = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    path = tmp_path / "tao.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_experiment_yaml_a_tao_training_writes_loads(tmp_path):
    cfg = load_config(tao_spec(tmp_path, "experiment_written_by_train.yaml"))
    assert cfg.model_name == "optical_inspection"  # null: the default
    assert cfg.dataset.concat_type == "linear" and cfg.dataset.grid_map.x == 2
    assert cfg.evaluate.results_dir == f"{tmp_path}/results/train/evaluate"  # null: ${results_dir}/evaluate
    assert cfg.train.checkpointer.filename == "model_best_{epoch:03d}" and not cfg.train.checkpointer.enable_topk
    assert cfg.wandb.enable and cfg.wandb.project == "TAO Toolkit"
    assert cfg.dataset.test_dataset.csv_path is None  # TAO's ??? (mandatory, unset): unset here


def test_tao_dataclass_defaults_say_which_of_num_input_and_input_map_to_set(tmp_path):
    spec = tao_spec(tmp_path, "dataclass_defaults.yaml")
    with pytest.raises(ConfigError) as caught:
        load_config(spec)
    message = str(caught.value)
    assert "\n" not in message
    assert "num_input is 8" in message and "set dataset.input_map to 8 entries" in message
    assert "dataset.num_input: 1" in message
    cfg = load_config(spec, ["dataset.num_input=4", LIGHTS_OVERRIDE])  # every other key of the 12 loads
    assert cfg.dataset.image_ext == ".jpg" and cfg.train.loss == "contrastive"
    assert cfg.dataset_convert.bot_top is None and cfg.train.results_dir.endswith("results/train")  # None: every side


def test_the_defaults_tao_serves_for_get_job_schema_load(tmp_path):
    cfg = load_config(tao_spec(tmp_path, "job_schema_default_train.json"))
    assert cfg.dataset_convert.bot_top == "all"  # '' there: no side chosen
    assert cfg.results_dir == "results" and cfg.train.results_dir == "results/train"  # '' there: unset
    assert cfg.wandb.tags == ["tao-toolkit"] and cfg.train.checkpointer.save_top_k == 1


def test_an_empty_or_null_value_is_still_checked_where_it_cannot_mean_unset(write_spec):
    with pytest.raises(ConfigError, match="bot_top: 'top' is not one of"):
        load_config(write_spec({"dataset_convert": {"bot_top": "top"}}))
    assert load_config(write_spec({"train": {"pretrained_model_path": None}})).train.pretrained_model_path is None


def _train(tiny_data, tmp_path, **train) -> tuple[int, Path]:
    spec = tiny_spec_dict(tiny_data, tmp_path / "results")
    spec["train"].update(num_epochs=3, **train)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return run_action(["train", "-e", str(path)]), tmp_path / "results" / "train"


def _val_losses(out: Path) -> dict[int, float]:
    with open(out / "lightning_logs" / "version_0" / "metrics.csv") as handle:
        return {int(row["epoch"]): float(row["val_loss"]) for row in csv.DictReader(handle) if row["val_loss"]}


@pytest.mark.slow
def test_checkpointer_keeps_the_best_k_by_the_monitored_metric_beside_the_periodic_files(tiny_data, tmp_path):
    code, out = _train(tiny_data, tmp_path, checkpointer={"enable_topk": True, "save_top_k": 2})
    assert code == 0
    losses = _val_losses(out)
    best_two = sorted(losses, key=losses.get)[:2]
    assert sorted(p.name for p in out.glob("model_best_*.pth")) == [f"model_best_{e:03d}.pth" for e in sorted(best_two)]
    assert len(list(out.glob("model_epoch_*.pth"))) == 3 and (out / "oi_model_latest.pth").is_file()


@pytest.mark.slow
def test_checkpointer_replace_periodic_keeps_one_best_and_the_latest(tiny_data, tmp_path):
    checkpointer = {"enable_topk": True, "replace_periodic": True, "monitor": "val_auroc", "save_top_k": 3}
    code, out = _train(tiny_data, tmp_path, checkpointer=checkpointer)
    assert code == 0
    assert len(list(out.glob("model_best_*.pth"))) == 1 and not list(out.glob("model_epoch_*.pth"))
    assert (out / "oi_model_latest.pth").is_file()


def test_a_monitor_that_is_not_logged_is_refused_before_anything_is_written(tiny_data, tmp_path, capsys):
    code, out = _train(tiny_data, tmp_path, checkpointer={"enable_topk": True, "monitor": "val_map"})
    assert code == 2
    err = capsys.readouterr().err
    assert "train.checkpointer.monitor: 'val_map' is not a metric this training logs; choose one of" in err
    assert "val_auroc" in err and not list(out.glob("*.pth"))


@pytest.mark.slow
def test_wandb_logs_offline_without_credentials_and_never_sees_the_key(tiny_data, tmp_path, monkeypatch, caplog):
    pytest.importorskip("wandb", reason="the wandb extra is not installed")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: no credentials
    monkeypatch.setenv("WANDB_SILENT", "true")
    spec = tiny_spec_dict(tiny_data, tmp_path / "results")
    spec["train"]["num_epochs"] = 2
    spec["wandb"] = {"enable": True, "project": "line-7"}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert run_action(["train", "-e", str(path)]) == 0
    runs = list((tmp_path / "results" / "train" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    record = runs[0].read_bytes()
    assert b"val_loss" in record and b"line-7" in record
    assert "logging offline" in caplog.text
    for file in (tmp_path / "results" / "train" / "wandb").rglob("*"):
        assert not file.is_file() or TINY_KEY.encode() not in file.read_bytes(), file


def test_wandb_enabled_without_the_package_says_so_in_one_line(tmp_path, monkeypatch, caplog):
    import builtins

    from tao_siamese_oi.engine.tracking import wandb_logger

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    assert wandb_logger(load_config(overrides=["wandb.enable=true"]), tmp_path) == []
    assert "wandb.enable is true but the wandb package is not installed" in caplog.text


def test_a_tao_key_that_does_nothing_here_says_so_when_set(caplog):
    caplog.set_level("INFO")
    load_config(overrides=["model.imagenet_pretrained=true", "gen_trt_engine.batch_size=4"])
    lines = [r.getMessage() for r in caplog.records if "changes nothing here" in r.getMessage()]
    assert len(lines) == 2 and lines[0].startswith("model.imagenet_pretrained is set to True")
    caplog.clear()
    load_config(overrides=["model.imagenet_pretrained=false"])  # the default: nothing to say
    assert "changes nothing here" not in caplog.text


@pytest.mark.parametrize(
    "monitor, mode",
    [("val_loss", "min"), ("val_fpr", "min"), ("train_acc", "max"), ("val_auroc", "max"),
     ("val_average_precision", "max"), ("val_calibrated_recall", "max"), ("val_calibrated_fpr", "min")],
)  # fmt: skip
def test_the_checkpointer_keeps_the_better_end_of_each_metric(monitor, mode):
    from tao_siamese_oi.engine.callbacks import default_mode

    assert default_mode(monitor) == mode
