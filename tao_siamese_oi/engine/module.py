"""The Lightning module: owns the loss, the steps, the optimiser and the metrics; the network stays plain."""

import logging

import lightning as L
import numpy as np
import torch

from tao_siamese_oi.artifacts.checkpoint import HPARAMS_KEY, TAO_HPARAMS_KEY
from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.data.transforms import Normalizer, layout_from_config
from tao_siamese_oi.engine.callbacks import BAR_LOSS
from tao_siamese_oi.engine.distributed import gather_objects
from tao_siamese_oi.model.calibration import calibrate, calibrate_groups
from tao_siamese_oi.model.heatmap import cell_distances, nearest_golden
from tao_siamese_oi.model.loss import contrastive_loss
from tao_siamese_oi.model.metrics import CALIBRATED_LOGGED, CALIBRATED_PREFIX, RATES_LOGGED, inspection_metrics
from tao_siamese_oi.model.networks import GridEmbeddingNetwork, create_model, pair_distance, recorded_grid_pool

log = logging.getLogger("tao_siamese_oi")


class SiameseModule(L.LightningModule):
    """Batches arrive as uint8 images (input (B, 3, H, W), goldens (B, G, 3, H, W)); they are normalised here, on
    the training device, and each input is scored by its distance to the nearest of its goldens."""

    normalize: Normalizer

    def __init__(
        self,
        model_type: str,
        embedding_size: int,
        input_shape: tuple,
        margin: float,
        mean: tuple = (0.485, 0.456, 0.406),
        std: tuple = (0.229, 0.224, 0.225),
        optim: dict | None = None,
        threshold: float | None = None,
        target_fpr: float | None = None,
        target_recall: float | None = None,
    ):
        super().__init__()
        # Plain values only: the checkpoint then says which network it holds, for a clear mismatch error.
        self.save_hyperparameters()
        self.model = create_model(model_type, input_shape=tuple(input_shape), embedding_size=embedding_size)
        self.normalize = Normalizer(list(mean), list(std))
        self.margin = margin
        self.threshold = margin if threshold is None else threshold
        # Threshold picked on the latest validation pass for the operating-point target; saved in checkpoints.
        self.calibration: dict | None = None
        # The registration its pairs were prepared with (data/align.py) and the rest of their preparation
        # (artifacts/preprocessing.py), recorded in checkpoints; not hyper-parameters, so TAO's constructor can
        # still take ours.
        self.alignment: dict | None = None
        self.preprocessing: dict | None = None
        self._scores: dict[str, list] = {"train": [], "val": []}
        self._predicted: list = []
        # (row indices, scores, cell maps or None) of every process; cell maps when heatmap_grid is set
        self.predictions: tuple | None = None
        self.heatmap_grid: tuple[int, int] | None = None
        self.calibration_groups: tuple[str, np.ndarray] | None = None  # set by train for evaluate.calibrate_by

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, optim: dict | None = None) -> "SiameseModule":
        from tao_siamese_oi.artifacts.preprocessing import preprocessing_record
        from tao_siamese_oi.data.align import alignment_record

        aug = cfg.dataset.augmentation_config
        module = cls(
            cfg.model.model_type,
            cfg.model.embedding_vectors,
            layout_from_config(cfg.dataset).shape,
            cfg.model.margin,
            mean=tuple(aug.rgb_input_mean),
            std=tuple(aug.rgb_input_std),
            optim=optim,
            threshold=cfg.evaluate.threshold,
            target_fpr=cfg.evaluate.target_fpr,
            target_recall=cfg.evaluate.target_recall,
        )
        module.alignment = alignment_record(cfg.dataset)
        module.preprocessing = preprocessing_record(cfg.dataset)
        if isinstance(module.model, GridEmbeddingNetwork):
            module.model.pool.mode = cfg.model.grid_pool
        return module

    def on_after_batch_transfer(self, batch, dataloader_idx):
        image, goldens, label, index = batch
        return self.normalize(image), self.normalize(goldens), label, index

    def forward(self, image, goldens):
        """Distance of each normalised input (B, 3, H, W) to the nearest of its goldens (B, G, 3, H, W)."""
        batch, num_golden = goldens.shape[:2]
        embed = self.model.embed  # every registered network has embed(images) -> (B, E)
        image_embedding = embed(image)  # type: ignore[operator]
        golden_embedding = embed(goldens.flatten(0, 1)).view(batch, num_golden, -1)  # type: ignore[operator]
        return pair_distance(image_embedding.unsqueeze(1).expand_as(golden_embedding), golden_embedding).amin(1)

    def _step(self, batch, stage: str):
        image, golden, label, index = batch
        distance = self(image, golden)
        loss = contrastive_loss(distance, label, self.margin)
        if stage == "train":  # this process's batch loss, for the progress bar only
            self.log(BAR_LOSS, loss, on_step=True, on_epoch=False, prog_bar=True, logger=False)
        self._scores[stage].append(torch.stack([distance.detach(), label, index.to(distance.dtype)]).cpu())
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._step(batch, "val")

    def on_train_epoch_end(self):
        self._log_metrics("train")

    def on_validation_epoch_end(self):
        self._log_metrics("val")

    def _log_metrics(self, stage: str):
        """Epoch loss and metrics over every process's scores. Every process takes part in the gather (even with
        nothing scored) and then computes the same values, so nothing is logged with sync_dist: Lightning runs
        that reduction lazily, when the main process's progress bar first reads the metrics, which would
        interleave with this gather in a different order on each process and deadlock."""
        local = torch.cat(self._scores[stage], dim=1) if self._scores[stage] else torch.zeros(3, 0)
        self._scores[stage].clear()
        merged = torch.cat(gather_objects(local.double()), dim=1).numpy()
        if stage == "val":  # the distributed sampler pads with repeated rows: count each row once
            merged = merged[:, np.unique(merged[2], return_index=True)[1]]
        if merged.shape[1] == 0:
            return
        scores, labels = merged[0], merged[1]
        self.log(f"{stage}_loss", contrastive_loss(torch.from_numpy(scores), torch.from_numpy(labels), self.margin))
        # TAO hard-codes 2.0 here; we use the configured decision threshold (evaluate.threshold, else the margin).
        metrics = inspection_metrics(scores, labels, self.threshold)
        self.log(f"{stage}_acc", metrics["total_accuracy"], prog_bar=stage == "val")
        for name in RATES_LOGGED:
            if metrics[name] is not None:
                self.log(f"{stage}_{name}", metrics[name], prog_bar=stage == "val" and name == "auroc")
        if stage == "val":
            self._calibrate(scores, labels, merged[2].astype(np.int64))

    def _calibrate(self, scores, labels, rows) -> None:
        targets = (self.hparams["target_fpr"], self.hparams["target_recall"])
        calibration = calibrate(scores, labels, *targets)
        if calibration is None:
            return
        self.calibration = {**calibration, "epoch": self.current_epoch, "split": "validation"}
        if self.calibration_groups is not None:  # evaluate.calibrate_by: (column, each validation row's value)
            column, values = self.calibration_groups
            self.calibration["by_group"] = calibrate_groups(scores, labels, values[rows], column, *targets)
        for name in CALIBRATED_LOGGED:
            if calibration[name] is not None:
                self.log(f"val_{CALIBRATED_PREFIX}{name}", calibration[name])

    def on_save_checkpoint(self, checkpoint):
        # Lightning passes a checkpoint's hyper_parameters to the class that loads it: TAO's
        # OpticalInspectionModel.load_from_checkpoint would get keyword arguments its constructor lacks. They
        # are kept under a key of our own, so TAO's class loads our Siamese_3/Siamese_1 checkpoints.
        hparams = checkpoint.pop(TAO_HPARAMS_KEY, None)
        if hparams is not None:
            checkpoint[HPARAMS_KEY] = dict(hparams)
        if self.calibration is not None:
            checkpoint["calibration"] = dict(self.calibration)
        if self.alignment is not None:
            checkpoint["alignment"] = dict(self.alignment)
        if self.preprocessing is not None:
            checkpoint["preprocessing"] = dict(self.preprocessing)
        if isinstance(self.model, GridEmbeddingNetwork):
            checkpoint["grid_pool"] = self.model.pool.mode

    def on_load_checkpoint(self, checkpoint):
        self.calibration = checkpoint.get("calibration")
        self.alignment = checkpoint.get("alignment")
        self.preprocessing = checkpoint.get("preprocessing") or self.preprocessing
        if isinstance(self.model, GridEmbeddingNetwork):  # a resumed training keeps the pooling it started with
            recorded = recorded_grid_pool(checkpoint)
            if recorded != self.model.pool.mode:
                log.warning("The checkpoint was trained with model.grid_pool=%s; continuing with it", recorded)
                self.model.pool.mode = recorded

    def predict_step(self, batch, batch_idx):
        image, golden, _, index = batch
        if self.heatmap_grid is None:
            distance = self(image, golden)
            self._predicted.append((index.cpu().numpy(), distance.float().cpu().numpy(), None))
            return distance
        # As the deployment loop does: the distance to the nearest golden and that pair's cell distances.
        batch_size, num_golden = golden.shape[:2]
        inputs = self.model.embed(image)  # type: ignore[operator]
        references = self.model.embed(golden.flatten(0, 1)).view(batch_size, num_golden, -1)  # type: ignore[operator]
        distances, differences = nearest_golden(inputs.double().cpu().numpy(), references.double().cpu().numpy())
        maps = cell_distances(differences, self.heatmap_grid)
        self._predicted.append((index.cpu().numpy(), distances.astype(np.float32), maps))
        return None

    def on_predict_epoch_start(self):
        self._predicted.clear()

    def on_predict_epoch_end(self):
        """Collect every process's (row index, score) pairs, so scores can be put back in CSV order."""
        parts = [p for rank_parts in gather_objects(self._predicted) for p in rank_parts]
        self._predicted = []
        if parts:
            indices, scores = (np.concatenate(column) for column in list(zip(*parts))[:2])
            maps = np.concatenate([p[2] for p in parts]) if parts[0][2] is not None else None
            self.predictions = (indices, scores, maps)
        else:
            self.predictions = (np.zeros(0, np.int64), np.zeros(0, np.float32), None)

    def configure_optimizers(self):
        optim = self.hparams["optim"] or {"type": "Adam", "lr": 5e-4}
        optimizer: torch.optim.Optimizer
        if optim["type"] == "Adam":
            optimizer = torch.optim.Adam(self.parameters(), lr=optim["lr"])
        else:
            optimizer = torch.optim.SGD(
                self.parameters(), lr=optim["lr"], momentum=optim["momentum"], weight_decay=optim["weight_decay"]
            )
        if optim.get("lr_schedule", "constant") == "constant":
            return optimizer
        # Stepped per epoch over the whole run; a resumed run restores the scheduler with the optimizer.
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(self.trainer.max_epochs or 1, 1))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}


def ordered_scores(indices: np.ndarray, distances: np.ndarray, num_rows: int) -> np.ndarray:
    """Scores in CSV row order, whatever order the batches and processes returned them in (a row scored twice,
    as a distributed sampler's padding does, gets the same score both times)."""
    scores = np.full(num_rows, np.nan)
    scores[indices] = distances
    if np.isnan(scores).any():
        missing = int(np.isnan(scores).sum())
        raise RuntimeError(f"{missing} of {num_rows} rows got no score; this is a bug, please report it")
    return scores
