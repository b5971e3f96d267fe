"""The experiment schema: every key a spec may set, with the only copy of each default.

Field metadata carries the checks OmegaConf cannot express (allowed values, ranges); ``loader.validate``
walks it. Key names follow TAO's SiameseOI schema so existing specs load unchanged.
"""

from dataclasses import dataclass, field, fields
from typing import Any

from tao_siamese_oi.model.registry import BACKBONE_CHOICES, MODEL_TYPE_CHOICES

LIGHTS_TAO = {"LowAngleLight": 0, "SolderLight": 1, "UniformLight": 2, "WhiteLight": 3}


def opt(
    default: Any = None,
    *,
    choices=None,
    min=None,  # noqa: A002
    max=None,  # noqa: A002
    help: str = "",  # noqa: A002
    path: bool = False,
    inert: bool = False,
):
    """A dataclass field with validation metadata; mutable defaults are copied per instance. ``path``: the value is
    a file or folder (a launcher translates it from host to container). ``inert``: a TAO key that does nothing
    here; a spec that sets it to another value than the default gets a one-line notice saying so (its help)."""
    meta = {"choices": choices, "min": min, "max": max, "help": help, "path": path, "inert": inert}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls):
    return field(default_factory=cls)


class Sealed:
    """Every schema dataclass: read-only once the loader has sealed it, so no task can change the config that
    experiment.yaml records."""

    def __setattr__(self, name, value):
        if getattr(self, "_sealed", False):
            raise AttributeError(f"the config is read-only; set {name} in the spec or as an override instead")
        object.__setattr__(self, name, value)


def seal(config) -> None:
    """Make a loaded config and every section in it read-only."""
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, Sealed):
            seal(value)
    object.__setattr__(config, "_sealed", True)


@dataclass
class ModelConfig(Sealed):
    model_type: str = opt(
        "Siamese_Grid",
        choices=MODEL_TYPE_CHOICES,
        help="Siamese_Grid (default: compact, size-agnostic, cell-by-cell) or TAO's Siamese_3 / Siamese_1 ('Siamese')",
    )
    margin: float = opt(
        2.0, min=0.0, help="contrastive-loss margin; the decision threshold only without a calibrated one"
    )
    model_backbone: str | None = opt(
        None, choices=BACKBONE_CHOICES, help="default: the model type's own (custom for TAO's types, grid)"
    )
    embedding_vectors: int = opt(5, min=1, help="embedding size E (Siamese_Grid: E per grid cell)")
    grid_pool: str = opt(
        "max",
        choices=["max", "avg"],
        help="Siamese_Grid: a cell's summary of its features; max keeps a small defect (avg: checkpoints of 0.1.0)",
    )
    imagenet_pretrained: bool = opt(
        False, help="accepted for TAO specs; no ImageNet tower exists (see train.pretrained_model_path)", inert=True
    )


@dataclass
class DataPathConfig(Sealed):
    csv_path: str | None = opt(None, help="pair CSV: input_path, golden_path, object_name, label", path=True)
    images_dir: str | None = opt(None, help="root the CSV's input_path/golden_path are relative to", path=True)


@dataclass
class GridMapConfig(Sealed):
    x: int = opt(2, min=1, help="columns of the light grid")
    y: int = opt(2, min=1, help="rows of the light grid")


@dataclass
class RandomFlipConfig(Sealed):
    enable: bool = opt(True, help="used when augment is true")
    hflip_probability: float = opt(0.5, min=0.0, max=1.0)
    vflip_probability: float = opt(0.5, min=0.0, max=1.0)


@dataclass
class RandomRotateConfig(Sealed):
    enable: bool = opt(True, help="used when augment is true")
    rotate_probability: float = opt(0.5, min=0.0, max=1.0)
    angle_list: list[float] = opt([90.0, 180.0, 270.0], help="one angle drawn uniformly from all of them")


@dataclass
class RandomColorConfig(Sealed):
    enable: bool = opt(True, help="used when augment is true")
    brightness: float = opt(0.3, min=0.0, max=2.0)
    contrast: float = opt(0.3, min=0.0, max=2.0)
    saturation: float = opt(0.3, min=0.0, max=2.0)
    hue: float = opt(0.3, min=0.0, max=0.5)
    color_probability: float = opt(0.5, min=0.0, max=1.0, help="chance of the colour change (TAO inverts it)")


@dataclass
class AugmentationConfig(Sealed):
    rgb_input_mean: list[float] = opt([0.485, 0.456, 0.406], help="per-channel mean, every split")
    rgb_input_std: list[float] = opt([0.229, 0.224, 0.225], help="per-channel std, every split")
    augment: bool = opt(False, help="paired training augmentation: one draw per pair, every light, both sides")
    random_flip: RandomFlipConfig = section(RandomFlipConfig)
    random_rotate: RandomRotateConfig = section(RandomRotateConfig)
    random_color: RandomColorConfig = section(RandomColorConfig)
    with_random_crop: bool = opt(True, help="random square-ish crop, resized back (TAO: always on)")
    crop_probability: float = opt(0.5, min=0.0, max=1.0, help="chance of the crop per pair")
    crop_scale: list[float] = opt([0.8, 1.0], help="[min, max] kept area fraction of the crop")
    with_random_blur: bool = opt(True, help="random Gaussian blur (TAO: always on)")
    blur_probability: float = opt(0.5, min=0.0, max=1.0, help="chance of the blur per pair")
    blur_max_radius: float = opt(1.0, min=0.0, help="blur radius drawn from U(0, this)")
    # Input side only, whether or not ``augment`` is on: differences a good part shows on a new design.
    input_shift: int = opt(0, min=0, help="training: move the input alone by up to this many px (0 = off)")
    input_intensity: float = opt(
        0.0, min=0.0, max=0.9, help="training: input brightness and contrast alone scaled by 1 +- up to this"
    )
    input_line_width: float = opt(
        0.0, min=0.0, max=1.0, help="training: chance the input alone is eroded or dilated by 1 px (track widths)"
    )
    input_warp: float = opt(
        0.0, min=0.0, help="training: bend the input alone by a smooth random field of up to this many px"
    )


@dataclass
class AlignmentConfig(Sealed):
    enable: bool = opt(False, help="register each input to its golden (least squares) before comparing")
    max_shift: int = opt(8, min=0, help="largest offset searched, px of the resized image")
    tiles: int = opt(1, min=1, help="then each of tiles x tiles parts is registered again (1 = one offset)")
    tile_shift: int = opt(3, min=0, help="largest further offset of a part, px")
    tolerance: int = opt(
        0, min=0, max=3, help="then input pixels are clipped to their golden's range within this many px (0 = off)"
    )


@dataclass
class DatasetConfig(Sealed):
    train_dataset: DataPathConfig = section(DataPathConfig)
    validation_dataset: DataPathConfig = section(DataPathConfig)
    test_dataset: DataPathConfig = section(DataPathConfig)
    infer_dataset: DataPathConfig = section(DataPathConfig)
    image_ext: str = opt(".jpg", help="appended to every image path")
    batch_size: int = opt(8, min=1, help="batch size of every split; training needs > 1")
    workers: int = opt(2, min=0, help="data-loader worker processes")
    fpratio_sampling: float = opt(0.1, min=0.0, help="FAIL row weight = (num_pass / num_fail) * this")
    num_input: int = opt(4, min=1, help="lights per side; must equal len(input_map)")
    input_map: dict[str, int] | None = opt(dict(LIGHTS_TAO), help="light suffix -> position; null = one image")
    grid_map: GridMapConfig = section(GridMapConfig)
    concat_type: str = opt("linear", choices=["linear", "grid"], help="how lights are joined")
    image_width: int = opt(128, min=1, help="per-light resize width")
    image_height: int = opt(128, min=1, help="per-light resize height")
    num_golden: int = opt(1, min=1, help="golden references per input; the score is the minimum distance")
    allow_absolute_paths: bool = opt(False, help="accept absolute or ../ paths in CSVs (outside images_dir)")
    validate_images: bool = opt(True, help="decode every image before a task starts (false: existence only)")
    augmentation_config: AugmentationConfig = section(AugmentationConfig)
    alignment: AlignmentConfig = section(AlignmentConfig)


@dataclass
class OptimConfig(Sealed):
    type: str = opt("Adam", choices=["Adam", "SGD"], help="optimiser")
    lr: float = opt(5e-4, min=0.0, help="learning rate")
    lr_schedule: str = opt(
        "constant", choices=["constant", "cosine"], help="cosine: lr decays to 0 over train.num_epochs (TAO: constant)"
    )
    momentum: float = opt(0.9, min=0.0, help="SGD only")
    weight_decay: float = opt(5e-4, min=0.0, help="SGD only")


@dataclass
class TensorboardConfig(Sealed):
    enabled: bool = opt(False, help="also write the epoch scalars as TensorBoard events in <train>/tensorboard/")
    infrequent_logging_frequency: int = opt(
        2, min=1, help="accepted for TAO specs; no images or histograms are logged", inert=True
    )


@dataclass
class CudnnConfig(Sealed):
    benchmark: bool = opt(False, help="cuDNN autotuner (GPU)")
    deterministic: bool = opt(True, help="deterministic kernels")


@dataclass
class CheckpointerConfig(Sealed):
    """TAO's best-k checkpoints by a monitored metric, beside the periodic and latest files."""

    enable_topk: bool = opt(False, help="also keep the save_top_k best checkpoints by monitor")
    replace_periodic: bool = opt(
        False,
        help="keep only the single best checkpoint instead of model_epoch_<NNN>_step_<SSSSS>.pth (latest still kept)",
    )
    monitor: str | None = opt(None, help="a logged metric, e.g. val_loss, val_auroc, val_fpr (default: val_loss)")
    mode: str | None = opt(None, choices=["min", "max"], help="default: max for acc/auroc/recall/precision, else min")
    save_top_k: int = opt(1, min=1, help="best checkpoints kept")
    filename: str = opt("model_best_{epoch:03d}", help="Lightning filename pattern (.pth is added)")
    dirpath: str | None = opt(None, help="default: train.results_dir", path=True)
    auto_insert_metric_name: bool = opt(False, help="Lightning: put metric=value in the file name")


@dataclass
class WandbConfig(Sealed):
    """Weights & Biases tracking of a training run (the wandb package: pip install 'tao-siamese-oi[wandb]')."""

    enable: bool = opt(False, help="log train/val metrics to W&B (TAO's default is true; it is off here)")
    project: str = opt("TAO Toolkit")
    entity: str | None = opt(None, help="team or user; default: the logged-in account")
    group: str | None = opt(None)
    tags: list[str] = opt(["training", "tao-toolkit"])
    reinit: bool = opt(False, help="accepted for TAO specs; each training starts one run", inert=True)
    sync_tensorboard: bool = opt(False, help="also upload train.tensorboard events")
    save_code: bool = opt(False)
    name: str = opt("TAO Toolkit training experiment", help="run name")
    run_id: str | None = opt(None, help="resume this W&B run")
    mode: str | None = opt(
        None,
        choices=["online", "offline"],
        help="default: online with credentials (WANDB_API_KEY or wandb login), else offline (wandb sync later)",
    )


@dataclass
class TrainConfig(Sealed):
    num_gpus: int = opt(1, min=0, help="devices (DDP processes) per node; without CUDA, CPU processes (gloo)")
    gpu_ids: list[int] = opt([0], help="GPUs to use; disagreeing with num_gpus, the larger count wins (TAO)")
    num_nodes: int = opt(1, min=1, help="machines in a multi-node DDP run (see docs/clusters.md: torchrun, SLURM)")
    seed: int = opt(1234, help="random seed; < 0 disables seeding")
    cudnn: CudnnConfig = section(CudnnConfig)
    num_epochs: int = opt(10, min=1)
    checkpoint_interval: int = opt(1, min=1, help="epochs between model_epoch_<NNN>_step_<SSSSS>.pth files")
    checkpoint_interval_unit: str = opt("epoch", choices=["epoch"])
    keep_checkpoints: int = opt(
        -1,
        min=-1,
        help="model_epoch_<NNN>_step_<SSSSS>.pth files kept: the last N (-1 = all); oi_model_latest.pth always stays",
    )
    validation_interval: int = opt(1, min=1, help="epochs between validation passes")
    resume_training_checkpoint_path: str | None = opt(
        None, help="default: oi_model_latest.pth in results_dir", path=True
    )
    pretrained_model_path: str | None = opt(None, help="start from these weights (no optimizer state)", path=True)
    results_dir: str = opt("${results_dir}/train", help="checkpoints, experiment.yaml, status.json, logs", path=True)
    loss: str = opt("contrastive", choices=["contrastive"], help="contrastive loss with model.margin")
    clip_grad_norm: float = opt(0.0, min=0.0, help="0 = off")
    optim: OptimConfig = section(OptimConfig)
    tensorboard: TensorboardConfig = section(TensorboardConfig)
    checkpointer: CheckpointerConfig = section(CheckpointerConfig)


@dataclass
class ScoringConfig(Sealed):
    """What evaluate and inference share; they differ only in their results directory."""

    num_gpus: int = opt(1, min=0, help="devices (processes) scoring shares of the split; rows stay in order")
    gpu_ids: list[int] = opt([0], help="as train.gpu_ids")
    num_nodes: int = opt(1, min=1, help="as train.num_nodes")
    checkpoint: str | None = opt(None, help="a .pth written by train", path=True)
    threshold: float | None = opt(
        None, min=0.0, help="decision threshold (FAIL when distance > it); default: the checkpoint's calibrated one"
    )
    backend: str = opt(
        "pytorch",
        choices=["pytorch", "onnxruntime", "tensorrt"],
        help="scores with checkpoint, onnx_file or trt_engine",
    )
    onnx_file: str | None = opt(
        None, help="onnxruntime backend: a file written by export (its .json sidecar too)", path=True
    )
    trt_engine: str | None = opt(None, help="tensorrt backend: an engine written by gen_trt_engine", path=True)
    strict_threshold: bool = opt(
        False,
        help="refuse a model with no calibrated threshold (a TAO checkpoint, an ONNX file without its sidecar) "
        "instead of deciding at model.margin with a warning",
    )
    golden_cache: bool = opt(True, help="embed each distinct golden once per run, then only the inputs")
    heatmaps: bool | None = opt(
        None,
        help="each pair's cell distances (heatmaps.npz) and strongest cell (hotspot_* columns); null = when the "
        "model has a cell map (Siamese_Grid)",
    )
    results_dir: str = opt("${results_dir}/evaluate", path=True)
    overwrite: bool = opt(False, help="replace the outputs of an earlier run in results_dir")
    batch_size: int = opt(-1, help="-1 = dataset.batch_size")


@dataclass
class EvaluateConfig(ScoringConfig):
    target_fpr: float = opt(
        1.0, min=0.0, max=100.0, help="train calibrates the threshold for the most recall at this FPR %"
    )
    target_recall: float | None = opt(
        None, min=0.0, max=100.0, help="if set, calibrate for the fewest false alarms at this recall % instead"
    )
    calibrate_by: str | None = opt(
        None,
        help="a CSV column (e.g. component_type): train calibrates a threshold per value with enough validation "
        "pairs, the global one for the rest; evaluate and inference decide each row by its value's",
    )
    report: bool = opt(True, help="write report.html: metrics, plots, missed defects and worst false alarms")
    report_misses: int = opt(-1, min=-1, help="missed defects shown in the report, most confident first (-1 = all)")
    report_false_alarms: int = opt(50, min=0, help="false alarms shown in the report, highest score first")


@dataclass
class InferenceConfig(ScoringConfig):
    results_dir: str = opt("${results_dir}/inference", path=True)


@dataclass
class CalibrateConfig(ScoringConfig):
    """Re-calibrate a trained model's threshold on good parts of a new design (the infer split's PASS rows)."""

    target_fpr: float = opt(1.0, min=0.0, max=100.0, help="the FPR % the new threshold is calibrated for")
    calibrate_by: str | None = opt(
        None,
        help="a CSV column (e.g. design): a threshold per value with enough PASS pairs, kept beside the model's "
        "other groups; null: the model's global threshold is replaced",
    )
    output_checkpoint: str | None = opt(
        None,
        help="default: <calibrate.results_dir>/oi_model_calibrated.pth (the given model is never changed)",
        path=True,
    )
    results_dir: str = opt("${results_dir}/calibrate", path=True)


@dataclass
class ExportConfig(Sealed):
    results_dir: str = opt("${results_dir}/export", path=True)
    gpu_id: int = opt(0, min=0)
    checkpoint: str | None = opt(None, help="a .pth written by train", path=True)
    threshold: float | None = opt(
        None, min=0.0, help="threshold in the sidecar (and decision head); default: the checkpoint's calibrated one"
    )
    include_decision: bool = opt(False, help="add graph outputs distance and decision (1 = FAIL at the threshold)")
    include_heatmap: bool = opt(
        False, help="Siamese_Grid: add the graph output cell_distances (batch, rows, cols); the sidecar maps cells"
    )
    onnx_file: str | None = opt(None, help="default: <export.results_dir>/oi_model.onnx", path=True)
    encrypt: bool = opt(
        True,
        help="with encryption_key set, encrypt the ONNX file (false: write it in the clear, e.g. for TAO's tools, "
        "which cannot read this project's encrypted files); the checkpoint is read with the key either way",
    )
    overwrite: bool = opt(False, help="replace an existing onnx_file and its sidecar")
    opset_version: int = opt(17, min=7, help="ONNX opset")
    on_cpu: bool = opt(False, help="export on the CPU even when a GPU is present")
    do_constant_folding: bool = opt(False, help="fold constants at export")
    input_channel: int = opt(3, choices=[3])
    input_height: int | None = opt(None, help="derived from dataset; if set it must match")
    input_width: int | None = opt(None, help="derived from dataset; if set it must match")
    batch_size: int = opt(-1, help="-1 = dynamic batch axis")


@dataclass
class CalibrationConfig(Sealed):
    cal_image_dir: list[str] = opt(
        [], help="ignored: int8 calibrates on pairs of the spec's dataset splits", inert=True
    )
    cal_cache_file: str | None = opt(None, help="int8 calibration cache, read if present, then written", path=True)
    cal_batch_size: int = opt(1, min=1, help="pairs per calibration batch")
    cal_batches: int = opt(1, min=1, help="calibration batches")


@dataclass
class TensorRTConfig(Sealed):
    data_type: str = opt("fp32", choices=["fp32", "fp16", "int8"])
    workspace_size: int = opt(1024, min=1, help="MB (TAO's builder took it as GB)")
    min_batch_size: int = opt(1, min=1, help="dynamic ONNX: the engine's batch range and")
    opt_batch_size: int = opt(1, min=1, help="the batch size it is tuned for")
    max_batch_size: int = opt(1, min=1)
    layers_precision: list[str] = opt([], help="'layer_name:fp32|fp16|int8' entries")
    calibration: CalibrationConfig = section(CalibrationConfig)


@dataclass
class GenTrtEngineConfig(Sealed):
    results_dir: str = opt("${results_dir}/gen_trt_engine", path=True)
    gpu_id: int = opt(0, min=0)
    onnx_file: str | None = opt(None, help="a file written by export (encrypted ones need encryption_key)", path=True)
    trt_engine: str | None = opt(None, help="default: <gen_trt_engine.results_dir>/oi_model.engine", path=True)
    overwrite: bool = opt(False, help="replace an existing trt_engine and its sidecar")
    timing_cache: str | None = opt(None, help="read if present, then written back", path=True)
    batch_size: int = opt(
        -1, help="ignored: the batch comes from the ONNX (dynamic: tensorrt.*_batch_size)", inert=True
    )
    verbose: bool = opt(False, help="TensorRT's verbose build log")
    tensorrt: TensorRTConfig = section(TensorRTConfig)


@dataclass
class DatasetConvertConfig(Sealed):
    source: str = opt("aoi", choices=["aoi", "deeppcb", "synthetic"], help="layout of the data to convert")
    results_dir: str = opt("${results_dir}/dataset_convert", help="status.json and experiment.yaml", path=True)
    root_dataset_dir: str | None = opt(None, help="aoi: image root; deeppcb: the folder holding PCBData/", path=True)
    train_pcb_dataset_dir: str | None = opt(None, help="aoi: folder of per-board CSVs -> train_combined.csv", path=True)
    val_pcb_dataset_dir: str | None = opt(None, help="aoi: folder of per-board CSVs -> valid_combined.csv", path=True)
    all_pcb_dataset_dir: str | None = opt(None, help="aoi: folder of per-board CSVs -> all_combined.csv", path=True)
    golden_csv_dir: str | None = opt(None, help="aoi: folder of <project><TOP|BOT>.csv golden tables", path=True)
    data_convert_output_dir: str | None = opt(None, help="where pair CSVs (and crops) are written", path=True)
    overwrite: bool = opt(False, help="write into a data_convert_output_dir that is not empty")
    project_name: str | None = opt("all", help="aoi: keep one project, or all")
    bot_top: str | None = opt("all", choices=["TOP", "BOT", "all"], help="aoi: keep one board side, or all")
    crop_size: int = opt(64, min=8, help="deeppcb: side of the component-sized crops, px")
    pass_crops_per_image: int = opt(20, min=0, help="deeppcb: defect-free crops drawn per board image")
    max_images: int = opt(0, min=0, help="deeppcb: convert at most this many board images per list (0 = all)")
    val_fraction: float = opt(0.15, min=0.0, max=0.9, help="deeppcb: share of trainval images kept for validation")
    scale: float = opt(
        1.0,
        min=0.25,
        max=4.0,
        help="deeppcb: board images (and boxes) resized by this factor before cropping; 0.8 makes held-out boards "
        "a stand-in for a finer-pitched new design to validate AutoML searches on (docs/automl.md)",
    )
    seed: int = opt(0, help="deeppcb/synthetic: random seed of crops and splits")


@dataclass
class ValidateConfig(Sealed):
    results_dir: str = opt(
        "${results_dir}/validate", help="status.json and experiment.yaml of a validate run", path=True
    )


@dataclass
class ExperimentConfig(Sealed):
    model_name: str = opt("optical_inspection", help="accepted for TAO specs; a label only", inert=True)
    encryption_key: str | None = opt(None, help="never written to saved configs or logs")
    results_dir: str = opt("results", help="root of every task's outputs", path=True)
    wandb: WandbConfig = section(WandbConfig)
    model: ModelConfig = section(ModelConfig)
    dataset: DatasetConfig = section(DatasetConfig)
    train: TrainConfig = section(TrainConfig)
    evaluate: EvaluateConfig = section(EvaluateConfig)
    inference: InferenceConfig = section(InferenceConfig)
    calibrate: CalibrateConfig = section(CalibrateConfig)
    export: ExportConfig = section(ExportConfig)
    gen_trt_engine: GenTrtEngineConfig = section(GenTrtEngineConfig)
    dataset_convert: DatasetConvertConfig = section(DatasetConvertConfig)
    validate: ValidateConfig = section(ValidateConfig)


def path_keys(schema=None, prefix: str = "") -> tuple[str, ...]:
    """Dotted keys of every field marked ``path`` (what a launcher translates from host to container)."""
    import dataclasses

    keys: list[str] = []
    for f in dataclasses.fields(schema or ExperimentConfig):
        if dataclasses.is_dataclass(f.type):
            keys += path_keys(f.type, f"{prefix}{f.name}.")
        elif f.metadata.get("path"):
            keys.append(f"{prefix}{f.name}")
    return tuple(keys)
