"""What ``tao model <task> <action> ...`` does: pick the runner, translate paths, run, return the exit code."""

import dataclasses
import os
import sys
import tempfile
from pathlib import Path

from tao_launcher import LauncherError
from tao_launcher.mounts import Mount, MountsConfig, check_unique_destinations, load_mounts, volume_mount
from tao_launcher.paths import HostPaths, PathMapper, override_keys, translate_override, translate_spec
from tao_launcher.plugins import Plugin
from tao_launcher.protocol import spec_text, split_option_values
from tao_launcher.redaction import REDACTED, SECRET_ENV_NAME, redact_argv, redact_spec
from tao_launcher.safe_yaml import YamlRefused, load_yaml_file

SPEC_MOUNT = "/tao_launcher/spec"
LOCAL_ENV = "TAO_LAUNCHER_LOCAL"


def image_for(plugin: Plugin, override: str | None = None) -> str:
    env_key = f"TAO_{plugin.name.upper()}_IMAGE"
    return override or os.environ.get(env_key) or plugin.spec.image


# How the user runs the task, for a plugin that suggests the next command: set for the task's process.
COMMAND_ENV = "TAO_LAUNCHER_COMMAND"


def run_local(plugin: Plugin, argv: list[str]) -> int:
    """Run the action in this Python environment: same argv contract, same exit codes."""
    argv, volumes = split_volumes(split_option_values(argv, plugin.spec.path_options))
    if volumes:
        print("tao: --volume is for a container; ignored with --local (paths are this machine's)", file=sys.stderr)
    action = argv[0] if argv else ""
    if action not in plugin.actions:
        raise LauncherError(f"{plugin.name} has no action '{action}'; choose one of {', '.join(plugin.actions)}")
    before = os.environ.get(COMMAND_ENV)
    os.environ[COMMAND_ENV] = f"tao --local model {plugin.name}"
    try:
        return int(plugin.load(plugin.spec.handler)(list(argv)) or 0)
    finally:  # the launcher may run in a longer-lived process (tests, the job service)
        if before is None:
            os.environ.pop(COMMAND_ENV, None)
        else:
            os.environ[COMMAND_ENV] = before


def container_argv(plugin: Plugin, argv: list[str], config: MountsConfig, workdir: Path, hide_secrets=False):
    """The argv to run in the container and the extra mounts it needs (the translated spec; with
    ``hide_secrets``, as --dry-run leaves it behind, without the plugin's secret values)."""
    mapper = PathMapper(config.mounts)
    patterns = plugin.spec.path_keys
    spec_options = set(plugin.spec.path_options)
    out, extra = [], []
    args = iter(argv)
    for arg in args:
        if arg in spec_options:
            host_spec = Path(next(args, ""))
            hidden = plugin.spec.secret_keys if hide_secrets else ()
            name = _write_translated_spec(host_spec, mapper, patterns, workdir, override_keys(argv), hidden,
                                          plugin.spec.spec_format)  # fmt: skip
            out += [arg, f"{SPEC_MOUNT}/{name}"]
            extra = [Mount(workdir, SPEC_MOUNT, read_only=True)]
        else:
            out.append(translate_override(arg, mapper, patterns))
    return [*plugin.spec.argv_prefix, *out], extra


def spec_on_host(given: Path, mapper: PathMapper) -> Path:
    """The spec file to read: the path as given on this host, or, for a container path under a mount's
    destination (``-e /workspace/tao-experiments/specs/train.yaml``), the file it is on this host."""
    if given.is_file():
        return given
    on_host = mapper.to_host(str(given))
    if on_host is not None and on_host.is_file():
        return on_host
    where = f" (on this host: {on_host})" if on_host is not None else ""
    raise LauncherError(f"spec file {given} not found{where}")


def _write_translated_spec(
    given: Path, mapper: PathMapper, patterns, workdir: Path, overridden, hidden=(), spec_format="yaml"
) -> str:
    host_spec = spec_on_host(given, mapper)
    try:
        data = load_yaml_file(host_spec) or {}
    except YamlRefused as exc:
        raise LauncherError(f"spec file {host_spec}: {exc}") from None
    if not isinstance(data, dict):
        raise LauncherError(f"spec file {host_spec}: the top level must be a mapping of keys")
    target = workdir / host_spec.name
    translated = redact_spec(translate_spec(data, mapper, patterns, overridden=overridden), hidden)
    target.write_text(spec_text(translated, spec_format))  # read (YAML reads JSON too), written as the plugin reads
    target.chmod(0o644)
    return host_spec.name


def split_volumes(argv: list[str]) -> tuple[list[str], list[str]]:
    """``--volume SRC:DST`` pairs out of an action's arguments, where NVIDIA's launcher takes them."""
    rest, volumes = [], []
    args = iter(argv)
    for arg in args:
        if arg == "--volume":
            value = next(args, None)
            if value is None:
                raise LauncherError("--volume needs SOURCE:DESTINATION")
            volumes.append(value)
        elif arg.startswith("--volume="):
            volumes.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return rest, volumes


def with_volumes(config: MountsConfig, volumes: list[str]) -> MountsConfig:
    """The mounts file's mounts and this command's ``--volume`` ones (each destination still used once)."""
    if not volumes:
        return config
    mounts = (*config.mounts, *(volume_mount(v) for v in volumes))
    check_unique_destinations(mounts, "--volume")
    return dataclasses.replace(config, mounts=mounts)


def run_docker(plugin: Plugin, argv: list[str], image: str | None = None, dry_run: bool = False) -> int:
    from tao_launcher.docker_runner import run_container

    argv, volumes = split_volumes(split_option_values(argv, plugin.spec.path_options))
    config = with_volumes(load_mounts(), volumes)
    if dry_run:  # the printed command must work when pasted: keep the translated spec where it can be seen
        workdir = Path(tempfile.mkdtemp(prefix=f"{plugin.name}-", dir=_dry_run_home()))
        return _print_dry_run(plugin, argv, config, image, workdir)
    with tempfile.TemporaryDirectory(prefix="tao_launcher_") as tmp:
        spec = _container(plugin, argv, config, image, Path(tmp))
        return run_container(spec, host_paths(plugin, argv, config), build_hint=_build_hint(plugin, spec["image"]))


def _build_hint(plugin: Plugin, image: str) -> str:
    """The plugin's build command for its own image; for another image, the plain one."""
    if plugin.spec.image_build and image == plugin.spec.image:
        return plugin.spec.image_build
    return f"docker build -t {image} ."


def _container(
    plugin: Plugin, argv: list[str], config: MountsConfig, image: str | None, workdir: Path, hide_secrets=False
) -> dict:
    from tao_launcher.docker_runner import ACTION_LABEL, TASK_LABEL, container_spec

    workdir.chmod(0o755)  # readable by the container's (non-root) user
    command, extra = container_argv(plugin, argv, config, workdir, hide_secrets)
    spec = container_spec(
        image_for(plugin, image),
        command,
        config,
        extra,
        plugin_options=dict(plugin.spec.docker_options),
        labels={TASK_LABEL: plugin.name, ACTION_LABEL: argv[0] if argv else ""},
    )
    spec["environment"].setdefault(COMMAND_ENV, f"tao model {plugin.name}")
    return spec


def _print_dry_run(plugin: Plugin, argv: list[str], config: MountsConfig, image: str | None, workdir: Path) -> int:
    from tao_launcher.docker_runner import docker_command_line

    spec = _container(plugin, argv, config, image, workdir, hide_secrets=True)
    shown = dict(spec, command=redact_argv(spec["command"], plugin.spec.secret_keys))
    # A secret-looking variable is printed as `--env NAME`: docker takes its value from the caller's environment.
    shown["environment"] = {k: None if SECRET_ENV_NAME.search(k) else v for k, v in spec["environment"].items()}
    print(docker_command_line(shown))
    if shown != spec or any(REDACTED in p.read_text() for p in workdir.glob("*")):
        print(
            "tao: secrets are shown as ***** (and secret-looking variables as --env NAME, read from your "
            "environment); put them back before running the command",
            file=sys.stderr,
        )
    if any(workdir.iterdir()):
        print(f"tao: the translated spec is kept in {workdir} (mounted at {SPEC_MOUNT})", file=sys.stderr)
    else:
        workdir.rmdir()
    return 0


def host_paths(plugin: Plugin, argv: list[str], config: MountsConfig) -> HostPaths:
    """What the container's paths are on this host: each mount, and the translated spec (the user's file).
    Called after the container spec is built, so the spec file was found then."""
    pairs = {str(m.destination): str(m.source) for m in config.mounts}
    mapper = PathMapper(config.mounts)
    args = iter(argv)
    for arg in args:
        if arg in plugin.spec.path_options:
            given = Path(next(args, ""))
            pairs[f"{SPEC_MOUNT}/{given.name}"] = str(spec_on_host(given, mapper))
    return HostPaths(pairs)


def _dry_run_home() -> Path:
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tao_launcher" / "dry_run"
    home.mkdir(parents=True, exist_ok=True)
    return home
