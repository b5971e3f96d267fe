"""export: checkpoint -> ONNX, shapes derived from the dataset config, verified before it is put in place."""

import json
import logging
from pathlib import Path

import torch

from tao_siamese_oi.artifacts.checkpoint import check_model_file, read_fitting_checkpoint
from tao_siamese_oi.artifacts.crypto import encrypt
from tao_siamese_oi.artifacts.exported import deployment_sidecar, encrypted_export, sidecar_path
from tao_siamese_oi.config import require
from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.data.splits import SPLIT_KEYS, build_dataset
from tao_siamese_oi.data.transforms import Normalizer
from tao_siamese_oi.deploy.onnx_export import (
    PARITY_TOLERANCE,
    check_onnx,
    deployment_model,
    export_onnx,
    parity,
)
from tao_siamese_oi.deploy.scorer import Scorer
from tao_siamese_oi.errors import OIError
from tao_siamese_oi.model_files import ONNX_NAME
from tao_siamese_oi.tasks.lifecycle import tracked_task
from tao_siamese_oi.tasks.provenance import provenance
from tao_siamese_oi.utils.files import atomic_write, atomic_write_text

log = logging.getLogger("tao_siamese_oi")


def onnx_path(cfg: ExperimentConfig, out: Path) -> Path:
    return Path(cfg.export.onnx_file or out / ONNX_NAME)


def outputs(cfg: ExperimentConfig, out: Path) -> list[Path]:
    return [onnx_path(cfg, out), sidecar_path(onnx_path(cfg, out))]


def preflight(cfg: ExperimentConfig) -> None:
    checkpoint = require(cfg.export.checkpoint, "export.checkpoint", "the .pth file written by train")
    read_fitting_checkpoint(cfg, check_model_file(checkpoint, "export.checkpoint"))
    example_split(cfg)


@tracked_task("export", outputs=outputs, preflight=preflight, elsewhere="export.onnx_file")
def run(cfg: ExperimentConfig, out: Path, status) -> dict:
    export_cfg = cfg.export
    onnx_file = onnx_path(cfg, out)
    device = (
        torch.device("cuda", export_cfg.gpu_id)
        if torch.cuda.is_available() and not export_cfg.on_cpu
        else torch.device("cpu")
    )
    # The checkpoint with its threshold rules and cell map, as scoring sees them.
    scorer = Scorer.open(cfg, "export", torch.device("cpu"))
    network, calibration, geometry = scorer.network, scorer.calibration, scorer.geometry
    threshold, source, shape = scorer.threshold, scorer.threshold_source, scorer.layout.shape
    if export_cfg.include_heatmap and geometry is None:
        log.info(
            "export.include_heatmap: %s has no cell map (only Siamese_Grid has one); exported without it",
            cfg.model.model_type,
        )
    heatmap = geometry if export_cfg.include_heatmap else None
    model = deployment_model(
        network, threshold if export_cfg.include_decision else None, heatmap.grid if heatmap else None
    )
    model = model.to(device).eval()

    dynamic = export_cfg.batch_size == -1
    batch = 2 if dynamic else export_cfg.batch_size
    inputs = example_inputs(cfg, shape, batch)
    first = 1 if dynamic else batch
    example = (inputs[0][:first].to(device), inputs[1][:first].to(device))
    diffs = []
    encrypted = encrypted_export(cfg)

    def write_verified(tmp):
        # Checked on the temp file, so a file that fails never replaces anything.
        export_onnx(
            model,
            example,
            tmp,
            opset=export_cfg.opset_version,
            dynamic_batch=dynamic,
            constant_folding=export_cfg.do_constant_folding,
        )
        check_onnx(tmp)
        diffs.append(parity(model, Path(tmp), inputs))
        if not diffs[-1] < PARITY_TOLERANCE:
            raise OIError(
                f"ONNX output differs from PyTorch by {diffs[-1]:.2e} (limit {PARITY_TOLERANCE:.0e});"
                " nothing was written. Try another export.opset_version"
            )
        if cfg.encryption_key and encrypted:  # verified in the clear, stored encrypted
            Path(tmp).write_bytes(encrypt(Path(tmp).read_bytes(), cfg.encryption_key))

    atomic_write(onnx_file, write_verified)
    made_from = provenance(cfg, out, cfg.export.checkpoint)  # the checkpoint it was exported from
    sidecar = atomic_write_text(
        sidecar_path(onnx_file),
        json.dumps(
            {
                **deployment_sidecar(
                    cfg, shape, dynamic, (threshold, source), calibration, heatmap.describe() if heatmap else None
                ),
                "provenance": made_from,
            },
            indent=2,
        ),
    )
    diff = diffs[-1]
    log.info(
        "Exported %s: input (%s, %d, %d, %d) x2, max |onnxruntime - pytorch| = %.2e on %d pairs",
        onnx_file,
        "batch" if dynamic else batch,
        *shape,
        diff,
        batch,
    )
    return {
        "onnx_file": str(onnx_file),
        "sidecar": str(sidecar),
        "max_abs_diff": diff,
        "input_shape": list(shape),
        "dynamic_batch": dynamic,
        "threshold": threshold,
        "decision_in_graph": bool(export_cfg.include_decision),
        "heatmap_in_graph": heatmap is not None,
        "encrypted": encrypted,
        "provenance": made_from,
    }


def example_split(cfg: ExperimentConfig):
    """The first configured split (checked), whose pairs the export is verified on; None without one."""
    for split, key in SPLIT_KEYS.items():
        if getattr(cfg.dataset, key).csv_path:
            return build_dataset(cfg.dataset, split, cfg.train.seed)
    return None


def example_inputs(cfg: ExperimentConfig, shape, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real pairs (each input with its first golden) from the first configured split, normalised as in training,
    so parity is measured on data like production's."""
    dataset = example_split(cfg)
    if dataset is not None:
        images, goldens, _, _ = dataset.__getitems__([i % len(dataset) for i in range(batch)])
        normalize = Normalizer.from_config(cfg.dataset)
        return normalize(images), normalize(goldens[:, 0])
    log.warning("No dataset split is configured: checking the export on random inputs.")
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, *shape, generator=generator), torch.randn(batch, *shape, generator=generator)
