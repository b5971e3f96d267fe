"""Atomic file writes: a reader never sees a half-written output, a crash never truncates an old one."""

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

FULL_BELOW_BYTES = 1 << 20
# ".<target name>.<pid>-<random>.tmp": the writer's PID tells a stale temp file from one being written.
_TEMP = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)-[^.]+\.tmp$")


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, fsync it, then rename it over ``path``.

    Temp files of earlier writes to ``path`` whose writer is gone (killed mid-write) are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path.parent, target=path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the mode open() would
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        full = not isinstance(exc, OSError) and _disk_full(path.parent)
        Path(tmp).unlink(missing_ok=True)
        if full:  # torch and others report a short write as a RuntimeError without the path
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write() names no file: name ours
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    return path


def _disk_full(folder: Path) -> bool:
    """Whether the file system of ``folder`` has (almost) no space left, checked while a failed temp file still
    holds what it wrote."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < FULL_BELOW_BYTES


def remove_stale_temp_files(folder: Path, target: str | None = None) -> list[Path]:
    """Remove temp files that atomic_write left in ``folder`` (for ``target`` only, if given) when its process
    was killed; a temp file whose writer still runs is kept."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _TEMP.match(entry.name)
            if not match or (target is not None and match["target"] != target) or _alive(int(match["pid"])):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
