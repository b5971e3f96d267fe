"""Host -> container path translation through the mount table.

Paths on the command line (``-e``, ``key=/host/path`` for the plugin's path keys) and path keys inside the spec
file are rewritten; a path already under a mount's destination is a container path (as TAO notebooks write
them) and is kept; a path under neither is an error naming the nearest mount.
"""

import difflib
import fnmatch
import os
import posixpath
import re
from pathlib import Path

from tao_launcher import LauncherError
from tao_launcher.mounts import Mount


class PathMapper:
    def __init__(self, mounts: tuple[Mount, ...]):
        # Longest source first, so a nested mount wins over its parent.
        self.mounts = sorted(mounts, key=lambda m: len(m.source.parts), reverse=True)

    def to_container(self, given: str, what: str) -> str:
        """A host path under a mount's source, as the container sees it; a path already under a mount's
        destination is taken as a container path (TAO notebooks write those) and kept."""
        path = Path(os.path.abspath(Path(given).expanduser()))
        for mount in self.mounts:
            if path.is_relative_to(mount.source):
                return str(Path(mount.destination, path.relative_to(mount.source)))
        if self.container_mount(given) is not None:
            return posixpath.normpath(given)
        raise LauncherError(
            f"{what} {path} is neither under a mount's source (a host path) nor under its destination (a "
            f"container path); {self._nearest(path)}"
        )

    def container_mount(self, given: str) -> Mount | None:
        """The mount whose destination holds ``given`` when it is an absolute container path, else None."""
        if not given.startswith("/"):
            return None
        path = posixpath.normpath(given)
        for mount in sorted(self.mounts, key=lambda m: m.destination.count("/"), reverse=True):
            if path == mount.destination or path.startswith(mount.destination.rstrip("/") + "/"):
                return mount
        return None

    def to_host(self, given: str) -> Path | None:
        """Where a container path under a mount's destination lies on this host (None if under none)."""
        mount = self.container_mount(given)
        if mount is None:
            return None
        return Path(mount.source, posixpath.relpath(posixpath.normpath(given), mount.destination))

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


# A value with a scheme (``builtin:siamese_grid_deeppcb``, ``s3://bucket/x``) names something the plugin resolves,
# not a file on this host. Host paths never hold ':' here (the mounts file refuses them).
NOT_A_PATH = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")


def _host_path(value) -> bool:
    return isinstance(value, str) and bool(value) and "${" not in value and not NOT_A_PATH.match(value)


def translate_spec(data, mapper: PathMapper, patterns, prefix: str = "", overridden=frozenset()):
    """A copy of the spec data with every path-key value translated (interpolations are left alone). Keys in
    ``overridden`` are replaced on the command line: the value that will be used is the override's, so the
    spec's is left as it is (it needs no mount)."""
    if isinstance(data, dict):
        return {k: translate_spec(v, mapper, patterns, f"{prefix}{k}.", overridden) for k, v in data.items()}
    key = prefix[:-1]
    if key in overridden:
        return data
    if _host_path(data) and is_path_key(key, patterns):
        return mapper.to_container(data, f"spec key {key}")
    return data


def translate_override(item: str, mapper: PathMapper, patterns) -> str:
    key, sep, value = item.partition("=")
    if sep and _host_path(value) and value not in ("null", "None") and is_path_key(key, patterns):
        return f"{key}={mapper.to_container(value, f'override {key}')}"
    return item


def override_keys(argv) -> frozenset:
    """The keys a command line sets (``key=value`` items)."""
    return frozenset(a.partition("=")[0] for a in argv if "=" in a and not a.startswith("-"))


class HostPaths:
    """Container paths in a task's output turned back into the host paths the user knows (a mount's destination
    into its source; the translated spec into the user's spec file)."""

    def __init__(self, pairs: dict[str, str]):
        # Longest container path first, so a nested mount wins; a path ends at a separator or quote.
        ordered = sorted(pairs.items(), key=lambda item: len(item[0]), reverse=True)
        self._pairs = [(c.encode(), h.encode()) for c, h in ordered if c != h]
        alternatives = b"|".join(re.escape(c) for c, _ in self._pairs)
        self._pattern = re.compile(rb"(" + alternatives + rb")(?=[/\s'\",:;)\]]|$)") if self._pairs else None
        self._hosts = dict(self._pairs)
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        """Whole lines of output, translated; a partial line waits for the rest."""
        data = self._pending + chunk
        cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
        self._pending = data[cut:]
        return self._translate(data[:cut])

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return self._translate(rest)

    def _translate(self, data: bytes) -> bytes:
        if self._pattern is None or not data:
            return data
        return self._pattern.sub(lambda m: self._hosts[m.group(1)], data)
