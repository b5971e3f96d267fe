"""dataset_convert: turn factory AOI exports, DeepPCB or the synthetic generator into TAO pair CSVs."""

import json
import logging
from pathlib import Path

from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.data.pairs import light_order
from tao_siamese_oi.errors import ConfigError
from tao_siamese_oi.tasks.lifecycle import tracked_task

log = logging.getLogger("tao_siamese_oi")


def outputs(cfg: ExperimentConfig, out: Path) -> list[Path]:
    """Whatever the output folder already holds: a conversion writes CSVs and image folders into it."""
    target = output_dir(cfg)
    return sorted(target.iterdir()) if target.is_dir() else [target] if target.exists() else []


def output_dir(cfg: ExperimentConfig) -> Path:
    if not cfg.dataset_convert.data_convert_output_dir:
        raise ConfigError("dataset_convert.data_convert_output_dir is not set; name a folder for the pair CSVs")
    return Path(cfg.dataset_convert.data_convert_output_dir)


def preflight(cfg: ExperimentConfig) -> None:
    if cfg.dataset_convert.source == "deeppcb" and not cfg.dataset_convert.root_dataset_dir:
        raise ConfigError("dataset_convert.root_dataset_dir is not set; point it at the folder holding PCBData/")
    light_order(cfg.dataset.input_map, cfg.dataset.num_input)


@tracked_task(
    "dataset_convert", outputs=outputs, preflight=preflight, elsewhere="dataset_convert.data_convert_output_dir"
)
def run(cfg: ExperimentConfig, out: Path, status) -> dict:
    convert = cfg.dataset_convert
    target = output_dir(cfg)
    target.mkdir(parents=True, exist_ok=True)
    lights = [x for x in light_order(cfg.dataset.input_map, cfg.dataset.num_input) if x]
    if convert.source == "deeppcb":
        from tao_siamese_oi.data.convert_deeppcb import convert_deeppcb

        summary = convert_deeppcb(convert, target)
    elif convert.source == "aoi":
        from tao_siamese_oi.data.convert_aoi import convert_aoi

        summary = convert_aoi(convert, lights or None, target)
    else:
        from tao_siamese_oi.data.sample import make_sample_dataset

        csvs = make_sample_dataset(target, seed=convert.seed, lights=lights or [None], image_ext=cfg.dataset.image_ext)
        summary = {split: str(path) for split, path in csvs.items()}
    log.info("Wrote pair CSVs to %s: %s", target, json.dumps(summary))
    return summary
