"""Typed errors the library raises; only the CLI edge turns them into one-line messages."""

import errno


class OIError(Exception):
    """Base class: a problem the user can fix. The message says what to do."""

    exit_code = 1

    def __str__(self) -> str:
        # Raised in a DataLoader worker, the error is rebuilt in the main process with the worker's traceback as
        # its message ("Caught DataError in DataLoader worker process 0. Original Traceback ..."): keep the
        # original one line, which torch puts last as "<module>.<Class>: <message>".
        text = super().__str__()
        if "Original Traceback" not in text:
            return text
        last = text.rstrip().splitlines()[-1]
        return last.split(f"{type(self).__name__}: ", 1)[-1]


class ConfigError(OIError):
    """A spec key, value or override is wrong."""

    exit_code = 2


class DataError(OIError):
    """A CSV, image or dataset directory is wrong or missing."""

    exit_code = 3


class CheckpointError(OIError):
    """A checkpoint or exported model cannot be read or does not match the spec."""

    exit_code = 4


class OutputExistsError(OIError):
    """An output file already exists and overwriting was not allowed."""

    exit_code = 5


class MissingCapabilityError(OIError):
    """The task needs software or hardware this machine lacks (TensorRT, an NVIDIA GPU)."""

    exit_code = 6


class FolderBusyError(OutputExistsError):
    """Another run holds the results folder."""


FILE_ACCESS_EXIT_CODE = 7
_OS_HINTS = {
    errno.ENOSPC: "the disk is full; free space or choose another results_dir",
    errno.EDQUOT: "the disk quota is exhausted; free space or choose another results_dir",
    errno.EACCES: "permission denied; fix the permissions or choose another path",
    errno.EPERM: "operation not permitted; fix the permissions or choose another path",
    errno.EROFS: "the file system is read-only; choose a writable results_dir",
    errno.ENOTDIR: "a file stands where a folder is needed; choose another path",
    errno.EISDIR: "a folder stands where a file is needed; name a file",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
}


def file_access_message(exc: OSError) -> str:
    """One line for an OSError that reached the CLI edge: the path, what happened and what to do."""
    where = exc.filename if exc.filename is not None else "a file"
    hint = _OS_HINTS.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    return f"cannot use {where}: {hint}"
