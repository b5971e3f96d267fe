"""One results folder, one run: an exclusive lock on a task's results folder for the whole run.

``fcntl.flock`` on ``<folder>/.tao_oi.lock``: the kernel drops it when the holder dies, however it dies, so a
stale lock cannot block anyone. The file records the holder's PID and host so a refused run can say who holds
the folder, and a run that finds a record whose holder is gone says it takes over. The file is removed when the
run ends (while still locked; a run that opened the old file meanwhile notices and retries on the new one).
Written with fcntl rather than the filelock package because we need the holder's identity in both messages.
"""

import contextlib
import fcntl
import logging
import os
import socket
from pathlib import Path

from tao_siamese_oi.errors import FolderBusyError

log = logging.getLogger("tao_siamese_oi")

LOCK_NAME = ".tao_oi.lock"


@contextlib.contextmanager
def locked_folder(folder: Path, task: str):
    """Hold ``folder`` (which must exist) exclusively for the body of the ``with``."""
    path = folder / LOCK_NAME
    handle = _acquire(path, task)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        handle.close()


def refuse_if_busy(folder: Path) -> None:
    """Refuse (FolderBusyError, naming the holder) when another run holds ``folder`` now, without creating or
    locking anything: checked before a task decides anything from the folder's files (a training that has
    finished, outputs that would be replaced), which a running task is still writing."""
    holder = holder_now(folder)
    if holder is not None:
        raise _busy(folder, holder)


def holder_now(folder: Path) -> str | None:
    """Who holds ``folder`` now ("train pid 12 on host h"), or None when no run does."""
    try:
        handle = open(folder / LOCK_NAME)  # noqa: SIM115 - closed below
    except OSError:  # no lock file (or no folder): nobody holds it
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(handle)
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def _busy(folder: Path, holder: str) -> FolderBusyError:
    return FolderBusyError(
        f"{folder} is in use by another {holder}; wait for it to finish or choose another results_dir"
    )


def _acquire(path: Path, task: str):
    while True:
        handle = open(path, "a+")  # noqa: SIM115 - held open for the whole run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            handle.close()
            raise _busy(path.parent, holder) from None
        if _same_file(handle, path):
            break
        handle.close()  # the previous holder removed the file between our open and our lock: lock the new one
    previous = _holder(handle)
    if previous != "run":
        log.warning("Taking over %s: its holder (%s) is no longer running.", path.parent, previous)
    handle.seek(0)
    handle.truncate()
    handle.write(f"{task} pid {os.getpid()} on host {socket.gethostname()}\n")
    handle.flush()
    return handle


def _holder(handle) -> str:
    handle.seek(0)
    text = handle.read().strip()
    return text or "run"


def _same_file(handle, path: Path) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False
