"""The repository's Dockerfile built as a CPU image on the private engine, as a user builds it air-gapped: the
base is the engine's Debian Python with pip added (the stand-in for python:3.11-slim), the wheels come from this
machine's package index through wheels/, and the build context is what `docker build .` sends (git's files)."""

import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = "local/python-pip:test"
IMAGE = "local/tao-siamese-oi:cpu-test"
WHEELS = Path(os.environ.get("OI_WHEELS", Path.home() / ".cache" / "tao_siamese_oi_wheels"))


def tar_context(files: dict[str, Path | bytes]) -> io.BytesIO:
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, source in files.items():
            data = source if isinstance(source, bytes) else source.read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if isinstance(source, Path) and os.access(source, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    return context


def wheels() -> list[Path]:
    """Every wheel the image installs, from this machine's index, kept between runs."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    wanted = [f"{ROOT / 'launcher'}[job]", str(ROOT), "setuptools", "wheel", "pip"]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "-d", str(WHEELS), *wanted],
        check=True,
        timeout=900,
        capture_output=True,  # pip's index warnings; an error still fails the test
    )
    return sorted(WHEELS.glob("*.whl"))


def build_image(client, py_image: str, libstdcxx: Path) -> str:
    found = wheels()
    pip = next(w for w in found if w.name.startswith("pip-"))
    # The engine's Debian Python, libstdc++ and pip (run from its own wheel), without Debian's "externally
    # managed" marker, which python:3.11-slim does not have either.
    base = (
        f"FROM {py_image}\nCOPY libstdc++.so.6 {libstdcxx}\nCOPY {pip.name} /tmp/\n"
        "RUN rm -f /usr/lib/python3*/EXTERNALLY-MANAGED && "
        f"python3 /tmp/{pip.name}/pip install --quiet --no-index /tmp/{pip.name} && rm /tmp/{pip.name}\n"
    ).encode()
    client.images.build(fileobj=tar_context({"Dockerfile": base, "libstdc++.so.6": libstdcxx.resolve(),
                                             pip.name: pip}), custom_context=True, tag=BASE, rm=True)  # fmt: skip
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files: dict[str, Path | bytes] = {name: ROOT / name for name in tracked.split() if (ROOT / name).is_file()}
    files.update({f"wheels/{w.name}": w for w in found})
    started = time.time()
    client.images.build(
        fileobj=tar_context(files),
        custom_context=True,
        tag=IMAGE,
        rm=True,
        buildargs={"BASE_IMAGE": BASE, "PIP_OPTIONS": "--no-index --find-links /tmp/wheels"},
    )
    print(f"built {IMAGE} in {time.time() - started:.0f} s")
    return IMAGE
