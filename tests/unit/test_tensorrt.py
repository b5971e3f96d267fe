"""gen_trt_engine and the tensorrt backend: options, profiles and calibration pairs without TensorRT; the engine
itself where TensorRT and a GPU exist."""

import importlib.util
import subprocess

import numpy as np
import pytest
import torch

from tao_siamese_oi.config import load_config
from tao_siamese_oi.data.splits import build_dataset
from tao_siamese_oi.data.transforms import Normalizer
from tao_siamese_oi.deploy.onnx_export import export_onnx, onnxruntime_outputs
from tao_siamese_oi.deploy.tensorrt_engine import (
    batch_profiles,
    calibration_batches,
    parse_layers_precision,
    workspace_bytes,
)
from tao_siamese_oi.errors import ConfigError
from tao_siamese_oi.model.networks import create_model
from tests.conftest import cli, tiny_spec_dict

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()
SHAPE = (3, 48, 12)  # 4 lights of 12 x 12, linear


def test_workspace_is_megabytes_not_tao_gigabytes():
    assert workspace_bytes(1024) == 1 << 30 and workspace_bytes(1) == 1 << 20


def test_profiles_follow_the_onnx_batch():
    dynamic = batch_profiles(SHAPE, "batch", 1, 8, 16)
    assert dynamic == {name: ((1, *SHAPE), (8, *SHAPE), (16, *SHAPE)) for name in ("input_1", "input_2")}
    static = batch_profiles(SHAPE, 4, 1, 8, 16)  # a static ONNX keeps its batch whatever the options say
    assert static["input_1"] == ((4, *SHAPE),) * 3 and static["input_2"] == static["input_1"]
    with pytest.raises(ConfigError, match="min_batch_size <= opt_batch_size <= max_batch_size"):
        batch_profiles(SHAPE, "batch", 4, 2, 16)


def test_layer_precisions_parse_and_bad_entries_are_config_errors():
    assert parse_layers_precision(["cnn1.0:fp16", "/fc1/Gemm:int8", "a:b:fp32"]) == {
        "cnn1.0": "fp16",
        "/fc1/Gemm": "int8",
        "a:b": "fp32",
    }
    for bad in ("cnn1.0", "cnn1.0:fp64", ":fp16"):
        with pytest.raises(ConfigError, match="layer_name:precision"):
            parse_layers_precision([bad])


def tiny_config(tiny_data, tmp_path, write_spec, **gen):
    spec = tiny_spec_dict(tiny_data, tmp_path)
    spec.pop("encryption_key")
    spec["gen_trt_engine"] = gen
    return write_spec(spec), load_config(write_spec(spec))


def test_calibration_feeds_real_pairs_to_both_inputs(tiny_data, tmp_path, write_spec):
    _, cfg = tiny_config(tiny_data, tmp_path, write_spec)
    dataset = build_dataset(cfg.dataset, "test")  # 12 rows
    normalize = Normalizer.from_config(cfg.dataset)
    batches = list(calibration_batches(dataset, normalize, batch_size=5, num_batches=3))  # 15 draws: cycles
    assert len(batches) == 3
    for b, batch in enumerate(batches):
        assert set(batch) == {"input_1", "input_2"}
        assert batch["input_1"].shape == batch["input_2"].shape == (5, *SHAPE)
        assert batch["input_1"].dtype == np.float32
        for slot in range(5):
            row = (b * 5 + slot) % 12
            image, goldens, _, _ = dataset[row]
            np.testing.assert_allclose(batch["input_1"][slot], normalize(image).numpy())
            np.testing.assert_allclose(batch["input_2"][slot], normalize(goldens[0]).numpy())  # the golden


def exported(tmp_path) -> str:
    model = create_model("Siamese_3", input_shape=SHAPE, embedding_size=4).eval()
    path = tmp_path / "oi_model.onnx"
    x = torch.randn(1, *SHAPE)
    export_onnx(model, (x, x), path, opset=17, dynamic_batch=True, constant_folding=False)
    return str(path)


def run_gen(spec, *overrides):
    return subprocess.run(
        [cli("optical_inspection"), "gen_trt_engine", "-e", str(spec), *overrides], capture_output=True, text=True
    )


def test_spec_mistakes_are_reported_before_tensorrt_is_needed(tiny_data, tmp_path, write_spec):
    spec, _ = tiny_config(tiny_data, tmp_path, write_spec, onnx_file=exported(tmp_path))
    out = run_gen(spec, "gen_trt_engine.tensorrt.layers_precision=[cnn1.0:fp64]")
    assert out.returncode == 2 and "layer_name:precision" in out.stderr and "Traceback" not in out.stderr
    out = run_gen(spec, "gen_trt_engine.tensorrt.min_batch_size=8", "gen_trt_engine.tensorrt.max_batch_size=2")
    assert out.returncode == 2 and "min_batch_size <= opt_batch_size" in out.stderr


@pytest.mark.skipif(HAVE_TRT, reason="checks the message on machines without TensorRT or a GPU")
def test_without_tensorrt_or_a_gpu_the_task_says_what_is_missing(tiny_data, tmp_path, write_spec):
    spec, _ = tiny_config(tiny_data, tmp_path, write_spec, onnx_file=exported(tmp_path))
    out = run_gen(spec)
    assert out.returncode == 6
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and ("TensorRT is not installed" in lines[0] or "NVIDIA GPU" in lines[0]), out.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not HAVE_TRT, reason="needs TensorRT (the trt extra) and an NVIDIA GPU")
def test_engine_matches_onnxruntime(tiny_data, tmp_path, write_spec):
    from tao_siamese_oi.deploy.tensorrt_engine import EngineRunner

    onnx_file = exported(tmp_path)
    engine = tmp_path / "oi_model.engine"
    spec, _ = tiny_config(
        tiny_data,
        tmp_path,
        write_spec,
        onnx_file=onnx_file,
        trt_engine=str(engine),
        tensorrt={"min_batch_size": 1, "opt_batch_size": 4, "max_batch_size": 8},
    )
    out = run_gen(spec)
    assert out.returncode == 0, out.stderr[-2000:]
    x = np.random.default_rng(0).normal(size=(6, *SHAPE)).astype(np.float32)
    got = EngineRunner(engine.read_bytes()).run({"input_1": x, "input_2": x[::-1].copy()})
    expected = onnxruntime_outputs(onnx_file, (x, x[::-1].copy()), ["output_1", "output_2"])
    assert max(float(np.abs(got[n] - e).max()) for n, e in zip(("output_1", "output_2"), expected)) < 1e-3
