"""Sealing job encryption keys: the database keeps them only encrypted (Fernet: AES-128-CBC + HMAC) with a
service secret that lives in a file of its own (``<state_dir>/service.secret``, mode 0600), never in the
database, so a copied database or a backup does not hold any key in clear."""

import os
from pathlib import Path

from cryptography.fernet import Fernet

SEALED_ENV, SECRET_FILE_ENV = "TAO_JOB_SEALED_KEY", "TAO_JOB_SECRET_FILE"
KEY_ENV = "TAO_JOB_ENCRYPTION_KEY"  # the opened key, in the task's environment only


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

    def job_env(self, sealed: str) -> dict[str, str]:
        """What a job's environment carries: the sealed key and where the secret is (on the job's machine, the
        wrapper opens it), so the key in clear never passes through a scheduler's records."""
        return {SEALED_ENV: sealed, SECRET_FILE_ENV: str(self.secret_file)}
