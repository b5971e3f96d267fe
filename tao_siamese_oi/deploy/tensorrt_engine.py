"""TensorRT: build an engine from the exported ONNX (gen_trt_engine), and run one (the tensorrt backend).

The option handling (profiles, layer precisions, workspace units, calibration batches) is plain Python and
tested without TensorRT; only ``build_engine`` and ``EngineRunner`` need the ``tensorrt`` package (the ``trt``
extra) and an NVIDIA GPU. Device memory comes from torch's CUDA allocator, so nothing beyond TensorRT is needed.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tao_siamese_oi.deploy.onnx_export import INPUT_NAMES
from tao_siamese_oi.errors import ConfigError, MissingCapabilityError, OIError

PRECISIONS = {"fp32": "FLOAT", "fp16": "HALF", "int8": "INT8"}


def require_tensorrt():
    """The tensorrt module and a CUDA device, or a one-line error saying which is missing and what to do."""
    try:
        import tensorrt
    except ImportError:
        raise MissingCapabilityError(
            "TensorRT is not installed: install the trt extra (pip install 'tao_siamese_oi[trt]') on a machine "
            "with an NVIDIA GPU, or use the onnxruntime backend"
        ) from None
    import torch

    if not torch.cuda.is_available():
        raise MissingCapabilityError(
            "TensorRT needs an NVIDIA GPU and none is visible (torch.cuda.is_available() is False); run on a GPU "
            "machine, or use the onnxruntime backend"
        )
    return tensorrt


@dataclass(frozen=True)
class BuildOptions:
    data_type: str
    workspace_bytes: int
    profiles: dict  # input name -> (min, opt, max) shapes
    layers_precision: dict  # layer name -> precision name (fp32/fp16/int8)
    timing_cache: str | None
    calibration_cache: str | None
    calibration_batch: int = 1  # pairs per int8 calibration batch


def workspace_bytes(megabytes: int) -> int:
    """tensorrt.workspace_size is documented in MB; TAO multiplied it by 2**30 (GB). Here it is MB."""
    return int(megabytes) << 20


def batch_profiles(input_shape: tuple, onnx_batch, min_batch: int, opt_batch: int, max_batch: int) -> dict:
    """One optimisation profile per input. A dynamic ONNX batch (a name or -1) gets (min, opt, max); a static
    ONNX batch gets that size fixed, whatever the options say."""
    if isinstance(onnx_batch, int) and onnx_batch > 0:
        shape = (onnx_batch, *input_shape)
        return {name: (shape, shape, shape) for name in INPUT_NAMES}
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise ConfigError(
            "gen_trt_engine.tensorrt batch sizes must satisfy 1 <= min_batch_size <= opt_batch_size <= "
            f"max_batch_size (got {min_batch}, {opt_batch}, {max_batch})"
        )
    shapes = tuple((b, *input_shape) for b in (min_batch, opt_batch, max_batch))
    return {name: shapes for name in INPUT_NAMES}


def parse_layers_precision(entries: list[str]) -> dict:
    """``["layer_name:fp16", ...]`` -> {layer_name: "fp16"}; the layer name may itself contain colons."""
    parsed = {}
    for entry in entries:
        name, sep, precision = str(entry).rpartition(":")
        if not sep or not name or precision not in PRECISIONS:
            raise ConfigError(
                f"gen_trt_engine.tensorrt.layers_precision entry '{entry}' must be 'layer_name:precision' with "
                f"precision one of {', '.join(PRECISIONS)}"
            )
        parsed[name] = precision
    return parsed


def calibration_batches(dataset, normalize, batch_size: int, num_batches: int) -> Iterator[dict]:
    """Real pairs for the INT8 calibrator, BOTH inputs (TAO fed only the first): each batch maps input_1 to
    normalised inputs and input_2 to their goldens, float32 (B, 3, H, W), in dataset order, cycling when the
    dataset is smaller than batch_size * num_batches."""
    if len(dataset) == 0:
        raise ConfigError("INT8 calibration needs pairs; the dataset split is empty")
    for b in range(num_batches):
        rows = [(b * batch_size + i) % len(dataset) for i in range(batch_size)]
        images, goldens, _, _ = dataset.__getitems__(rows)
        yield {
            "input_1": np.ascontiguousarray(normalize(images).numpy(), dtype=np.float32),
            "input_2": np.ascontiguousarray(normalize(goldens[:, 0]).numpy(), dtype=np.float32),
        }


def build_engine(onnx_bytes: bytes, options: BuildOptions, calibration=None, verbose: bool = False) -> bytes:
    """A serialised engine. ``calibration``: an iterator of calibration_batches, for int8."""
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise OIError(f"TensorRT cannot parse the ONNX file: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_bytes)
    profile = builder.create_optimization_profile()
    for name, (low, best, high) in options.profiles.items():
        profile.set_shape(name, low, best, high)
    config.add_optimization_profile(profile)
    if options.data_type in ("fp16", "int8") or "fp16" in options.layers_precision.values():
        config.set_flag(trt.BuilderFlag.FP16)
    if options.data_type == "int8" or "int8" in options.layers_precision.values():
        config.set_flag(trt.BuilderFlag.INT8)
        if calibration is None:
            raise ConfigError("gen_trt_engine data_type int8 needs calibration pairs (a dataset split in the spec)")
        config.int8_calibrator = _entropy_calibrator(trt, calibration, options.calibration_cache)
        # Calibration runs at one fixed shape: the calibration batch, whatever the inference profile is.
        calibration_profile = builder.create_optimization_profile()
        for name, (low, _, _) in options.profiles.items():
            fixed = (options.calibration_batch, *low[1:])
            calibration_profile.set_shape(name, fixed, fixed, fixed)
        config.set_calibration_profile(calibration_profile)
    if options.layers_precision:
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        _apply_layer_precisions(trt, network, options.layers_precision)
    cache = _load_timing_cache(config, options.timing_cache)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise OIError("TensorRT could not build the engine; rerun with gen_trt_engine.verbose=true for its log")
    if options.timing_cache:
        Path(options.timing_cache).write_bytes(memoryview(cache.serialize()))
    return bytes(engine)


def _apply_layer_precisions(trt, network, wanted: dict) -> None:
    found = set()
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.name in wanted:
            layer.precision = getattr(trt.DataType, PRECISIONS[wanted[layer.name]])
            found.add(layer.name)
    missing = sorted(set(wanted) - found)
    if missing:
        raise ConfigError(f"gen_trt_engine.tensorrt.layers_precision names layers the network lacks: {missing}")


def _load_timing_cache(config, path: str | None):
    data = Path(path).read_bytes() if path and Path(path).is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _entropy_calibrator(trt, batches, cache_file: str | None):
    import torch

    class PairCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.batches = iter(batches)
            self.current = {}
            self.size = None

        def get_batch_size(self):
            return self.size or 1

        def get_batch(self, names):
            batch = next(self.batches, None)
            if batch is None:
                return None
            self.current = {k: torch.from_numpy(v).cuda() for k, v in batch.items()}
            self.size = len(batch["input_1"])
            return [int(self.current[name].data_ptr()) for name in names]

        def read_calibration_cache(self):
            return Path(cache_file).read_bytes() if cache_file and Path(cache_file).is_file() else None

        def write_calibration_cache(self, cache):
            if cache_file:
                Path(cache_file).write_bytes(bytes(cache))

    return PairCalibrator()


class EngineRunner:
    """Runs a serialised engine on the current CUDA device; inputs and outputs are numpy arrays."""

    def __init__(self, engine_bytes: bytes):
        trt = require_tensorrt()
        import torch

        self.torch, self.trt = torch, trt
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise OIError("the TensorRT engine cannot be loaded (built by another TensorRT version or GPU?)")
        self.context = self.engine.create_execution_context()
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in self.names}

    def run(self, inputs: dict) -> dict:
        torch = self.torch
        device_inputs = {n: torch.from_numpy(np.ascontiguousarray(inputs[n], np.float32)).cuda() for n in inputs}
        for name, tensor in device_inputs.items():
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        outputs = {}
        for name in (n for n in self.names if not self.is_input[n]):
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = torch.from_numpy(np.empty(0, self.trt.nptype(self.engine.get_tensor_dtype(name)))).dtype
            outputs[name] = torch.empty(shape, dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise OIError("TensorRT execution failed")
        stream.synchronize()
        return {name: tensor.cpu().numpy() for name, tensor in outputs.items()}
