"""Sealing job encryption keys: the database keeps them only encrypted (Fernet: AES-128-CBC + HMAC) with a
service secret that lives in a file of its own (``<state_dir>/service.secret``, mode 0600), never in the
database, so a copied database or a backup does not hold any key in clear."""

import os
from pathlib import Path

from cryptography.fernet import Fernet


class Sealer:
    def __init__(self, secret_file: Path):
        if not secret_file.exists():
            descriptor = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(Fernet.generate_key())
        self._fernet = Fernet(secret_file.read_bytes().strip())

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def open(self, sealed: str) -> str:
        return self._fernet.decrypt(sealed.encode()).decode()
