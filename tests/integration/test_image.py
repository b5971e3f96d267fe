"""The repository's Dockerfile, built as a CPU image on the private engine (no registry: the base is the engine's
Debian Python image with pip added, the wheels come from this machine's package index through wheels/), runs a
task, and works the way NVIDIA's launcher uses an image: started with its default command, which waits, then
`docker exec <container> optical_inspection <action> ...`, then stopped."""

import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_spec_dict

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def client(docker_engine):
    return docker_engine


@pytest.fixture(scope="module")
def image(oi_image):
    return oi_image


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
