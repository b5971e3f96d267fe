"""The repository's Dockerfile, built as a CPU image on the private engine (no registry: the base is the engine's
Debian Python image with pip added, the wheels come from this machine's package index through wheels/), runs a
task, and works the way NVIDIA's launcher uses an image: started with its default command, which waits, then
`docker exec <container> optical_inspection <action> ...`, then stopped."""

import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import LIBSTDCXX, tiny_spec_dict

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
BASE = "local/python-pip:test"
IMAGE = "local/tao-siamese-oi:cpu-test"
WHEELS = Path(os.environ.get("OI_WHEELS", Path.home() / ".cache" / "tao_siamese_oi_wheels"))


def _tar(files: dict[str, Path | bytes]) -> io.BytesIO:
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


@pytest.fixture(scope="module")
def client(docker_engine):
    return docker_engine


def _wheels() -> list[Path]:
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


@pytest.fixture(scope="module")
def image(client, py_base_image):
    py_image = py_base_image
    wheels = _wheels()
    pip = next(w for w in wheels if w.name.startswith("pip-"))
    # The stand-in for python:3.11-slim: the engine's Debian Python, libstdc++ and pip (run from its own wheel),
    # without Debian's "externally managed" marker, which python:3.11-slim does not have either.
    base = (
        f"FROM {py_image}\nCOPY libstdc++.so.6 {LIBSTDCXX}\nCOPY {pip.name} /tmp/\n"
        "RUN rm -f /usr/lib/python3*/EXTERNALLY-MANAGED && "
        f"python3 /tmp/{pip.name}/pip install --quiet --no-index /tmp/{pip.name} && rm /tmp/{pip.name}\n"
    ).encode()
    context = _tar({"Dockerfile": base, "libstdc++.so.6": LIBSTDCXX.resolve(), pip.name: pip})
    client.images.build(fileobj=context, custom_context=True, tag=BASE, rm=True)
    # The repository as `docker build .` sends it (git's files: .dockerignore's exclusions are not tracked), and
    # the wheels in wheels/, as the Dockerfile's air-gapped build takes them.
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files: dict[str, Path | bytes] = {name: ROOT / name for name in tracked.split() if (ROOT / name).is_file()}
    files.update({f"wheels/{w.name}": w for w in wheels})
    started = time.time()
    client.images.build(
        fileobj=_tar(files),
        custom_context=True,
        tag=IMAGE,
        rm=True,
        buildargs={"BASE_IMAGE": BASE, "PIP_OPTIONS": "--no-index --find-links /tmp/wheels"},
    )
    print(f"built {IMAGE} in {time.time() - started:.0f} s")
    return IMAGE


def _spec(tiny_data, tmp_path) -> Path:
    spec = tiny_spec_dict(Path("/data"), Path("/results"))
    spec["train"]["num_epochs"] = 1
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    (tmp_path / "results").mkdir()
    (tmp_path / "results").chmod(0o777)
    return path


def _volumes(tiny_data, tmp_path) -> dict:
    return {
        str(tiny_data): {"bind": "/data", "mode": "ro"},
        str(tmp_path): {"bind": "/spec", "mode": "ro"},
        str(tmp_path / "results"): {"bind": "/results", "mode": "rw"},
    }


def test_the_cpu_image_runs_a_training(client, image, tiny_data, tmp_path):
    _spec(tiny_data, tmp_path)
    command = ["optical_inspection", "train", "-e", "/spec/spec.yaml"]
    container = client.containers.run(image, command, volumes=_volumes(tiny_data, tmp_path), detach=True)
    try:
        code = container.wait(timeout=600)["StatusCode"]
        logs = container.logs().decode()
    finally:
        container.remove(force=True)
    assert code == 0, logs[-3000:]
    assert (tmp_path / "results" / "train" / "oi_model_latest.pth").is_file() and "Trained 1 epochs" in logs


def test_the_image_waits_for_docker_exec_as_nvidias_launcher_uses_it(client, image, tiny_data, tmp_path):
    _spec(tiny_data, tmp_path)
    container = client.containers.run(image, volumes=_volumes(tiny_data, tmp_path), detach=True)  # its CMD
    try:
        time.sleep(2)
        container.reload()
        assert container.status == "running", container.logs().decode()
        done = container.exec_run(["optical_inspection", "validate", "-e", "/spec/spec.yaml"])
        assert done.exit_code == 0, done.output.decode()[-3000:]
        assert b'"train": {"pairs": 36' in done.output
        started = time.time()
        container.stop(timeout=20)
        assert time.time() - started < 10  # the waiting command ends on SIGTERM, not after the stop timeout
        assert container.wait(timeout=30)["StatusCode"] == 0
    finally:
        container.remove(force=True)
