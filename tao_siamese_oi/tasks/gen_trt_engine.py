"""gen_trt_engine: the exported ONNX -> a TensorRT engine (fp32, fp16 or int8 calibrated on real pairs).

Every option is checked, and the ONNX read, before TensorRT is touched, so a spec mistake is reported the same
on a machine without a GPU; the engine gets the export's sidecar beside it (<engine>.json).
"""

import json
import logging
from pathlib import Path

from tao_siamese_oi.artifacts.checkpoint import check_model_file
from tao_siamese_oi.artifacts.crypto import encrypt
from tao_siamese_oi.artifacts.exported import read_onnx, sidecar_path
from tao_siamese_oi.config import require
from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.data.splits import SPLIT_KEYS, build_dataset
from tao_siamese_oi.data.transforms import Normalizer
from tao_siamese_oi.deploy.tensorrt_engine import (
    BuildOptions,
    batch_profiles,
    build_engine,
    calibration_batches,
    parse_layers_precision,
    require_tensorrt,
    workspace_bytes,
)
from tao_siamese_oi.errors import CheckpointError, ConfigError
from tao_siamese_oi.model_files import ENGINE_NAME
from tao_siamese_oi.tasks.lifecycle import tracked_task
from tao_siamese_oi.utils.files import atomic_write, atomic_write_text

log = logging.getLogger("tao_siamese_oi")


def engine_path(cfg: ExperimentConfig, out: Path) -> Path:
    return Path(cfg.gen_trt_engine.trt_engine or out / ENGINE_NAME)


def outputs(cfg: ExperimentConfig, out: Path) -> list[Path]:
    return [engine_path(cfg, out), sidecar_path(engine_path(cfg, out))]


def preflight(cfg: ExperimentConfig) -> None:
    path = require(cfg.gen_trt_engine.onnx_file, "gen_trt_engine.onnx_file", "the .onnx file written by export")
    check_model_file(path, "gen_trt_engine.onnx_file")


@tracked_task("gen_trt_engine", outputs=outputs, preflight=preflight, elsewhere="gen_trt_engine.trt_engine")
def run(cfg: ExperimentConfig, out: Path, status) -> dict:
    gen = cfg.gen_trt_engine
    trt_cfg = gen.tensorrt
    onnx_file = Path(require(gen.onnx_file, "gen_trt_engine.onnx_file", "the .onnx file written by export"))
    engine_file = engine_path(cfg, out)
    if trt_cfg.calibration.cal_image_dir:
        log.warning("gen_trt_engine.tensorrt.calibration.cal_image_dir is ignored: int8 calibrates on spec pairs.")
    onnx_model = read_onnx(onnx_file, cfg.encryption_key)
    onnx_bytes = onnx_model.SerializeToString()
    batch, shape = onnx_input_dims(onnx_model, onnx_file)
    options = BuildOptions(
        data_type=trt_cfg.data_type,
        workspace_bytes=workspace_bytes(trt_cfg.workspace_size),
        profiles=batch_profiles(shape, batch, trt_cfg.min_batch_size, trt_cfg.opt_batch_size, trt_cfg.max_batch_size),
        layers_precision=parse_layers_precision(list(trt_cfg.layers_precision)),
        timing_cache=gen.timing_cache,
        calibration_cache=trt_cfg.calibration.cal_cache_file,
        calibration_batch=trt_cfg.calibration.cal_batch_size,
    )
    calibration = int8_pairs(cfg) if "int8" in (options.data_type, *options.layers_precision.values()) else None
    require_tensorrt()
    import torch

    torch.cuda.set_device(gen.gpu_id)
    engine = build_engine(onnx_bytes, options, calibration, verbose=gen.verbose)
    stored = encrypt(engine, cfg.encryption_key) if cfg.encryption_key else engine
    atomic_write(engine_file, lambda tmp: Path(tmp).write_bytes(stored))
    sidecar = sidecar_path(onnx_file)
    if sidecar.is_file():
        details = {
            **json.loads(sidecar.read_text()),
            "engine": {"data_type": options.data_type, "onnx": str(onnx_file)},
        }
        atomic_write_text(sidecar_path(engine_file), json.dumps(details, indent=2))
    log.info("Built %s (%s) from %s", engine_file, options.data_type, onnx_file)
    return {"trt_engine": str(engine_file), "data_type": options.data_type, "encrypted": bool(cfg.encryption_key)}


def onnx_input_dims(model, path) -> tuple:
    """(batch, (C, H, W)) of input_1: batch an int when static, a name when dynamic."""
    graph = model.graph
    inputs = {i.name: i for i in graph.input}
    if "input_1" not in inputs:
        raise CheckpointError(f"{path} has no input_1; export it with optical_inspection export")
    dims = [
        d.dim_value if d.HasField("dim_value") else d.dim_param for d in inputs["input_1"].type.tensor_type.shape.dim
    ]
    if len(dims) != 4 or not all(isinstance(d, int) and d > 0 for d in dims[1:]):
        raise CheckpointError(f"{path}: input_1 has shape {dims}, expected (batch, 3, H, W)")
    return dims[0], tuple(dims[1:])


def int8_pairs(cfg: ExperimentConfig):
    """Calibration pairs from the first configured split: train, else validation, test, infer."""
    calibration = cfg.gen_trt_engine.tensorrt.calibration
    for split, key in SPLIT_KEYS.items():
        if getattr(cfg.dataset, key).csv_path:
            dataset = build_dataset(cfg.dataset, split, cfg.train.seed)
            normalize = Normalizer.from_config(cfg.dataset)
            return calibration_batches(dataset, normalize, calibration.cal_batch_size, calibration.cal_batches)
    raise ConfigError("int8 needs calibration pairs: set dataset.train_dataset (or another split) in the spec")
