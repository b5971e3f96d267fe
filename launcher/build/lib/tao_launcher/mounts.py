"""The mounts file: ``$LAUNCHER_MOUNTS``, else ``~/.tao_mounts.json``. Validated before any Docker call.

    {"Mounts": [{"source": "~/data", "destination": "/data", "read_only": true}],
     "Envs": [{"variable": "WANDB_MODE", "value": "offline"}],
     "DockerOptions": {"shm_size": "16G", "gpus": [0, 1], "user": "1000:1000"}}

A missing default file means no mounts; a file named by ``$LAUNCHER_MOUNTS`` must exist. Sources are expanded
(``~``, relative to the current directory) and must exist: Docker would otherwise create them, owned by root.
Nothing in the file can smuggle an option into Docker: paths with ``:`` or ``,`` (Docker's separators) are
refused, destinations are normalised, free of ``..`` and unique, env names are identifiers.
Choices that hand the container this machine (privileged, the host network, ``/`` or the Docker socket
mounted) are allowed, with one warning line each.

Every file NVIDIA's launcher accepts works here: a relative destination is made absolute against the current
folder (as it does), keys it ignores are ignored with a warning naming them, an integer ``user`` is a uid.
"""

import difflib
import json
import os
import posixpath
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tao_launcher import LauncherError

TOP_KEYS = {"Mounts", "Envs", "DockerOptions"}
MOUNT_KEYS = {"source", "destination", "read_only"}
ENV_KEYS = {"variable", "value"}
OPTION_TYPES: dict[str, type | tuple[type, ...]] = {
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


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SEPARATORS = (":", ",")
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


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
    warnings: tuple[str, ...] = ()


def mounts_path() -> tuple[Path, bool]:
    """The file to read and whether the user named it explicitly."""
    if os.environ.get("LAUNCHER_MOUNTS"):
        return Path(os.environ["LAUNCHER_MOUNTS"]).expanduser(), True
    return Path("~/.tao_mounts.json").expanduser(), False


def load_mounts(path: Path | None = None, warn=None) -> MountsConfig:
    """The validated mounts file; its warnings go to ``warn`` (default: stderr, one line each)."""
    config = _load(path)
    for message in config.warnings:
        (warn or _stderr_warning)(message)
    return config


def _stderr_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _load(path: Path | None) -> MountsConfig:
    explicit = path is not None
    if path is None:
        path, explicit = mounts_path()
    if not path.is_file():
        if explicit:
            raise LauncherError(f"mounts file {path} not found; create it or unset LAUNCHER_MOUNTS")
        return MountsConfig()
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LauncherError(
            f"mounts file {path} line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg})"
        ) from None
    except UnicodeDecodeError:
        raise LauncherError(f"mounts file {path} is not UTF-8 text; is it the JSON mounts file?") from None
    return parse_mounts(data, path)


def _unknown(where: str, key: str, valid) -> LauncherError:
    near = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.5)
    hint = f"; did you mean {near[0]}?" if near else f" (valid: {', '.join(sorted(valid))})"
    return LauncherError(f"{where}: unknown key '{key}'{hint}")


def parse_mounts(data, path: Path) -> MountsConfig:
    if not isinstance(data, dict):
        raise LauncherError(f"mounts file {path}: the top level must be an object with {', '.join(sorted(TOP_KEYS))}")
    notes: list[str] = []
    for key in data:
        if key not in TOP_KEYS:  # NVIDIA's launcher refuses these too: a typo here would drop a whole section
            raise _unknown(f"mounts file {path}", key, TOP_KEYS)
    mounts = tuple(_mount(item, i, path, notes) for i, item in enumerate(_list(data, "Mounts", path)))
    check_unique_destinations(mounts, f"mounts file {path}")
    envs = {}
    for i, item in enumerate(_list(data, "Envs", path)):
        where = f"mounts file {path}: Envs[{i}]"
        _check_keys(item, ENV_KEYS, where, ENV_KEYS, notes)
        name = item["variable"]
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise LauncherError(
                f"{where}: variable {json.dumps(name)} is not a valid name; use letters, digits and _ "
                "(not starting with a digit)"
            )
        if name in envs:
            raise LauncherError(f"{where}: variable {name} is set twice; keep one")
        envs[name] = str(item["value"])
    options = dict(data.get("DockerOptions", {})) if isinstance(data.get("DockerOptions", {}), dict) else None
    if options is None:
        raise LauncherError(f"mounts file {path}: DockerOptions must be an object")
    if isinstance(options.get("user"), int) and not isinstance(options["user"], bool):
        options["user"] = str(options["user"])  # a uid, as Docker (and NVIDIA's launcher) take it
    for key, value in options.items():
        if key not in OPTION_TYPES:
            raise _unknown(f"mounts file {path}: DockerOptions", key, OPTION_TYPES)
        if not isinstance(value, OPTION_TYPES[key]):
            raise LauncherError(f"mounts file {path}: DockerOptions.{key} has the wrong type ({type(value).__name__})")
    gpus = options.get("gpus", "all")
    if isinstance(gpus, str) and gpus not in ("all", "none"):
        raise LauncherError(f'mounts file {path}: DockerOptions.gpus must be "all", "none" or a list of GPU ids')
    return MountsConfig(path, mounts, envs, options, (*notes, *_risks(mounts, options, f"mounts file {path}")))


def _risks(mounts, options: dict, where: str) -> tuple[str, ...]:
    """One line for each choice that hands the container this machine."""
    risks = []
    if options.get("privileged"):
        risks.append(f"{where}: DockerOptions.privileged gives the container full control of this machine")
    if options.get("network") == "host":
        risks.append(f"{where}: DockerOptions.network host lets the container use every port of this machine")
    for mount in mounts:
        if str(mount.source) == "/":
            risks.append(f"{where}: the whole file system (/) is mounted at {mount.destination}")
        if str(mount.source) in DOCKER_SOCKETS:
            risks.append(f"{where}: the Docker socket {mount.source} is mounted: the container can control Docker")
    return tuple(risks)


def check_unique_destinations(mounts, where: str) -> None:
    """Each destination used once (``where`` names the source of the mounts in the error)."""
    seen: dict[str, Path] = {}
    for mount in mounts:
        if mount.destination in seen:
            raise LauncherError(
                f"{where}: {seen[mount.destination]} and {mount.source} are both mounted at "
                f"{mount.destination}; give each mount its own destination"
            )
        seen[mount.destination] = mount.source


def _list(data: dict, key: str, path: Path) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise LauncherError(f"mounts file {path}: {key} must be a list")
    return value


def _check_keys(item, valid: set, where: str, required: set, notes: list[str]) -> None:
    """Required keys present; a key NVIDIA's launcher would ignore is ignored here too, with a warning."""
    if not isinstance(item, dict):
        raise LauncherError(f"{where} must be an object with {', '.join(sorted(required or valid))}")
    unknown = [key for key in item if key not in valid]
    missing = required - set(item)
    if missing and unknown:  # a misspelt required key: say which
        raise _unknown(where, unknown[0], valid)
    notes += [f"{_unknown(where, key, valid)} (ignored)" for key in unknown]
    if missing:
        raise LauncherError(f"{where} lacks {', '.join(sorted(missing))}")


def _mount(item, index: int, path: Path, notes: list[str]) -> Mount:
    where = f"mounts file {path}: Mounts[{index}]"
    _check_keys(item, MOUNT_KEYS, where, {"source", "destination"}, notes)
    for key in ("source", "destination"):
        if not isinstance(item[key], str) or not item[key]:
            raise LauncherError(f"{where}: {key} must be a path (a non-empty string)")
    if not isinstance(item.get("read_only", False), bool):
        raise LauncherError(f"{where}: read_only must be true or false")
    source = Path(os.path.abspath(Path(item["source"]).expanduser()))
    if any(sep in str(source) for sep in SEPARATORS):
        raise LauncherError(
            f"{where}: source {source} contains ':' or ',', which Docker reads as separators; mount a folder "
            "without them (a symlink to it will do)"
        )
    if not source.exists():
        raise LauncherError(
            f"{where}: source {source} does not exist; create it first (Docker would create it owned by root)"
        )
    return Mount(source, _destination(item["destination"], where, notes), item.get("read_only", False))


def _destination(destination: str, where: str, notes: list[str]) -> str:
    """An absolute, normalised container path without separators or '..', and not the container's root."""
    if not destination.startswith("/"):
        absolute = os.path.abspath(os.path.expanduser(destination))
        notes.append(
            f"{where}: destination '{destination}' is relative; it is {absolute} in the container (made absolute "
            "against the current folder, as NVIDIA's launcher does); write that instead"
        )
        destination = absolute
    if any(sep in destination for sep in SEPARATORS):
        raise LauncherError(
            f"{where}: destination '{destination}' contains ':' or ',', which Docker reads as options; "
            'use a plain path (read-only: "read_only": true)'
        )
    if ".." in destination.split("/"):
        raise LauncherError(f"{where}: destination '{destination}' contains '..'; write the path it means")
    normal = "/" + posixpath.normpath(destination).lstrip("/")  # POSIX keeps a leading //; Docker would not
    if normal == "/":
        raise LauncherError(f"{where}: destination / would hide the image's own files; mount below it (/data)")
    return normal


def volume_mount(text: str, warn=None) -> Mount:
    """``--volume SRC:DST[:ro|rw]`` of one command (NVIDIA's launcher takes SRC:DST), checked as a mounts-file
    entry is, and warned about as one is (``warn``: default stderr) when it hands the container this machine."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise LauncherError(f"--volume {text}: write SOURCE:DESTINATION or SOURCE:DESTINATION:ro")
    notes: list[str] = []
    item = {"source": parts[0], "destination": parts[1], "read_only": parts[2:] == ["ro"]}
    mount = _mount(item, 0, Path("--volume"), notes)
    if notes:
        raise LauncherError(f"--volume {text}: the destination must be an absolute path in the container")
    for message in _risks([mount], {}, f"--volume {text}"):
        (warn or _stderr_warning)(message)
    return mount
