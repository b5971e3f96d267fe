"""Typed errors the library raises; only the CLI edge turns them into one-line messages."""


class OIError(Exception):
    """Base class: a problem the user can fix. The message says what to do."""

    exit_code = 1


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
