"""Spec loading: schema defaults <- YAML spec <- ``key=value`` overrides, validated and read-only.

OmegaConf does the merging, typing and ``${...}`` interpolation; this module turns its exceptions into one-line
:class:`ConfigError` messages that name the key (and the nearest valid key for a typo), applies TAO's
key aliases, and checks the allowed values and ranges kept in the schema's field metadata.
No custom resolver is registered: spec text is never evaluated.
"""

import dataclasses
import difflib
import logging
import math
import os
import typing
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigKeyError,
    InterpolationResolutionError,
    OmegaConfBaseException,
)
from tao_launcher.redaction import REDACTOR, redact_spec
from tao_launcher.safe_yaml import YamlRefused, load_yaml_file, load_yaml_text

from tao_siamese_oi.actions import ACTIONS, SECRET_KEYS, TOP_LEVEL_KEYS
from tao_siamese_oi.config.checks import check_config
from tao_siamese_oi.config.schema import ExperimentConfig, seal
from tao_siamese_oi.errors import ConfigError
from tao_siamese_oi.utils.files import atomic_write_text

log = logging.getLogger(__name__)

# TAO's docs table names these input_width/input_height while its example spec says image_width/image_height.
KEY_ALIASES = {"dataset.input_width": "dataset.image_width", "dataset.input_height": "dataset.image_height"}
# Dict-valued keys a spec replaces instead of merging into (a 2-light input_map must not keep the 4 defaults).
REPLACED_DICTS = ["dataset.input_map"]


def load_config(spec_path: str | os.PathLike | None = None, overrides: list[str] | tuple = ()) -> ExperimentConfig:
    """The validated, resolved experiment config, as the schema's dataclasses (what every task receives)."""
    cfg = OmegaConf.structured(ExperimentConfig)
    if spec_path is not None:
        _merge_layer(cfg, _read_spec(Path(spec_path)), f"spec {spec_path}")
    if overrides:
        _merge_layer(cfg, _parse_overrides(overrides), "command-line overrides")
    try:
        OmegaConf.resolve(cfg)
    except InterpolationResolutionError as exc:
        raise ConfigError(f"{_full_key(exc)}: cannot resolve interpolation ({_first_line(exc)})") from None
    validate(cfg)
    typed = OmegaConf.to_object(cfg)
    assert isinstance(typed, ExperimentConfig)
    for key in SECRET_KEYS:  # however it came (spec, override, ${oc.env:...}): hidden in everything echoed from now
        REDACTOR.add(getattr(typed, key))
    check_config(typed)
    seal(typed)
    return typed


def _read_spec(path: Path) -> DictConfig:
    if path.is_dir():
        raise ConfigError(f"spec file {path} is a folder; pass the YAML file with -e")
    if not path.is_file():
        raise ConfigError(f"spec file {path} not found; pass an existing YAML file with -e")
    try:
        data = load_yaml_file(path)
    except YamlRefused as exc:
        raise ConfigError(f"spec file {path}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"spec file {path}: the top level must be a mapping of keys, not {type(data).__name__}")
    return OmegaConf.create(data)


def _parse_overrides(overrides) -> DictConfig:
    layer = OmegaConf.create()
    for item in overrides:
        key, _, text = item.partition("=")
        if "=" not in item or not key.strip():
            raise ConfigError(f"override '{item}' is not key=value (example: train.num_epochs=20)")
        try:
            value = load_yaml_text(text) if text else ""
        except YamlRefused as exc:
            raise ConfigError(
                f"override {key}: the value is not valid YAML ({exc}); fix it or quote it (example: {key}='[0, 1]')"
            ) from None
        try:
            OmegaConf.update(layer, key.strip(), value, merge=True)
        except OmegaConfBaseException as exc:
            raise ConfigError(f"override '{key}': {_first_line(exc)}") from None
    return layer


def _merge_layer(cfg: DictConfig, layer: DictConfig, origin: str) -> None:
    _apply_aliases(layer, origin)
    _unset_empty_values(layer, ExperimentConfig)
    for key in REPLACED_DICTS:
        if OmegaConf.select(layer, key, default="<absent>") != "<absent>":
            OmegaConf.update(cfg, key, None, merge=False)
    try:
        cfg.merge_with(layer)
    except ConfigKeyError as exc:
        raise ConfigError(_unknown_key_message(exc, origin)) from None
    except OmegaConfBaseException as exc:
        key = _full_key(exc)
        if key in SECRET_KEYS:  # OmegaConf's message quotes the value: never echo a secret
            raise ConfigError(f"{origin}: {key} must be a string (a passphrase); the value given is not") from None
        raise ConfigError(f"{origin}: {key}: {_first_line(exc)}") from None


def _unset_empty_values(layer: DictConfig, schema) -> None:
    """TAO writes ``null`` (its resolved experiment.yaml, its dataclass defaults) or ``''`` (the defaults its API
    serves) for a value left unset. Where our schema has no "unset" for a key (a default instead, or a fixed
    list of choices), such a value means the default: drop it from the layer so the schema's default stands."""
    by_name = {f.name: f for f in dataclasses.fields(schema)}
    for key in list(layer.keys()):
        f = by_name.get(str(key))
        node = layer._get_node(key)  # the node, not its value: an interpolation is not resolved here
        if f is None or node is None:
            continue  # an unknown key: the merge names it
        if dataclasses.is_dataclass(f.type):
            if node._is_none():
                del layer[key]
            elif isinstance(node, DictConfig):
                _unset_empty_values(node, f.type)
            continue
        value = node._value()
        optional = type(None) in typing.get_args(f.type)
        if (value is None and not optional) or (value == "" and (f.metadata.get("choices") or not optional)):
            del layer[key]


def _apply_aliases(layer: DictConfig, origin: str) -> None:
    for old, new in KEY_ALIASES.items():
        parent_key, old_leaf = old.rsplit(".", 1)
        parent = OmegaConf.select(layer, parent_key)
        if not isinstance(parent, DictConfig) or old_leaf not in parent:
            continue
        new_leaf = new.rsplit(".", 1)[1]
        if new_leaf in parent:
            raise ConfigError(f"{origin}: both {old} and {new} are set; keep only {new}")
        log.warning("%s: %s is a deprecated alias; write %s instead", origin, old, new)
        parent[new_leaf] = parent.pop(old_leaf)


def _unknown_key_message(exc: ConfigKeyError, origin: str) -> str:
    full_key = _full_key(exc)
    parent, _, leaf = full_key.rpartition(".")
    node = OmegaConf.select(OmegaConf.structured(ExperimentConfig), parent) if parent else None
    valid = [str(k) for k in node] if isinstance(node, DictConfig) else list(ExperimentConfig.__dataclass_fields__)
    valid += [k.rsplit(".", 1)[1] for k in KEY_ALIASES if k.rsplit(".", 1)[0] == parent]
    hint = difflib.get_close_matches(leaf, valid, n=1, cutoff=0.6)
    if hint:
        return f"{origin}: unknown key {full_key}; did you mean {parent + '.' if parent else ''}{hint[0]}?"
    return f"{origin}: unknown key {full_key} (valid keys here: {', '.join(sorted(valid))})"


def validate(cfg: DictConfig) -> None:
    """Check allowed values and ranges declared in the schema's field metadata."""
    _validate_node(cfg, ExperimentConfig, "")


def _validate_node(node: DictConfig, schema, prefix: str) -> None:
    for f in dataclasses.fields(schema):
        key = f"{prefix}{f.name}"
        value = node[f.name]
        if dataclasses.is_dataclass(f.type):
            _validate_node(value, f.type, key + ".")
            continue
        meta = f.metadata
        if meta.get("inert") and value != _default(f):
            log.info("%s is set to %s, which changes nothing here: %s", key, value, meta["help"])
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):  # a NaN threshold would pass every defect
            raise ConfigError(f"{key}: {value} is not a finite number; give a number")
        if meta.get("choices") and value not in meta["choices"]:
            near = difflib.get_close_matches(str(value), [str(c) for c in meta["choices"]], n=1)
            hint = f"; did you mean {near[0]}?" if near else ""
            raise ConfigError(f"{key}: '{value}' is not one of {', '.join(map(str, meta['choices']))}{hint}")
        if meta.get("min") is not None and value < meta["min"]:
            raise ConfigError(f"{key}: {value} is below the minimum {meta['min']}")
        if meta.get("max") is not None and value > meta["max"]:
            raise ConfigError(f"{key}: {value} is above the maximum {meta['max']}")


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def require(value, key: str, what: str) -> str:
    """The value of a key a task cannot do without, or a one-line error saying what to give."""
    if not value:
        raise ConfigError(f"{key} is not set; give {what} (example: {key}=/path/to/file)")
    return str(value)


def redacted_container(cfg: ExperimentConfig) -> dict:
    return redact_spec(dataclasses.asdict(cfg), SECRET_KEYS)


def save_resolved_config(cfg: ExperimentConfig, directory: str | os.PathLike, name: str = "experiment.yaml") -> Path:
    """Write the resolved config (encryption_key redacted) next to a task's outputs."""
    path = Path(directory) / name
    atomic_write_text(path, yaml.safe_dump(redacted_container(cfg), sort_keys=False))
    return path


def default_spec(action: str) -> dict:
    """The full default spec of one action, as plain data (what a remote client shows)."""
    everything = OmegaConf.to_container(OmegaConf.structured(ExperimentConfig), resolve=False)
    assert isinstance(everything, dict)
    return {key: everything[key] for key in action_keys(action)}


def action_schema(action: str) -> dict:
    """The JSON Schema of every section an action reads: types, defaults, allowed values, ranges, help."""
    from tao_siamese_oi.config.reference import json_schema

    return json_schema(ExperimentConfig, action_keys(action))


def action_keys(action: str) -> tuple[str, ...]:
    if action not in ACTIONS:
        raise ConfigError(f"unknown action '{action}'; choose one of {', '.join(ACTIONS)}")
    return TOP_LEVEL_KEYS + ACTIONS[action].sections


def _full_key(exc: OmegaConfBaseException) -> str:
    return str(getattr(exc, "full_key", None) or getattr(exc, "key", None) or "<spec>")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
