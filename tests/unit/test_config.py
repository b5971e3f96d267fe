import json
import logging
from pathlib import Path

import pytest
import yaml

from tao_siamese_oi.config import default_spec, load_config, save_resolved_config
from tao_siamese_oi.config.schema import ExperimentConfig, TrainConfig
from tao_siamese_oi.errors import ConfigError

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_defaults_run_and_task_dirs_follow_results_dir():
    cfg = load_config(None, ["results_dir=/tmp/exp"])
    assert cfg.train.results_dir == "/tmp/exp/train"
    assert cfg.evaluate.results_dir == "/tmp/exp/evaluate"
    assert cfg.export.results_dir == "/tmp/exp/export"
    assert cfg.dataset.num_input == len(cfg.dataset.input_map) == 4
    assert cfg.dataset.image_ext == ".jpg"
    assert cfg.model.model_type == "Siamese_Grid"


def test_tao_documentation_example_loads_unchanged(tmp_path):
    text = (FIXTURES / "tao_example_spec.yaml").read_text().replace("__DATA__", str(tmp_path))
    spec = tmp_path / "tao.yaml"
    spec.write_text(text)
    cfg = load_config(spec)
    assert cfg.train.results_dir == f"{tmp_path}/results/train"
    assert cfg.dataset.image_height == 100
    assert cfg.train.loss == "contrastive"
    assert list(cfg.dataset.input_map) == ["LowAngleLight", "SolderLight", "UniformLight", "WhiteLight"]


def test_overrides_beat_spec_which_beats_defaults(write_spec):
    spec = write_spec({"train": {"num_epochs": 3, "seed": 5}, "dataset": {"batch_size": 4}})
    cfg = load_config(spec, ["train.num_epochs=20"])
    assert cfg.train.num_epochs == 20
    assert cfg.train.seed == 5
    assert cfg.dataset.batch_size == 4
    assert cfg.dataset.workers == 2  # schema default


def test_config_is_read_only():
    cfg = load_config()
    assert isinstance(cfg, ExperimentConfig) and isinstance(cfg.train, TrainConfig)  # typed: the schema's classes
    with pytest.raises(AttributeError, match="the config is read-only; set num_epochs in the spec"):
        cfg.train.num_epochs = 3
    with pytest.raises(AttributeError, match="read-only"):
        cfg.results_dir = "elsewhere"


def test_interpolation_between_keys(write_spec):
    spec = write_spec({"dataset": {"image_width": 64, "image_height": "${dataset.image_width}"}})
    assert load_config(spec).dataset.image_height == 64


def test_input_map_in_spec_replaces_the_default_instead_of_merging(write_spec):
    spec = write_spec({"dataset": {"num_input": 2, "input_map": {"SolderLight": 0, "WhiteLight": 1}}})
    assert dict(load_config(spec).dataset.input_map) == {"SolderLight": 0, "WhiteLight": 1}
    cfg = load_config(None, ["dataset.num_input=1", "dataset.input_map=null"])
    assert cfg.dataset.input_map is None


def test_input_width_alias_is_accepted_with_a_warning(write_spec, caplog):
    spec = write_spec({"dataset": {"input_width": 48, "input_height": 40}})
    with caplog.at_level(logging.WARNING):
        cfg = load_config(spec)
    assert (cfg.dataset.image_width, cfg.dataset.image_height) == (48, 40)
    assert "dataset.input_width is a deprecated alias" in caplog.text


def test_alias_and_real_key_together_is_an_error(write_spec):
    spec = write_spec({"dataset": {"input_width": 48, "image_width": 40}})
    with pytest.raises(ConfigError, match="both dataset.input_width and dataset.image_width"):
        load_config(spec)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.num_epoch=3", r"unknown key train\.num_epoch; did you mean train\.num_epochs\?"),
        ("dataset.imgae_ext=.png", r"did you mean dataset\.image_ext\?"),
        ("bogus=1", r"unknown key bogus \(valid keys here: .*results_dir"),
        ("dataset.batch_size=abc", r"dataset\.batch_size: Value 'abc' .* could not be converted to Integer"),
        (
            "model.model_type=Siamese3",
            r"model\.model_type: 'Siamese3' is not one of .*did you mean Siamese_3\?",
        ),
        ("train.optim.type=Adamw", r"train\.optim\.type: 'Adamw' is not one of Adam, SGD"),
        ("dataset.fpratio_sampling=-0.5", r"dataset\.fpratio_sampling: -0\.5 is below the minimum"),
        ("train.num_epochs", r"override 'train\.num_epochs' is not key=value"),
    ],
)
def test_bad_overrides_fail_with_one_line_naming_the_key(override, expected):
    with pytest.raises(ConfigError, match=expected) as info:
        load_config(None, [override])
    assert "\n" not in str(info.value)


def test_unknown_key_in_spec_names_the_spec(write_spec):
    spec = write_spec({"model": {"margn": 1.0}})
    with pytest.raises(ConfigError, match=r"spec .*spec\.yaml: unknown key model\.margn; did you mean model\.margin"):
        load_config(spec)


def test_yaml_syntax_error_names_line(tmp_path):
    spec = tmp_path / "broken.yaml"
    spec.write_text("model:\n  margin: [1.0\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: line \d+, column \d+: invalid YAML"):
        load_config(spec)


def test_missing_spec_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_saved_config_is_resolved_and_redacts_the_key(tmp_path):
    cfg = load_config(None, [f"results_dir={tmp_path}", "encryption_key=hunter2"])
    path = save_resolved_config(cfg, tmp_path)
    text = path.read_text()
    assert "hunter2" not in text
    saved = yaml.safe_load(text)
    assert saved["encryption_key"] == "*****"
    assert saved["train"]["results_dir"] == f"{tmp_path}/train"


def test_job_schema_has_every_section_train_reads():
    spec = default_spec("train")
    # evaluate: train calibrates the decision threshold for evaluate.target_fpr / target_recall
    sections = {"model", "dataset", "train", "evaluate", "wandb"}
    assert set(spec) == {"model_name", "encryption_key", "results_dir", *sections}
    assert spec["train"]["optim"] == {
        "type": "Adam",
        "lr": 5e-4,
        "lr_schedule": "constant",
        "momentum": 0.9,
        "weight_decay": 5e-4,
    }
    assert spec["train"]["results_dir"] == "${results_dir}/train"
    json.dumps(spec)  # plain data, serialisable as the CLI prints it
    with pytest.raises(ConfigError, match="unknown action"):
        default_spec("fly")
