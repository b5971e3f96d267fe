"""SIGINT and SIGTERM end a task truthfully: status.json says FAILURE "Interrupted by SIG...", the exit code is
130 or 143 (128 + the signal), and files being written are cleaned up on the way out.

Why our own handlers: Lightning turns Ctrl-C into ``sys.exit(1)`` and SIGTERM into ``SIGTERMException``, a
``SystemExit`` without a code (exit 0), so a scheduler would record a killed training as a success. Raising
:class:`Interrupted` (not a KeyboardInterrupt, which Lightning swallows) lets Lightning tear down on its generic
path and re-raise it to us. Loader worker processes inherit the handlers through fork; there they do what the
signal would have done, so a worker never prints a traceback of its own.
"""

import contextlib
import os
import signal
import threading

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The task was stopped by a signal. A BaseException: ``except Exception`` blocks must not swallow it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return f"Interrupted by {self.name}" + (" (Ctrl-C)" if self.signum == signal.SIGINT else "")


class _State:
    owner_pid: int | None = None
    received: int | None = None


@contextlib.contextmanager
def handled():
    """Handle SIGINT and SIGTERM in this process for the body of the ``with`` (the CLI edge runs a task in it);
    the previous handlers come back afterwards. Outside the main thread signals cannot be handled: a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}
    _State.owner_pid, _State.received = os.getpid(), None
    for signum in HANDLED:
        signal.signal(signum, _handle)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _State.owner_pid = None


def received() -> Interrupted | None:
    """The signal that stopped this process, if one did (also when a library turned it into another exception)."""
    return Interrupted(_State.received) if _State.received else None


def _handle(signum, frame):
    if os.getpid() != _State.owner_pid:  # a forked loader worker: behave as if no handler were installed
        signal.signal(signum, signal.SIG_DFL if signum != signal.SIGINT else signal.default_int_handler)
        os.kill(os.getpid(), signum)
        return
    if _State.received:  # the task is already stopping; let its clean-up finish
        return
    _State.received = signum
    raise Interrupted(signum)
