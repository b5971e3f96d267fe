"""Shared fixtures: a tiny synthetic pair dataset made once per session, and spec writers."""

import os
import sys
from pathlib import Path

import pytest
import yaml

from tao_siamese_oi.data.sample import make_sample_dataset

TINY_KEY = "s3cret-key"  # the tiny spec encrypts its checkpoints and exports with this
TINY_SPLITS = {"train": (24, 12), "val": (8, 4), "test": (8, 4)}
BIN = Path(sys.executable).parent


def cli(name: str) -> str:
    """Path of an installed console script in the interpreter's environment."""
    path = BIN / name
    return str(path) if path.exists() else name


def load_tiny_checkpoint(path: Path) -> dict:
    from tao_siamese_oi.artifacts.checkpoint import load_checkpoint_file

    return load_checkpoint_file(path, TINY_KEY)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_data")
    make_sample_dataset(root, size=16, seed=3, splits=TINY_SPLITS)
    return root


def tiny_spec_dict(data: Path, results: Path) -> dict:
    images = str(data / "images")
    split = {
        name: {"csv_path": str(data / f"{csv}.csv"), "images_dir": images}
        for name, csv in [
            ("train_dataset", "train"),
            ("validation_dataset", "val"),
            ("test_dataset", "test"),
            ("infer_dataset", "test"),
        ]
    }
    return {
        "results_dir": str(results),
        "encryption_key": TINY_KEY,
        "model": {"model_type": "Siamese_3", "embedding_vectors": 4},
        "dataset": {
            **split,
            "batch_size": 8,
            "workers": 0,
            "fpratio_sampling": 0.5,
            "image_width": 12,
            "image_height": 12,
        },
        "train": {"num_epochs": 2, "checkpoint_interval": 1, "seed": 7},
    }


@pytest.fixture
def write_spec(tmp_path):
    def write(data: dict, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data))
        return path

    return write


@pytest.fixture
def cli_env() -> dict:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


@pytest.fixture(scope="session")
def tiny_model(tiny_data, tmp_path_factory) -> dict:
    """A tiny model trained for one epoch and exported (its checkpoint, ONNX file and sidecar), made once."""
    from tao_siamese_oi.entry_points.optical_inspection import run_action

    root = tmp_path_factory.mktemp("tiny_model")
    spec = tiny_spec_dict(tiny_data, root / "results")
    spec["train"]["num_epochs"] = 1
    path = root / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    checkpoint = root / "results" / "train" / "oi_model_latest.pth"
    assert run_action(["train", "-e", str(path)]) == 0
    assert run_action(["export", "-e", str(path), f"export.checkpoint={checkpoint}"]) == 0
    onnx_file = root / "results" / "export" / "oi_model.onnx"
    return {"spec": path, "checkpoint": checkpoint, "onnx": onnx_file, "sidecar": onnx_file.with_suffix(".json")}


@pytest.fixture(scope="session")
def tiny_grid_model(tiny_data, tmp_path_factory) -> dict:
    """A tiny Siamese_Grid (the default model, with a cell map) trained for one epoch, made once."""
    from tao_siamese_oi.entry_points.optical_inspection import run_action

    root = tmp_path_factory.mktemp("tiny_grid_model")
    spec = tiny_spec_dict(tiny_data, root / "results")
    spec["model"] = {"model_type": "Siamese_Grid", "embedding_vectors": 5}
    spec["dataset"].update(image_width=24, image_height=24)
    spec["train"]["num_epochs"] = 1
    path = root / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert run_action(["train", "-e", str(path)]) == 0
    return {"spec": path, "results": root / "results", "checkpoint": root / "results" / "train" / "oi_model_latest.pth"}


@pytest.fixture(scope="session")
def docker_engine():
    """The Docker engine .ci/run starts (DOCKER_HOST), or a skip saying so; a long timeout for image builds."""
    docker = pytest.importorskip("docker")
    try:
        engine = docker.from_env(timeout=600)
        engine.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no Docker engine reachable ({type(exc).__name__}); .ci/run starts one")
    return engine


LIBSTDCXX = Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")  # torch needs it; the engine's Python image lacks it


@pytest.fixture(scope="session")
def py_base_image(docker_engine) -> str:
    """The engine's Debian Python image (start_engine.sh builds it), checked with this machine's libstdc++ that
    the test images add to it; a skip naming what is missing."""
    name = os.environ.get("PY_IMAGE", "local/python:test")
    try:
        docker_engine.images.get(name)
    except Exception:  # noqa: BLE001
        pytest.skip(f"base image {name} missing; ../shared/tools/docker-engine/start_engine.sh builds it")
    if not LIBSTDCXX.exists():
        pytest.skip(f"{LIBSTDCXX} (torch needs it; the engine's Python image lacks it) is not on this machine")
    return name


@pytest.fixture(scope="session")
def oi_image(docker_engine, py_base_image) -> str:
    """The repository's Dockerfile built as a CPU image (tests/image_build.py), once per session."""
    from tests.image_build import build_image

    return build_image(docker_engine, py_base_image, LIBSTDCXX)
