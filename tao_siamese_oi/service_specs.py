"""The job service's hook (plugin protocol 1.1): a job's datasets, parent jobs and results folder into its spec.

Plain data only (no torch): the service calls it when a job is created. A dataset is a pair-CSV file (its images
in ``images/`` beside it) or a folder holding ``dataset.csv`` and ``images/``. Roles: ``train`` -> the train
split, ``eval`` -> validation and test, ``inference`` -> infer, ``dataset`` (dataset jobs) -> every split.
Children find their model in their ancestors: the nearest train's ``oi_model_latest.pth`` or calibrate's
``oi_model_calibrated.pth``, export's ONNX file, and score it as it was trained: the model section and how
inputs are prepared (TRAINED_WITH) come from that job's spec, whatever the child's spec says (a client sends the
schema's defaults, which would not fit a model trained at another size). A training whose lineage holds a
training (a published model, or a train parent) starts from its weights. A calibrate job reads its good parts
from the ``inference`` dataset.
"""

import copy
from pathlib import Path

from tao_siamese_oi.model_files import CALIBRATED_NAME, LATEST_CHECKPOINT, ONNX_NAME

# Where tasks write: bound by the service (the client's values dropped), inside the job's results folder.
OUTPUT_KEYS = (
    "results_dir",
    "*.results_dir",
    "train.checkpointer.dirpath",
    "export.onnx_file",
    "gen_trt_engine.trt_engine",
    "gen_trt_engine.timing_cache",
    "gen_trt_engine.tensorrt.calibration.cal_cache_file",
    "dataset_convert.data_convert_output_dir",
    "calibrate.output_checkpoint",
)
# Where a lineage's model is: a training's latest checkpoint, or a re-calibrated copy of it.
MODEL_FILES = {"train": f"train/{LATEST_CHECKPOINT}", "calibrate": f"calibrate/{CALIBRATED_NAME}"}
# What a model was trained with that its children must score it with (the checkpoint's preprocessing record
# and the network): taken from the spec of the job that made the model.
TRAINED_WITH = {
    "model": None,
    "dataset": ("num_input", "input_map", "concat_type", "grid_map", "image_width", "image_height",
                "augmentation_config", "alignment"),
}  # fmt: skip
# The environment variables a job's client may set (besides JOB_VAR_*): what the tasks read on purpose.
JOB_ENV = ("WANDB_MODE", "WANDB_PROJECT", "WANDB_ENTITY", "OMP_NUM_THREADS")

ROLE_SPLITS = {
    "train": ("train_dataset",),
    "eval": ("validation_dataset", "test_dataset"),
    "inference": ("infer_dataset",),
    "dataset": ("train_dataset", "validation_dataset", "test_dataset", "infer_dataset"),
}


def job_specs(action: str, specs: dict, datasets: dict, ancestors: list, results_dir: str) -> dict:
    spec = copy.deepcopy(specs)
    spec["results_dir"] = results_dir
    section = spec.setdefault("dataset", {})
    for role, paths in datasets.items():
        for split in ROLE_SPLITS.get(role, ()):
            section[split] = _split(Path(paths[0]))
    model = _newest_model(ancestors)
    exported = _newest(ancestors, "export")
    if model and action in ("evaluate", "inference", "calibrate", "export"):
        spec.setdefault(action, {})["checkpoint"] = model
        _trained_with(spec, Path(model).parents[2])
    if model and action == "train":  # a training from a published model (or a train parent) starts from it
        spec.setdefault("train", {})["pretrained_model_path"] = model
    if exported and action == "gen_trt_engine":
        spec.setdefault(action, {})["onnx_file"] = f"{exported}/export/{ONNX_NAME}"
    if action == "dataset_convert":  # the converted pairs stay in the job (a dataset of the org refers to them)
        spec.setdefault(action, {})["data_convert_output_dir"] = f"{results_dir}/dataset_convert/converted"
    return spec


def _split(path: Path) -> dict:
    if path.is_dir():
        return {"csv_path": str(path / "dataset.csv"), "images_dir": str(path / "images")}
    return {"csv_path": str(path), "images_dir": str(path.parent / "images")}


def _newest(ancestors: list, action: str) -> str | None:
    return next((a["results_dir"] for a in ancestors if a["action"] == action), None)


def _newest_model(ancestors: list) -> str | None:
    """The checkpoint of the nearest training or re-calibration in the lineage."""
    nearest = next((a for a in ancestors if a["action"] in MODEL_FILES), None)
    return f"{nearest['results_dir']}/{MODEL_FILES[nearest['action']]}" if nearest else None


def _trained_with(spec: dict, model_job: Path) -> None:
    """The model section and the input preparation of the job that made the model, over the child's."""
    from tao_launcher.safe_yaml import YamlRefused, load_yaml_file

    try:  # the job's own code could have rewritten its spec: read safely, and only as a hint
        trained = load_yaml_file(model_job / "spec.yaml")
    except (OSError, YamlRefused):
        trained = None
    if not isinstance(trained, dict):
        return  # none readable (a model from before the service kept specs): the child's own spec says, checked
    for section, keys in TRAINED_WITH.items():
        source = trained.get(section)
        if not isinstance(source, dict):
            continue
        target = spec.setdefault(section, {})
        for key in keys or tuple(source):
            if key in source:
                target[key] = copy.deepcopy(source[key])
