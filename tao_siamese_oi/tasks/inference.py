"""inference: score the infer split; write inference.csv = the input CSV + siamese_score, same rows, same order."""

import logging
from pathlib import Path

from tao_siamese_oi.tasks.common import score_split, tracked_task
from tao_siamese_oi.utils.files import atomic_write

log = logging.getLogger("tao_siamese_oi")


@tracked_task("inference")
def run(cfg, out: Path, status) -> dict:
    dataset, scores = score_split(cfg, "inference", "infer")
    if scores is None:  # another DDP process: the main one writes the results
        return None
    frame = dataset.table.frame.copy()
    frame["siamese_score"] = scores
    path = atomic_write(out / "inference.csv", lambda tmp: frame.to_csv(tmp, index=False))
    log.info("Scored %d pairs; wrote %s", len(frame), path)
    return {"num_pairs": len(frame), "inference_csv": str(path)}
