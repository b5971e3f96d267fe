"""status.json: TAO's JSON-lines progress file, one object per line, appended.

Fields as TAO writes them (date M/D/YYYY, time H:M:S, status, verbosity, message, optional kpi and epoch
fields), except that a finished task says SUCCESS (TAO logs success as RUNNING) and any exception, Ctrl-C
included, ends with FAILURE. The kpi dict is sticky: each line repeats the latest KPIs.
"""

import json
import os
from datetime import datetime
from pathlib import Path

from tao_launcher.redaction import REDACTOR

STARTED, RUNNING, SUCCESS, FAILURE, SKIPPED = "STARTED", "RUNNING", "SUCCESS", "FAILURE", "SKIPPED"


class StatusLogger:
    """Appends to ``<results_dir>/status.json``; with results_dir None it writes nothing (DDP processes other than
    the main one, which alone reports, as TAO's rank 0)."""

    def __init__(self, results_dir: str | os.PathLike | None, filename: str = "status.json"):
        self.path = None if results_dir is None else Path(results_dir) / filename
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.kpi: dict = {}

    def write(self, status: str, message: str, kpi: dict | None = None, verbosity: str = "INFO", **fields):
        if kpi:
            self.kpi.update({k: v for k, v in kpi.items() if v is not None})
        now = datetime.now()
        record: dict[str, object] = {
            "date": f"{now.month}/{now.day}/{now.year}",
            "time": f"{now.hour}:{now.minute}:{now.second}",
            "status": status,
            "verbosity": verbosity,
            "message": message,
        }
        if self.kpi:
            record["kpi"] = dict(self.kpi)
        record.update(fields)
        if self.path is None:
            return
        with self.path.open("a") as handle:
            handle.write(json.dumps(REDACTOR.redact_data(record)) + "\n")
