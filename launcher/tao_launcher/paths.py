"""Host -> container path translation through the mount table.

Paths on the command line (``-e``, ``key=/host/path`` for the plugin's path keys) and path keys inside the spec
file are rewritten; a host path outside every mount is an error naming the nearest mount.
"""

import difflib
import fnmatch
import os
from pathlib import Path

from tao_launcher import LauncherError
from tao_launcher.mounts import Mount


class PathMapper:
    def __init__(self, mounts: tuple[Mount, ...]):
        # Longest source first, so a nested mount wins over its parent.
        self.mounts = sorted(mounts, key=lambda m: len(m.source.parts), reverse=True)

    def to_container(self, host_path: str, what: str) -> str:
        path = Path(os.path.abspath(Path(host_path).expanduser()))
        for mount in self.mounts:
            if path == mount.source or mount.source in path.parents:
                return str(Path(mount.destination, path.relative_to(mount.source)))
        raise LauncherError(f"{what} {path} is outside every mount; {self._nearest(path)}")

    def _nearest(self, path: Path) -> str:
        if not self.mounts:
            return "add a Mounts entry for it to the mounts file ($LAUNCHER_MOUNTS or ~/.tao_mounts.json)"

        def closeness(mount):  # shared leading folders first, then textual likeness (data vs datasets)
            common = len(os.path.commonpath([str(mount.source), str(path)]))
            return common, difflib.SequenceMatcher(None, str(mount.source), str(path)).ratio()

        best = max(self.mounts, key=closeness)
        return f"the nearest mount is {best.source} -> {best.destination}; add a mount that holds it"


def is_path_key(key: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def translate_spec(data, mapper: PathMapper, patterns, prefix: str = ""):
    """A copy of the spec data with every path-key value translated (interpolations are left alone)."""
    if isinstance(data, dict):
        return {k: translate_spec(v, mapper, patterns, f"{prefix}{k}.") for k, v in data.items()}
    key = prefix[:-1]
    if isinstance(data, str) and data and "${" not in data and is_path_key(key, patterns):
        return mapper.to_container(data, f"spec key {key}")
    return data


def translate_override(item: str, mapper: PathMapper, patterns) -> str:
    key, sep, value = item.partition("=")
    if sep and value and "${" not in value and value not in ("null", "None") and is_path_key(key, patterns):
        return f"{key}={mapper.to_container(value, f'override {key}')}"
    return item
