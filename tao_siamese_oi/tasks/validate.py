"""validate: check every configured split (CSV cells, paths, images, classes) without running anything else."""

import logging
from pathlib import Path

from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.data.splits import SPLIT_KEYS, build_dataset
from tao_siamese_oi.errors import ConfigError
from tao_siamese_oi.tasks.lifecycle import tracked_task

log = logging.getLogger("tao_siamese_oi")


def checked_splits(cfg: ExperimentConfig) -> dict:
    """Every configured split, checked (the checks are remembered: preflight and run decode images once)."""
    splits = {
        split: build_dataset(cfg.dataset, split, cfg.train.seed).table
        for split, key in SPLIT_KEYS.items()
        if getattr(cfg.dataset, key).csv_path
    }
    if not splits:
        raise ConfigError("no dataset split is configured; set dataset.<split>_dataset.csv_path and images_dir")
    return splits


@tracked_task("validate", preflight=checked_splits)
def run(cfg: ExperimentConfig, out: Path, status) -> dict:
    summary = {}
    for split, table in checked_splits(cfg).items():
        labels = table.frame["label"].str.strip().value_counts().to_dict() if table.labelled else {}
        summary[split] = {"pairs": len(table), "fail": int(table.labels.sum()), "labels": labels}
        log.info(
            "%s: %s is valid: %d pairs, %d FAIL (%s)",
            split,
            table.csv_path,
            len(table),
            summary[split]["fail"],
            ", ".join(f"{k} {v}" for k, v in sorted(labels.items())),
        )
    return summary
