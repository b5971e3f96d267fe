"""``<results_dir>/<task>.log``: what the console showed of a run (our log lines, warnings, the result or the
error line), kept when the terminal is gone. Progress bars are not logged (they redraw; the log would hold every
frame). Appended: a continued training or an overwritten evaluation adds a run below the earlier ones."""

import contextlib
import json
import logging
import sys
import warnings
from pathlib import Path

from tao_launcher.redaction import RedactingFilter, redact_argv

from tao_siamese_oi.actions import SECRET_KEYS

OUR_LOGGER = "tao_siamese_oi"
FILE_ONLY = "tao_siamese_oi.run_log"  # lines for the file alone: the console shows them its own way


def log_path(out: Path, task: str) -> Path:
    return out / f"{task}.log"


@contextlib.contextmanager
def run_log(out: Path, task: str):
    handler = logging.FileHandler(log_path(out, task), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(RedactingFilter())
    ours, file_only = logging.getLogger(OUR_LOGGER), logging.getLogger(FILE_ONLY)
    file_only.propagate = False
    file_only.setLevel(logging.INFO)
    ours.addHandler(handler)
    file_only.addHandler(handler)
    show_warning = warnings.showwarning

    def show_and_log(message, category, filename, lineno, file=None, line=None):
        show_warning(message, category, filename, lineno, file, line)
        file_only.warning("%s: %s", category.__name__, message)

    warnings.showwarning = show_and_log
    file_only.info("optical_inspection %s", " ".join(redact_argv(sys.argv[1:], SECRET_KEYS)) or task)
    try:
        yield file_only
    finally:
        warnings.showwarning = show_warning
        ours.removeHandler(handler)
        file_only.removeHandler(handler)
        handler.close()


def log_result(file_only: logging.Logger, result) -> None:
    file_only.info("result: %s", json.dumps(result, default=str))
