"""Sealing job encryption keys: the database keeps them only encrypted (Fernet: AES-128-CBC + HMAC) with a
service secret that lives in a file of its own (``<state_dir>/service.secret``, mode 0600), never in the
database, so a copied database or a backup does not hold any key in clear. A job gets its own key only, sealed
with a secret of the job's own (``Sealer.job_env``), never the service's secret."""

import os
from pathlib import Path

from cryptography.fernet import Fernet

SEALED_ENV, SECRET_FILE_ENV = "TAO_JOB_SEALED_KEY", "TAO_JOB_SECRET_FILE"
JOB_SECRET_NAME = ".job_secret"


class Sealer:
    def __init__(self, secret_file: Path):
        self.secret_file = secret_file
        if not secret_file.exists():
            descriptor = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(Fernet.generate_key())
        self._fernet = Fernet(secret_file.read_bytes().strip())

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def open(self, sealed: str) -> str:
        return self._fernet.decrypt(sealed.encode()).decode()

    def job_env(self, sealed: str, job_dir: Path, owner: tuple[int, int] | None = None) -> dict[str, str]:
        """What a job's environment carries: its key sealed anew with a secret of its own, and where that secret
        is: ``<job>/.job_secret`` (mode 0600, owned by the job's user), which the job's wrapper reads and removes
        before the task starts. The key in clear never passes through a scheduler's records or a container's
        configuration, and no job ever holds the service's secret, which opens every org's keys."""
        job_secret = Fernet.generate_key()
        path = job_dir / JOB_SECRET_NAME
        path.unlink(missing_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            if owner is not None:
                os.fchown(handle.fileno(), *owner)
            handle.write(job_secret)
        resealed = Fernet(job_secret).encrypt(self.open(sealed).encode()).decode()
        return {SEALED_ENV: resealed, SECRET_FILE_ENV: str(path)}


def open_job_key(sealed: str, secret_file: Path) -> str:
    """In the job's wrapper: its key, opened with its own secret, which is removed (read once)."""
    try:
        return Fernet(secret_file.read_bytes().strip()).decrypt(sealed.encode()).decode()
    finally:
        secret_file.unlink(missing_ok=True)
