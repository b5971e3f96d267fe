"""Secrets never echoed: one place that knows what a secret looks like and how it is hidden.

A plugin names its secret spec keys (``PluginSpec.secret_keys``, e.g. ``encryption_key``). A secret can reach a
process as a ``key=value`` override, a spec value, or through the environment (``${oc.env:NAME}`` in a spec,
a service job's variable): wherever it came from, its *value* is registered with :data:`REDACTOR` once known, and
every sink that echoes text (log handlers, the console streams, status files, printed commands) passes its text
through :meth:`Redactor.redact`. Values shorter than :data:`MIN_MASKED` characters are not masked by value (they
would garble every line that holds those letters); they are still hidden wherever they stand under a secret
key's name.
"""

import io
import logging
import re
from collections.abc import Iterable

REDACTED = "*****"
MIN_MASKED = 4
# Environment variable names whose values are treated as secrets when a command line is printed.
SECRET_ENV_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSW|CREDENTIAL", re.IGNORECASE)


def is_secret_key(dotted: str, secret_keys: Iterable[str]) -> bool:
    """``encryption_key`` and any ``a.b.encryption_key``: a secret key by its last part or its full name."""
    dotted = dotted.strip()
    return any(dotted == key or dotted.endswith("." + key) for key in secret_keys)


REFERENCE = re.compile(r"\$\{([^{}]*)\}")  # an interpolation, ${...}; its text in group 1


def literal(value) -> bool:
    """A value that is the secret itself, not only a reference such as ``${oc.env:NAME}``."""
    return isinstance(value, str) and bool(value) and not REFERENCE.fullmatch(value.strip())


class Redactor:
    """The secret values this process knows of, and the text with each of them hidden."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value) -> None:
        if isinstance(value, str) and len(value) >= MIN_MASKED:
            self._values.add(value)

    def clear(self) -> None:
        self._values.clear()

    def redact(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):  # a value inside a longer one: the longer first
            text = text.replace(value, REDACTED)
        return text

    def redact_data(self, data):
        """Strings at any depth of JSON-like data redacted (before it is dumped, so escaping cannot hide one)."""
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, dict):
            return {self.redact_data(k): self.redact_data(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return type(data)(self.redact_data(v) for v in data)
        return data


REDACTOR = Redactor()


def register_argv(argv: Iterable[str], secret_keys: Iterable[str]) -> None:
    """Register the values of the secret ``key=value`` overrides in ``argv``."""
    for arg in argv:
        key, sep, value = str(arg).partition("=")
        if sep and is_secret_key(key, secret_keys):
            REDACTOR.add(value)


def redact_argv(argv: Iterable[str], secret_keys: Iterable[str]) -> list[str]:
    """``argv`` with every secret override's value replaced (by key, whatever its length) and known values hidden."""
    shown = []
    for arg in argv:
        key, sep, value = str(arg).partition("=")
        shown.append(f"{key}={REDACTED}" if sep and value and is_secret_key(key, secret_keys) else REDACTOR.redact(arg))
    return shown


def redact_spec(data, secret_keys: Iterable[str], prefix: str = ""):
    """A spec (nested dicts) with the literal values of its secret keys replaced."""
    if not isinstance(data, dict):
        return data
    hidden = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if is_secret_key(dotted, secret_keys) and literal(value):
            hidden[key] = REDACTED
        else:
            hidden[key] = redact_spec(value, secret_keys, dotted + ".")
    return hidden


def spec_secrets(data, secret_keys: Iterable[str], prefix: str = "") -> dict[str, str]:
    """The literal secret values of a spec, by dotted key."""
    found: dict[str, str] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            dotted = f"{prefix}{key}"
            if is_secret_key(dotted, secret_keys) and literal(value):
                found[dotted] = value
            else:
                found.update(spec_secrets(value, secret_keys, dotted + "."))
    return found


class RedactingFilter(logging.Filter):
    """On a handler: each record's message rendered and redacted before the handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = REDACTOR.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class RedactingStream(io.TextIOBase):
    """A console stream (stdout, stderr) whose text is redacted on its way out; everything else passes through
    to the wrapped stream (isatty, fileno, encoding), so progress bars and colour detection behave as before."""

    def __init__(self, stream) -> None:
        self.wrapped = stream

    def write(self, text: str) -> int:
        self.wrapped.write(REDACTOR.redact(text))
        return len(text)

    def flush(self) -> None:
        self.wrapped.flush()

    def isatty(self) -> bool:
        return self.wrapped.isatty()

    def fileno(self) -> int:
        return self.wrapped.fileno()

    @property
    def encoding(self):  # type: ignore[override]
        return getattr(self.wrapped, "encoding", "utf-8")

    def __getattr__(self, name):
        return getattr(self.wrapped, name)
