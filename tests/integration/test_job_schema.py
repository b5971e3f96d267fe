"""Each action's job schema holds every section the action reads, with types, allowed values and help."""

import dataclasses

import jsonschema
import pytest

from tao_siamese_oi.actions import ACTIONS, TOP_LEVEL_KEYS
from tao_siamese_oi.config import action_schema, default_spec
from tao_siamese_oi.config.schema import ExperimentConfig
from tests.integration.hardening_helpers import run_oi, write_tiny_spec

SECTIONS = {f.name for f in dataclasses.fields(ExperimentConfig)}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_the_schema_describes_and_accepts_the_defaults_and_refuses_bad_values(action):
    schema = action_schema(action)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(default_spec(action), schema)
    assert set(schema["properties"]) == {*TOP_LEVEL_KEYS, *ACTIONS[action].sections}
    model = schema["properties"].get("model")
    if model:
        assert model["properties"]["model_type"]["enum"][0] == "Siamese_Grid"
        assert model["properties"]["margin"]["description"].startswith("contrastive-loss margin")
    bad = {**default_spec(action), "results_dir": 3}
    with pytest.raises(jsonschema.ValidationError, match="3 is not of type 'string'"):
        jsonschema.validate(bad, schema)


def test_ranges_and_choices_are_in_the_schema():
    schema = action_schema("train")["properties"]
    assert schema["train"]["properties"]["num_epochs"] | {"default": None} == {
        "type": "integer",
        "default": None,
        "minimum": 1,
    }
    with pytest.raises(jsonschema.ValidationError, match="0 is less than the minimum of 1"):
        jsonschema.validate({"train": {"num_epochs": 0}}, action_schema("train"))
    with pytest.raises(jsonschema.ValidationError, match="'Adamw' is not one of"):
        jsonschema.validate({"train": {"optim": {"type": "Adamw"}}}, action_schema("train"))


@pytest.mark.slow
def test_every_action_reads_only_the_sections_its_schema_holds(capsys, monkeypatch, tmp_path, tiny_data, tiny_model):
    """Each action runs for real with a config that records which sections it reads."""
    import tao_siamese_oi.config as config_package
    from tao_siamese_oi.tasks import lifecycle

    accessed: set[str] = set()
    recording = [True]

    class Recording(ExperimentConfig):
        def __getattribute__(self, name):
            if recording[0] and name in SECTIONS:
                accessed.add(name)
            return super().__getattribute__(name)

    import tao_siamese_oi.entry_points.optical_inspection as cli_module

    real_load, real_save, real_next = config_package.load_config, lifecycle.save_resolved_config, cli_module.next_step

    def load_recording(*args, **kwargs):
        cfg = real_load(*args, **kwargs)
        object.__setattr__(cfg, "__class__", Recording)
        return cfg

    def save_unrecorded(cfg, out):  # experiment.yaml holds every section by design
        recording[0] = False
        try:
            return real_save(cfg, out)
        finally:
            recording[0] = True

    def next_unrecorded(*args):  # the next: line reads the next task's section by design (its results folder)
        recording[0] = False
        try:
            return real_next(*args)
        finally:
            recording[0] = True

    monkeypatch.setattr(config_package, "load_config", load_recording)
    monkeypatch.setattr(lifecycle, "save_resolved_config", save_unrecorded)
    monkeypatch.setattr(cli_module, "next_step", next_unrecorded)
    checkpoint, onnx_file = tiny_model["checkpoint"], tiny_model["onnx"]
    overrides = {
        "train": ["train.num_epochs=1"],
        "evaluate": [f"evaluate.checkpoint={checkpoint}"],
        "inference": [f"inference.checkpoint={checkpoint}"],
        "calibrate": [f"calibrate.checkpoint={checkpoint}", "calibrate.target_fpr=50"],  # the tiny split: 8 good parts
        "export": [f"export.checkpoint={checkpoint}"],
        "gen_trt_engine": [f"gen_trt_engine.onnx_file={onnx_file}"],
        "dataset_convert": [
            "dataset_convert.source=synthetic",
            f"dataset_convert.data_convert_output_dir={tmp_path / 'converted'}",
        ],
        "validate": [],
    }
    for action in ACTIONS:
        accessed.clear()
        spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / action, name=f"{action}.yaml")
        code, err = run_oi(capsys, action, "-e", spec, *overrides[action])
        assert code in (0, 6), (action, err)  # 6: gen_trt_engine stops where TensorRT is needed
        assert accessed, action
        assert accessed <= {*TOP_LEVEL_KEYS, *ACTIONS[action].sections}, (action, accessed)
