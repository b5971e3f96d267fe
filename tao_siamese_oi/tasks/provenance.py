"""What produced a result: the model file (path and SHA-256), the model type, this package's version, the spec
(SHA-256 of the experiment.yaml the run wrote: the resolved config, secrets redacted) and the data CSV (path and
SHA-256). Recorded in metrics.json, inference and export results, the export sidecar and status.json, so every
number can be traced back (a stale checkpoint path in a spec once scored the wrong model unnoticed)."""

import functools
import hashlib
import os
from pathlib import Path

from tao_siamese_oi import __version__

CHUNK = 1 << 20


def file_sha256(path) -> str:
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # keyed by identity: a rewritten file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def provenance(cfg, out: Path, model_file, data_csv=None) -> dict:
    """``out``: the run's results folder, whose experiment.yaml (the resolved spec, secrets redacted, written by
    every task before it runs) is the spec that is hashed."""
    from tao_siamese_oi.pretrained import builtin_path, is_builtin

    record = {
        "model_file": str(model_file),  # builtin:<name> stays the name; its hash is the shipped file's
        "model_sha256": file_sha256(builtin_path(model_file) if is_builtin(model_file) else model_file),
        "model_type": cfg.model.model_type,
        "package": f"tao_siamese_oi {__version__}",
        "spec_sha256": file_sha256(Path(out) / "experiment.yaml"),
    }
    if data_csv is not None:
        record.update(data_csv=str(data_csv), data_csv_sha256=file_sha256(data_csv))
    return record
