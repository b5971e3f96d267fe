import io

import pytest
import torch

from tao_siamese_oi.artifacts.checkpoint import load_checkpoint_file
from tao_siamese_oi.artifacts.crypto import MAGIC, decrypt, encrypt, is_encrypted
from tao_siamese_oi.errors import CheckpointError


def test_round_trip_and_salted():
    data = b"state_dict weights" * 100
    first, second = encrypt(data, "pass"), encrypt(data, "pass")
    assert first.startswith(MAGIC) and first != second  # a fresh salt and nonce per file
    assert b"state_dict" not in first
    assert decrypt(first, "pass", "x") == data


def test_wrong_key_missing_key_and_tampering_are_one_line_errors():
    blob = encrypt(b"secret weights", "right")
    with pytest.raises(CheckpointError, match="^f cannot be decrypted: wrong encryption_key") as info:
        decrypt(blob, "wrong", "f")
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="^f is encrypted; set encryption_key"):
        decrypt(blob, None, "f")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(CheckpointError, match="wrong encryption_key, or the file was modified"):
        decrypt(tampered, "right", "f")


def test_plain_files_pass_through():
    assert not is_encrypted(b"PK\x03\x04")
    assert decrypt(b"plain", None, "f") == b"plain"


def test_checkpoints_load_with_the_key(tmp_path):
    buffer = io.BytesIO()
    torch.save({"epoch": 3, "w": torch.arange(4)}, buffer)
    (tmp_path / "c.pth").write_bytes(encrypt(buffer.getvalue(), "k"))
    loaded = load_checkpoint_file(tmp_path / "c.pth", "k")
    assert loaded["epoch"] == 3 and torch.equal(loaded["w"], torch.arange(4))
    with pytest.raises(CheckpointError, match="is encrypted"):
        load_checkpoint_file(tmp_path / "c.pth", None)
