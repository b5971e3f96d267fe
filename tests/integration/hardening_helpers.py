"""Helpers for the hardening tests: in-process CLI runs, disk snapshots, hostile files."""

import os
import struct
import subprocess
import zlib
from pathlib import Path

import yaml

from tests.conftest import cli, tiny_spec_dict


def run_oi(capsys, *argv) -> tuple[int, str]:
    """``optical_inspection ARGV`` in this process: (exit code, stderr)."""
    from tao_siamese_oi.entry_points.optical_inspection import run_action

    capsys.readouterr()
    code = run_action([str(a) for a in argv])
    return code, capsys.readouterr().err


def run_tao(capsys, *argv) -> tuple[int, str]:
    """``tao ARGV`` in this process: (exit code, stderr)."""
    from tao_launcher.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    """The single ``error:`` line of a failed run (asserting there is exactly one and no traceback)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def error_report(err: str) -> str:
    """The ``error:`` line with the indented lines under it (validation lists every problem of a CSV)."""
    lines = err.splitlines()
    start = lines.index(one_error_line(err))
    report = [lines[start]]
    report += [line for line in lines[start + 1 :] if line.startswith("  ")]
    return "\n".join(report)


def snapshot(root: Path) -> dict:
    """Every file and folder under ``root`` (hidden ones too) with its size and modification time."""
    if not root.exists():
        return {}
    found = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


def write_tiny_spec(folder: Path, data: Path, results: Path, name: str = "spec.yaml", **sections) -> Path:
    spec = tiny_spec_dict(data, results)
    for key, value in sections.items():  # a dict updates that section, anything else replaces the key
        if isinstance(value, dict):
            spec.setdefault(key, {}).update(value)
        else:
            spec[key] = value
    path = folder / name
    path.write_text(yaml.safe_dump(spec))
    return path


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height pixels (a decompression bomb as a loader sees it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def dead_pid() -> int:
    """The PID of a process that has exited (for stale lock and temp files)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def oi_command(*argv) -> list[str]:
    return [cli("optical_inspection"), *map(str, argv)]


def cli_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}
