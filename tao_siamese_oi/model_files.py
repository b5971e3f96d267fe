"""The names of the model files each task leaves in its folder (``<results_dir>/<task>/``). The tasks write
them; the plugin declaration tells the job service which of a job's files are its model (a client's
``download-job-files --latest-model``)."""

from pathlib import PurePath

CHECKPOINT_EXT = ".pth"
LATEST_NAME = "oi_model_latest"  # train's checkpoint (Lightning adds the extension), replaced every epoch
LATEST_CHECKPOINT = f"{LATEST_NAME}{CHECKPOINT_EXT}"
CALIBRATED_NAME = f"oi_model_calibrated{CHECKPOINT_EXT}"  # calibrate's re-calibrated copy
ONNX_NAME = "oi_model.onnx"  # export's
ENGINE_NAME = "oi_model.engine"  # gen_trt_engine's


def sidecar_name(model_name: str) -> str:
    """The deployment sidecar's name beside an exported model or engine (artifacts.exported.sidecar_path)."""
    return PurePath(model_name).with_suffix(".json").name


# A job's model, whichever action made it: the file and, for deployment files, the sidecar that goes with it.
LATEST_MODEL_FILES = (
    f"train/{LATEST_CHECKPOINT}",
    f"calibrate/{CALIBRATED_NAME}",
    f"export/{ONNX_NAME}",
    f"export/{sidecar_name(ONNX_NAME)}",
    f"gen_trt_engine/{ENGINE_NAME}",
    f"gen_trt_engine/{sidecar_name(ENGINE_NAME)}",
)
