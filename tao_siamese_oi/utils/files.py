"""Atomic file writes: a reader never sees a half-written output, a crash never truncates an old one."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the mode open() would
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_checkpoint_file(path, encryption_key: str | None = None, map_location="cpu", mmap: bool = False) -> dict:
    """torch.load of a checkpoint written by train, decrypting it first when it is encrypted.

    A plain file is loaded from its path (``mmap``: its tensors are mapped, not read), never copied into memory
    first: a Siamese_3 checkpoint at 4 x 128 x 128 is 3 GB.
    """
    import io

    import torch

    from tao_siamese_oi.utils.crypto import MAGIC, decrypt, is_encrypted

    with open(path, "rb") as handle:
        encrypted = is_encrypted(handle.read(len(MAGIC)))
    if not encrypted:
        return torch.load(path, map_location=map_location, weights_only=False, mmap=mmap)
    data = decrypt(Path(path).read_bytes(), encryption_key, f"checkpoint {path}")
    return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)
