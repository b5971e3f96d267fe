"""The mounts file: ``$LAUNCHER_MOUNTS``, else ``~/.tao_mounts.json``. Validated before any Docker call.

    {"Mounts": [{"source": "~/data", "destination": "/data", "read_only": true}],
     "Envs": [{"variable": "WANDB_MODE", "value": "offline"}],
     "DockerOptions": {"shm_size": "16G", "gpus": [0, 1], "user": "1000:1000"}}

A missing default file means no mounts; a file named by ``$LAUNCHER_MOUNTS`` must exist. Sources are expanded
(``~``, relative to the current directory) and must exist: Docker would otherwise create them, owned by root.
"""

import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from tao_siamese_oi.launcher import LauncherError

TOP_KEYS = {"Mounts", "Envs", "DockerOptions"}
MOUNT_KEYS = {"source", "destination", "read_only"}
ENV_KEYS = {"variable", "value"}
OPTION_TYPES = {
    "user": str,
    "ports": dict,
    "shm_size": (str, int),
    "ulimits": dict,
    "privileged": bool,
    "network": str,
    "tty": bool,
    "ipc_mode": str,
    "gpus": (str, list),
}


@dataclass(frozen=True)
class Mount:
    source: Path
    destination: str
    read_only: bool = False


@dataclass(frozen=True)
class MountsConfig:
    path: Path | None = None
    mounts: tuple[Mount, ...] = ()
    envs: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)


def mounts_path() -> tuple[Path, bool]:
    """The file to read and whether the user named it explicitly."""
    if os.environ.get("LAUNCHER_MOUNTS"):
        return Path(os.environ["LAUNCHER_MOUNTS"]).expanduser(), True
    return Path("~/.tao_mounts.json").expanduser(), False


def load_mounts(path: Path | None = None) -> MountsConfig:
    explicit = path is not None
    if path is None:
        path, explicit = mounts_path()
    if not path.is_file():
        if explicit:
            raise LauncherError(f"mounts file {path} not found; create it or unset LAUNCHER_MOUNTS")
        return MountsConfig()
    text = path.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LauncherError(
            f"mounts file {path} line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg})"
        ) from None
    return parse_mounts(data, path)


def _unknown(where: str, key: str, valid) -> LauncherError:
    near = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.5)
    hint = f"; did you mean {near[0]}?" if near else f" (valid: {', '.join(sorted(valid))})"
    return LauncherError(f"{where}: unknown key '{key}'{hint}")


def parse_mounts(data, path: Path) -> MountsConfig:
    if not isinstance(data, dict):
        raise LauncherError(f"mounts file {path}: the top level must be an object with {', '.join(sorted(TOP_KEYS))}")
    for key in data:
        if key not in TOP_KEYS:
            raise _unknown(f"mounts file {path}", key, TOP_KEYS)
    mounts = tuple(_mount(item, i, path) for i, item in enumerate(_list(data, "Mounts", path)))
    envs = {}
    for i, item in enumerate(_list(data, "Envs", path)):
        where = f"mounts file {path}: Envs[{i}]"
        _check_keys(item, ENV_KEYS, where, required=ENV_KEYS)
        envs[str(item["variable"])] = str(item["value"])
    options = data.get("DockerOptions", {})
    if not isinstance(options, dict):
        raise LauncherError(f"mounts file {path}: DockerOptions must be an object")
    for key, value in options.items():
        if key not in OPTION_TYPES:
            raise _unknown(f"mounts file {path}: DockerOptions", key, OPTION_TYPES)
        if not isinstance(value, OPTION_TYPES[key]):
            raise LauncherError(f"mounts file {path}: DockerOptions.{key} has the wrong type ({type(value).__name__})")
    gpus = options.get("gpus", "all")
    if isinstance(gpus, str) and gpus not in ("all", "none"):
        raise LauncherError(f'mounts file {path}: DockerOptions.gpus must be "all", "none" or a list of GPU ids')
    return MountsConfig(path, mounts, envs, dict(options))


def _list(data: dict, key: str, path: Path) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise LauncherError(f"mounts file {path}: {key} must be a list")
    return value


def _check_keys(item, valid: set, where: str, required: set) -> None:
    if not isinstance(item, dict):
        raise LauncherError(f"{where} must be an object with {', '.join(sorted(required))}")
    for key in item:
        if key not in valid:
            raise _unknown(where, key, valid)
    missing = required - set(item)
    if missing:
        raise LauncherError(f"{where} lacks {', '.join(sorted(missing))}")


def _mount(item, index: int, path: Path) -> Mount:
    where = f"mounts file {path}: Mounts[{index}]"
    _check_keys(item, MOUNT_KEYS, where, required={"source", "destination"})
    source = Path(os.path.abspath(Path(item["source"]).expanduser()))
    if not source.exists():
        raise LauncherError(
            f"{where}: source {source} does not exist; create it first (Docker would create it owned by root)"
        )
    destination = str(item["destination"])
    if not destination.startswith("/"):
        raise LauncherError(f"{where}: destination '{destination}' must be an absolute path in the container")
    return Mount(source, destination.rstrip("/") or "/", bool(item.get("read_only", False)))
