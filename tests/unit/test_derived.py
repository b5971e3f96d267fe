"""Each fact is stated once; these tests prove the lists derived from it cannot drift."""

import configparser
import dataclasses
import importlib
import re
import warnings
from pathlib import Path

import pytest

from tao_siamese_oi.actions import ACTIONS, TOP_LEVEL_KEYS
from tao_siamese_oi.config.schema import ExperimentConfig, path_keys
from tao_siamese_oi.model import registry

ROOT = Path(__file__).resolve().parents[2]
PATH_LIKE = re.compile(r"(_dir|_path|_file|checkpoint|trt_engine|timing_cache)$")


def schema_fields(schema=ExperimentConfig, prefix=""):
    for f in dataclasses.fields(schema):
        if dataclasses.is_dataclass(f.type):
            yield from schema_fields(f.type, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f


def test_every_path_field_is_marked_and_the_plugin_translates_exactly_those():
    from tao_siamese_oi.plugin import PLUGIN

    looks_like_a_path = {key for key, _ in schema_fields() if PATH_LIKE.search(key)}
    ignored = {"gen_trt_engine.tensorrt.calibration.cal_image_dir"}  # accepted and ignored (a list)
    assert looks_like_a_path - ignored <= set(path_keys())
    assert PLUGIN.path_keys == path_keys()
    # the keys the launcher once missed (dataset_convert with host paths broke in Docker):
    assert {"dataset_convert.root_dataset_dir", "dataset_convert.data_convert_output_dir"} <= set(PLUGIN.path_keys)


def test_the_action_table_drives_the_cli_the_plugin_the_job_schema_and_the_tasks():
    from tao_siamese_oi.entry_points.optical_inspection import cli

    from tao_siamese_oi.config import default_spec
    from tao_siamese_oi.plugin import PLUGIN

    assert PLUGIN.action_names == list(ACTIONS)
    assert {a.name: (a.help, a.example) for a in PLUGIN.actions} == {n: (a.help, a.example) for n, a in ACTIONS.items()}
    assert set(ACTIONS) <= set(cli.commands)
    for name, action in ACTIONS.items():
        assert cli.commands[name].help.startswith(action.help) and action.example in cli.commands[name].help
        assert set(default_spec(name)) == {*TOP_LEVEL_KEYS, *action.sections}
        assert set(action.sections) <= {f.name for f in dataclasses.fields(ExperimentConfig)}
        assert importlib.util.find_spec(action.task_module) is not None, action.task_module


def test_model_choices_come_from_the_registry_and_every_type_has_a_network():
    import tao_siamese_oi.model.networks  # noqa: F401 - registers the builders

    model = {f.name: f for f in dataclasses.fields(ExperimentConfig)}["model"].type
    fields = {f.name: f for f in dataclasses.fields(model)}
    assert fields["model_type"].metadata["choices"] == [*registry.MODEL_TYPES, *registry.ALIASES]
    assert fields["model_backbone"].metadata["choices"] == sorted({t.backbone for t in registry.MODEL_TYPES.values()})
    assert registry.available_models() == sorted(registry.MODEL_TYPES)
    assert registry.builder("Siamese") is registry.builder("Siamese_1")


def test_a_registry_collision_warns_and_an_undeclared_name_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))

    def other(**kwargs):
        return None

    with pytest.warns(UserWarning, match="model type 'Siamese_3' is registered twice"):
        registry.register_model("Siamese_3")(other)
    assert registry.builder("Siamese_3") is other
    with pytest.raises(ValueError, match="'Siamese_9' is not declared in registry.MODEL_TYPES"):
        registry.register_model("Siamese_9")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry.register_model("Siamese_3")(other)  # the same builder again: no collision


def test_setup_cfg_lists_every_package():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "tao_siamese_oi").rglob("__init__.py")} | {
        "tao_siamese_oi.entry_points"
    }
    assert listed == found
