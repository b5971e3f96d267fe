"""Every check that involves more than one key, run once when the config is loaded (before any task starts).

Single keys are checked by the schema (types) and its metadata (allowed values, ranges: loader.validate).
"""

import logging

from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.errors import ConfigError

log = logging.getLogger("tao_siamese_oi")

TAO_EXPORT_DEFAULT_HW = (512, 128)  # nvidia_tao_core's ExportExpConfig.input_height, input_width


def check_config(cfg: ExperimentConfig) -> None:
    from tao_siamese_oi.data.transforms import Normalizer, layout_from_config
    from tao_siamese_oi.model.registry import check_backbone

    check_backbone(cfg.model.model_type, cfg.model.model_backbone)
    layout = layout_from_config(cfg.dataset)  # num_input vs input_map, input_map positions, grid_map x*y
    Normalizer.from_config(cfg.dataset)  # three means and three positive stds
    _check_training(cfg)
    _check_export(cfg, layout.shape)


def _check_training(cfg: ExperimentConfig) -> None:
    filename = cfg.train.checkpointer.filename
    if "/" in filename or "\\" in filename or filename.strip(".") == "":
        raise ConfigError(
            f"train.checkpointer.filename '{filename}' must be a file name, not a path; the folder is "
            "train.checkpointer.dirpath"
        )
    if cfg.train.validation_interval > cfg.train.num_epochs:
        raise ConfigError(
            f"train.validation_interval ({cfg.train.validation_interval}) exceeds "
            f"train.num_epochs ({cfg.train.num_epochs}); lower it"
        )


def _check_export(cfg: ExperimentConfig, shape: tuple[int, int, int]) -> None:
    """export.input_* may restate the (C, H, W) the dataset section gives, but must agree with it. TAO's own
    defaults (512 x 128, in every experiment.yaml TAO writes) mean "not set": the dataset's shape is used."""
    given_hw = (cfg.export.input_height, cfg.export.input_width)
    if given_hw == TAO_EXPORT_DEFAULT_HW and given_hw != shape[1:]:
        log.info(
            "export.input_height/input_width are TAO's defaults %d x %d; the dataset's %d x %d is used (they are "
            "derived here)",
            *given_hw,
            *shape[1:],
        )
        return
    for key, given, derived in [
        ("input_channel", cfg.export.input_channel, shape[0]),
        ("input_height", cfg.export.input_height, shape[1]),
        ("input_width", cfg.export.input_width, shape[2]),
    ]:
        if given is not None and given != derived:
            raise ConfigError(
                f"export.{key} is {given} but the dataset config gives {derived}; remove "
                f"export.{key} (it is derived) or fix the dataset section"
            )
