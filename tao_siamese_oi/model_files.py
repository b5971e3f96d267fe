"""The names of the model files each task leaves in its folder (``<results_dir>/<task>/``). The tasks write
them; the plugin declaration tells the job service which of a job's files are its model (a client's
``download-job-files --latest-model``)."""

CHECKPOINT_EXT = ".pth"
LATEST_NAME = "oi_model_latest"  # train's checkpoint, replaced every epoch
CALIBRATED_NAME = f"oi_model_calibrated{CHECKPOINT_EXT}"  # calibrate's re-calibrated copy
ONNX_NAME = "oi_model.onnx"  # export's (its sidecar: the same name, .json)
ENGINE_NAME = "oi_model.engine"  # gen_trt_engine's (its sidecar likewise)

# A job's model, whichever action made it: the file and, for deployment files, the sidecar that goes with it.
LATEST_MODEL_FILES = (
    f"train/{LATEST_NAME}{CHECKPOINT_EXT}",
    f"calibrate/{CALIBRATED_NAME}",
    f"export/{ONNX_NAME}",
    "export/oi_model.json",
    f"gen_trt_engine/{ENGINE_NAME}",
    "gen_trt_engine/oi_model.json",
)
