"""The launcher plugin declaration: plain data, standard library only.

The launcher finds this through the ``tao_launcher.plugins`` entry point and must be able to read it without
importing torch. Handlers are ``"module:function"`` strings; ``function(argv) -> int`` is imported only when an
action actually runs.
"""

from tao_siamese_oi import __version__

_HANDLER = "entry_points.optical_inspection:run_action"

ACTIONS = {
    "train": "Train a Siamese model on pair CSVs.",
    "evaluate": "Score the test split with a checkpoint and write metrics.json.",
    "inference": "Score the infer split and write inference.csv (input CSV + siamese_score).",
    "export": "Export a checkpoint to ONNX, verified against PyTorch with onnxruntime.",
    "gen_trt_engine": "Build a TensorRT engine from the ONNX file (needs TensorRT and an NVIDIA GPU).",
    "dataset_convert": "Convert factory AOI CSVs, DeepPCB or synthetic data to pair CSVs.",
    "validate": "Check every configured split (CSV, paths, images, classes) and report all problems at once.",
}

PLUGIN = {
    "api_version": 1,
    "name": "optical_inspection",
    "task_group": "model",
    "version": __version__,
    "summary": "SiameseOI optical inspection of PCB components (input vs golden image pairs).",
    "image": f"tao_siamese_oi:{__version__}",
    "argv_prefix": ["optical_inspection"],
    "actions": {name: {"help": text, "handler": _HANDLER} for name, text in ACTIONS.items()},
    # Spec keys and CLI options whose values are paths, so a launcher can translate host paths.
    "path_options": ["-e", "--experiment_spec"],
    "path_keys": [
        "results_dir",
        "dataset.*.csv_path",
        "dataset.*.images_dir",
        "*.results_dir",
        "*.checkpoint",
        "train.pretrained_model_path",
        "train.resume_training_checkpoint_path",
        "*.onnx_file",
        "*.trt_engine",
        "gen_trt_engine.timing_cache",
        "gen_trt_engine.tensorrt.calibration.cal_cache_file",
    ],
    "docker_options": {"shm_size": "16G", "ipc_mode": "host"},
}
