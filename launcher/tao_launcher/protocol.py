"""The plugin protocol: what a model plugin declares so that the launcher (and the job service) can run it.

A plugin is a distribution with an entry point in the ``tao_launcher.plugins`` group. The entry point's object
is a :class:`PluginSpec` (or a dict with the same fields), plain data: reading it must not import torch or any
heavy library. Nothing of the plugin runs until an action does: locally through ``handler``, in a container
through ``argv_prefix`` in ``image``. docs/plugin_protocol.md describes every field.

The protocol is versioned ``MAJOR.MINOR``: a launcher reads every plugin of its major version (minor versions
only add optional fields) and skips, with one line, a plugin of another major version.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

PROTOCOL_VERSION = "1.6"
SPEC_FORMATS = ("yaml", "json")


def spec_text(data: dict, spec_format: str) -> str:
    """A spec as the plugin reads it (``spec_format``): what the job service and the launcher's translated copy
    write."""
    if spec_format == "json":
        import json

        return json.dumps(data, indent=2) + "\n"
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


KEY_ENV = "TAO_JOB_ENCRYPTION_KEY"  # where a job service task finds its secret (the sealed key, opened)
GROUP = "tao_launcher.plugins"


class ProtocolError(ValueError):
    """A declaration that does not follow the protocol; the message names the field."""


@dataclass(frozen=True)
class Action:
    name: str
    help: str  # one line, shown by `tao model <task> --help`
    example: str = ""  # a full command line, shown in the action's help


@dataclass(frozen=True)
class PluginSpec:
    name: str  # the task name: `tao model <name> <action>`
    version: str
    summary: str  # one line, shown by `tao --help`
    image: str  # the container image the actions run in by default
    argv_prefix: tuple[str, ...]  # the command in the image; the action and its arguments follow
    handler: str  # "module:function"; function(argv: list[str]) -> int runs an action in this process
    actions: tuple[Action, ...]
    path_options: tuple[str, ...] = ()  # command-line options whose value is a spec file (translated inside)
    path_keys: tuple[str, ...] = ()  # dotted spec keys (fnmatch patterns) whose values are host paths
    docker_options: Mapping = field(default_factory=dict)  # defaults under the mounts file's DockerOptions
    schema: str = ""  # "module:function"; function(action: str) -> dict, the action's default spec
    protocol: str = PROTOCOL_VERSION
    # 1.1, for the job service: starting points ({name, description, overrides}) and the hook that binds a job's
    # datasets, parent jobs and results folder into its spec:
    # function(action, specs, datasets: {role: [path]}, ancestors: [{action, results_dir}], results_dir) -> spec
    base_experiments: tuple[Mapping, ...] = ()
    job_specs: str = ""
    # function(model_job_dir: Path) -> predictor(request: dict) -> dict; a ValueError is a bad request
    inference_server: str = ""
    # 1.2: the command that builds ``image``, shown when the image is missing
    image_build: str = ""
    # 1.3: spec keys whose values are secrets (an encryption key): never printed by the launcher, kept out of
    # the job service's database and spec files (sealed instead), redacted wherever a command line is echoed
    secret_keys: tuple[str, ...] = ()
    # 1.3, the job service's walls (service/walls.py): dotted spec keys (fnmatch patterns) a task writes to (the
    # service drops the client's values, and they must resolve inside the job's folder), value prefixes that
    # name a model the plugin ships rather than a path, and the environment variables a client may set for a
    # job (besides JOB_VAR_* ones, which no library reads)
    output_keys: tuple[str, ...] = ()
    named_models: tuple[str, ...] = ()
    job_env: tuple[str, ...] = ()
    # 1.4, how the job service hands a job its spec and secret: the spec file's format, and the value it writes
    # under the first of secret_keys when a job has a key ("{env}" stands for KEY_ENV; "", or no secret_keys,
    # writes none: the task reads KEY_ENV itself). The default is an OmegaConf reference (OmegaConf resolves it).
    spec_format: str = "yaml"
    secret_spec_value: str = "${oc.env:{env}}"
    # 1.5: which of a job's files are its model, for a client's download of the "latest" (or "best") model:
    # {kind: (paths under the job's results folder, fnmatch patterns)}; a kind the plugin does not name is refused
    model_files: Mapping = field(default_factory=dict)
    # 1.6, the job service's AutoML (service/automl.py): what a search may change and what it watches, as
    # {metric, direction ("maximize" | "minimize"), epochs_key, parameters: [{parameter, value_type ("float",
    # "int", "categorical", "bool"), default_value, valid_min, valid_max, valid_options, log}], checkpoint_files}.
    # ``metric`` is a KPI of the task's status.json epoch lines (reported to the search every epoch, so pruners
    # can stop a trial early); ``epochs_key`` the spec key of the training length; ``checkpoint_files`` the
    # patterns (under a job's results folder) removed from the trials that lost when the client asks.
    automl: Mapping = field(default_factory=dict)

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.name == name), None)

    @property
    def action_names(self) -> list[str]:
        return [a.name for a in self.actions]

    @property
    def spec_option(self) -> str:
        """The option the job service passes a job's spec file with: the first of ``path_options``."""
        return self.path_options[0] if self.path_options else ""


def split_option_values(argv: list[str], options) -> list[str]:
    """``-e=spec.yaml`` as ``-e spec.yaml`` for a plugin's spec options (``path_options``): TAO's argparse takes
    both forms, so the launcher and a plugin's own command line accept both. Here, in the protocol module, because
    a plugin's command line may import nothing else of the launcher (inside an image it may be a bare copy)."""
    split = []
    for arg in argv:
        option, sep, value = arg.partition("=")
        split += [option, value] if sep and option in options else [arg]
    return split


def major(version: str) -> int:
    try:
        return int(str(version).split(".", 1)[0])
    except ValueError:
        raise ProtocolError(f"protocol '{version}' is not MAJOR.MINOR") from None


def parse(declared) -> PluginSpec:
    """A PluginSpec from what an entry point holds (a PluginSpec or a dict of its fields), checked."""
    if isinstance(declared, PluginSpec):
        spec = declared
    elif isinstance(declared, Mapping):
        known = {f.name for f in fields(PluginSpec)}
        unknown = sorted(set(declared) - known)
        if unknown:
            raise ProtocolError(f"unknown field(s) {', '.join(unknown)}")
        missing = sorted(f.name for f in fields(PluginSpec) if f.name not in declared and _required(f))
        if missing:
            raise ProtocolError(f"missing field(s) {', '.join(missing)}")
        values = dict(declared)
        values["actions"] = tuple(_action(a) for a in declared["actions"])
        for key in ("argv_prefix", "path_options", "path_keys", "base_experiments", "secret_keys", "output_keys",
                    "named_models", "job_env"):  # fmt: skip
            values[key] = tuple(declared.get(key, ()))
        spec = PluginSpec(**values)
    else:
        raise ProtocolError(f"the entry point holds a {type(declared).__name__}, not a PluginSpec or a dict")
    _check(spec)
    return spec


def _required(f) -> bool:
    from dataclasses import MISSING

    return f.default is MISSING and f.default_factory is MISSING


def _action(item) -> Action:
    if isinstance(item, Action):
        return item
    if isinstance(item, Mapping) and {"name", "help"} <= set(item) <= {"name", "help", "example"}:
        return Action(**item)
    raise ProtocolError(f"action {item!r} needs name and help (and optionally example)")


def _check(spec: PluginSpec) -> None:
    major(spec.protocol)
    if not spec.name or not spec.name.replace("_", "").isalnum():
        raise ProtocolError(f"name '{spec.name}' must be letters, digits and _")
    if not spec.actions:
        raise ProtocolError("actions is empty")
    if len(set(spec.action_names)) != len(spec.actions):
        raise ProtocolError("two actions share a name")
    for key in ("handler", "schema", "job_specs", "inference_server"):
        value = getattr(spec, key)
        if value and (":" not in value or not all(value.split(":", 1))):
            raise ProtocolError(f"{key} '{value}' is not 'module:function'")
    if not spec.argv_prefix:
        raise ProtocolError("argv_prefix is empty")
    if spec.spec_format not in SPEC_FORMATS:
        raise ProtocolError(f"spec_format '{spec.spec_format}' must be one of {', '.join(SPEC_FORMATS)}")
    if not isinstance(spec.model_files, Mapping) or not all(
        isinstance(kind, str) and isinstance(paths, (list, tuple)) and all(isinstance(p, str) for p in paths)
        for kind, paths in spec.model_files.items()
    ):
        raise ProtocolError("model_files must map a kind ('latest', 'best') to a list of paths")
    if spec.automl:
        _check_automl(spec.automl)


AUTOML_VALUE_TYPES = ("float", "int", "categorical", "bool")


def _check_automl(automl) -> None:
    if not isinstance(automl, Mapping):
        raise ProtocolError("automl must be a mapping (metric, direction, epochs_key, parameters)")
    for key in ("metric", "epochs_key"):
        if not isinstance(automl.get(key), str) or not automl[key]:
            raise ProtocolError(f"automl.{key} must be a non-empty string")
    if automl.get("direction", "maximize") not in ("maximize", "minimize"):
        raise ProtocolError("automl.direction must be maximize or minimize")
    parameters = automl.get("parameters")
    if not isinstance(parameters, (list, tuple)) or not parameters:
        raise ProtocolError("automl.parameters must list at least one parameter")
    for item in parameters:
        name = item.get("parameter") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ProtocolError(f"automl parameter {item!r} needs a 'parameter' (a dotted spec key)")
        kind = item.get("value_type")
        if kind not in AUTOML_VALUE_TYPES:
            raise ProtocolError(f"automl parameter {name}: value_type must be one of {', '.join(AUTOML_VALUE_TYPES)}")
        bounds = (item.get("valid_min"), item.get("valid_max"))
        if kind in ("float", "int") and not all(isinstance(b, (int, float)) for b in bounds):
            raise ProtocolError(f"automl parameter {name}: a {kind} needs numeric valid_min and valid_max")
        if kind == "categorical" and not item.get("valid_options"):
            raise ProtocolError(f"automl parameter {name}: a categorical needs valid_options")
