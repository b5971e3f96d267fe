"""The one table of actions: help, example, the config sections each reads, its title in status.json.

The task CLI, the plugin declaration, get-job-schema and status.json derive from it; each action runs
``tao_siamese_oi.tasks.<name>.run(cfg)``. Standard library only: the launcher reads it through the plugin.
"""

from dataclasses import dataclass

TOP_LEVEL_KEYS = ("model_name", "encryption_key", "results_dir")
# Spec keys whose values are secrets: never written to a saved config, a log, a status file or a printed command.
SECRET_KEYS = ("encryption_key",)
# The spec file's option, as TAO spells it (-e, --experiment_spec_file) and as this project first did.
SPEC_OPTIONS = ("-e", "--experiment_spec_file", "--experiment_spec")


@dataclass(frozen=True)
class ActionInfo:
    name: str
    help: str
    example: str
    sections: tuple[str, ...]  # config sections the action reads, besides TOP_LEVEL_KEYS
    title: str = ""  # "Starting Optical Inspection <title>." (default: the name)

    @property
    def task_module(self) -> str:
        return f"tao_siamese_oi.tasks.{self.name}"

    @property
    def status_title(self) -> str:
        return self.title or self.name


ACTIONS = {
    action.name: action
    for action in (
        ActionInfo(
            "train",
            "Train a Siamese model on pair CSVs.",
            "optical_inspection train -e specs/train.yaml train.num_epochs=20",
            ("model", "dataset", "train", "evaluate", "wandb"),  # evaluate.target_*: the threshold it calibrates
        ),
        ActionInfo(
            "evaluate",
            "Score the test split with a checkpoint and write metrics.json.",
            "optical_inspection evaluate -e specs/evaluate.yaml "
            "evaluate.checkpoint=results/sample/train/oi_model_latest.pth",
            ("model", "dataset", "train", "evaluate"),  # train.seed: the goldens each row is compared with
            "evaluation",
        ),
        ActionInfo(
            "inference",
            "Score the infer split and write inference.csv (input CSV + siamese_score).",
            "optical_inspection inference -e specs/inference.yaml "
            "inference.checkpoint=results/sample/train/oi_model_latest.pth",
            ("model", "dataset", "train", "inference"),
        ),
        ActionInfo(
            "calibrate",
            "Re-calibrate a trained model's threshold for a target FPR on good parts (PASS pairs) of a new design.",
            "optical_inspection calibrate -e specs/calibrate.yaml "
            "calibrate.checkpoint=results/sample/train/oi_model_latest.pth",
            ("model", "dataset", "train", "calibrate"),
            "calibration",
        ),
        ActionInfo(
            "export",
            "Export a checkpoint to ONNX, verified against PyTorch with onnxruntime.",
            "optical_inspection export -e specs/export.yaml export.checkpoint=results/sample/train/oi_model_latest.pth",
            ("model", "dataset", "train", "export"),
        ),
        ActionInfo(
            "gen_trt_engine",
            "Build a TensorRT engine from the ONNX file (needs TensorRT and an NVIDIA GPU).",
            "optical_inspection gen_trt_engine -e specs/gen_trt_engine.yaml",
            ("dataset", "train", "gen_trt_engine"),
        ),
        ActionInfo(
            "dataset_convert",
            "Convert factory AOI CSVs, DeepPCB or synthetic data to pair CSVs.",
            "optical_inspection dataset_convert -e specs/dataset_convert_deeppcb.yaml",
            ("dataset", "dataset_convert"),
            "dataset conversion",
        ),
        ActionInfo(
            "validate",
            "Check every configured split (CSV, paths, images, classes) and report all problems at once.",
            "optical_inspection validate -e specs/train.yaml",
            ("dataset", "train", "validate"),
            "data validation",
        ),
    )
}
