"""The Lightning module: owns the loss, the steps, the optimiser and the metrics; the network stays plain."""

import lightning as L
import numpy as np
import torch

from tao_siamese_oi.data.transforms import Normalizer, layout_from_config
from tao_siamese_oi.model.loss import contrastive_loss
from tao_siamese_oi.model.metrics import inspection_metrics
from tao_siamese_oi.model.networks import create_model, pair_distance


class SiameseModule(L.LightningModule):
    """Batches arrive as uint8 images (input (B, 3, H, W), goldens (B, G, 3, H, W)); they are normalised here, on
    the training device, and each input is scored by its distance to the nearest of its goldens."""

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
    ):
        super().__init__()
        # Plain values only: the checkpoint then says which network it holds, for a clear mismatch error.
        self.save_hyperparameters()
        self.model = create_model(model_type, input_shape=tuple(input_shape), embedding_size=embedding_size)
        self.normalize = Normalizer(list(mean), list(std))
        self.margin = margin
        self.threshold = margin if threshold is None else threshold
        self._scores: dict[str, list] = {"train": [], "val": []}

    @classmethod
    def from_config(cls, cfg, optim: dict | None = None) -> "SiameseModule":
        aug = cfg.dataset.augmentation_config
        return cls(
            cfg.model.model_type,
            cfg.model.embedding_vectors,
            layout_from_config(cfg.dataset).shape,
            cfg.model.margin,
            mean=tuple(aug.rgb_input_mean),
            std=tuple(aug.rgb_input_std),
            optim=optim,
        )

    def on_after_batch_transfer(self, batch, dataloader_idx):
        image, goldens, label, index = batch
        return self.normalize(image), self.normalize(goldens), label, index

    def forward(self, image, goldens):
        """Distance of each normalised input (B, 3, H, W) to the nearest of its goldens (B, G, 3, H, W)."""
        batch, num_golden = goldens.shape[:2]
        image_embedding = self.model.embed(image)
        golden_embedding = self.model.embed(goldens.flatten(0, 1)).view(batch, num_golden, -1)
        return pair_distance(image_embedding.unsqueeze(1).expand_as(golden_embedding), golden_embedding).amin(1)

    def _step(self, batch, stage: str):
        image, golden, label, _ = batch
        distance = self(image, golden)
        loss = contrastive_loss(distance, label, self.margin)
        self.log(
            f"{stage}_loss",
            loss,
            on_step=False,
            on_epoch=True,
            batch_size=len(label),
            prog_bar=stage == "train",
        )
        self._scores[stage].append(torch.stack([distance.detach(), label]).cpu())
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
        if not self._scores[stage]:
            return
        scores, labels = torch.cat(self._scores[stage], dim=1).numpy()
        self._scores[stage].clear()
        # TAO hard-codes 2.0 here; we use the decision threshold the model will be judged with.
        metrics = inspection_metrics(scores, labels, self.threshold)
        self.log(f"{stage}_acc", metrics["total_accuracy"], prog_bar=stage == "val")
        for name in ("fpr", "recall"):
            if metrics[name] is not None:
                self.log(f"{stage}_{name}", metrics[name])
        if metrics["auroc"] is not None:
            self.log(f"{stage}_auroc", metrics["auroc"], prog_bar=stage == "val")

    def predict_step(self, batch, batch_idx):
        image, golden, _, index = batch
        return index, self(image, golden)

    def configure_optimizers(self):
        optim = self.hparams.optim or {"type": "Adam", "lr": 5e-4}
        if optim["type"] == "Adam":
            return torch.optim.Adam(self.parameters(), lr=optim["lr"])
        return torch.optim.SGD(
            self.parameters(), lr=optim["lr"], momentum=optim["momentum"], weight_decay=optim["weight_decay"]
        )


def ordered_scores(predictions, num_rows: int) -> np.ndarray:
    """Scores in CSV row order from predict_step outputs, whatever order the batches came back in."""
    scores = np.full(num_rows, np.nan)
    for index, distance in predictions:
        scores[index.cpu().numpy()] = distance.float().cpu().numpy()
    if np.isnan(scores).any():
        missing = int(np.isnan(scores).sum())
        raise RuntimeError(f"{missing} of {num_rows} rows got no score; this is a bug, please report it")
    return scores
