"""Encryption at rest for checkpoints and exported models (``encryption_key`` set in the spec).

AES-256-GCM (authenticated: a wrong key or a modified file is detected, never unpickled), with the key derived
from the passphrase by scrypt and a random salt per file. Layout: MAGIC | salt (16) | nonce (12) | ciphertext.
Files without MAGIC are plain and are read as they are.
"""

import os

from tao_siamese_oi.errors import CheckpointError

MAGIC = b"TAO-OI-AESGCM-1\n"
SALT_BYTES, NONCE_BYTES = 16, 12
SCRYPT = {"n": 2**15, "r": 8, "p": 1}


def _key(passphrase: str, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, **SCRYPT).derive(passphrase.encode())


def is_encrypted(data: bytes) -> bool:
    return data.startswith(MAGIC)


def encrypt(data: bytes, passphrase: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    return MAGIC + salt + nonce + AESGCM(_key(passphrase, salt)).encrypt(nonce, data, MAGIC)


def decrypt(data: bytes, passphrase: str | None, name) -> bytes:
    """The plain bytes of ``data``; plain input is returned unchanged."""
    if not is_encrypted(data):
        return data
    if not passphrase:
        raise CheckpointError(f"{name} is encrypted; set encryption_key in the spec (or encryption_key=...)")
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    start = len(MAGIC)
    salt, nonce = data[start : start + SALT_BYTES], data[start + SALT_BYTES : start + SALT_BYTES + NONCE_BYTES]
    try:
        return AESGCM(_key(passphrase, salt)).decrypt(nonce, data[start + SALT_BYTES + NONCE_BYTES :], MAGIC)
    except InvalidTag:
        raise CheckpointError(f"{name} cannot be decrypted: wrong encryption_key, or the file was modified") from None
