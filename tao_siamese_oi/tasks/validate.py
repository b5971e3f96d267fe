"""validate: check every configured split (CSV cells, paths, images, classes) without running anything else."""

import logging
from pathlib import Path

from tao_siamese_oi.data.datamodule import SPLIT_KEYS, build_dataset
from tao_siamese_oi.errors import ConfigError
from tao_siamese_oi.tasks.common import tracked_task

log = logging.getLogger("tao_siamese_oi")


@tracked_task("validate")
def run(cfg, out: Path, status) -> dict:
    summary = {}
    for split, key in SPLIT_KEYS.items():
        if not cfg.dataset[key].csv_path:
            continue
        table = build_dataset(cfg.dataset, split, cfg.train.seed).table
        labels = table.frame["label"].astype(str).str.strip().value_counts().to_dict()
        summary[split] = {"pairs": len(table), "fail": int(table.labels.sum()), "labels": labels}
        log.info(
            "%s: %s is valid: %d pairs, %d FAIL (%s)",
            split,
            table.csv_path,
            len(table),
            summary[split]["fail"],
            ", ".join(f"{k} {v}" for k, v in sorted(labels.items())),
        )
    if not summary:
        raise ConfigError("no dataset split is configured; set dataset.<split>_dataset.csv_path and images_dir")
    return summary
