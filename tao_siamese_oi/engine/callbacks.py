"""Training callbacks: TAO-named checkpoints written atomically, throughput, and status.json epoch lines."""

import logging
import time
from datetime import timedelta

import torch
from lightning.pytorch.callbacks import Callback, Checkpoint, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from tao_siamese_oi.artifacts.checkpoint import load_checkpoint_file, save_checkpoint
from tao_siamese_oi.model.metrics import higher_is_better
from tao_siamese_oi.model_files import CHECKPOINT_EXT, LATEST_NAME
from tao_siamese_oi.utils import progress
from tao_siamese_oi.utils.status import RUNNING, StatusLogger

log = logging.getLogger("tao_siamese_oi")

PERIODIC_NAME = "model_epoch_{epoch:03d}_step_{step:05d}"  # TAO 7.3's names (0-based epoch, global step)
BAR_LOSS = "loss"  # SiameseModule's per-batch loss, logged for the progress bar only
EPOCH_LINE_KPIS = ("train_loss", "val_loss", "val_auroc", "val_fpr", "val_recall")  # the rest: status.json


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning writes checkpoints in place; a kill mid-write would leave a truncated file. Write a temp
    file beside it and rename, so a checkpoint on disk is always complete; encrypt it when a key is set."""

    def __init__(self, encryption_key: str | None = None):
        super().__init__()
        self._key = encryption_key

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        save_checkpoint(checkpoint, path, self._key)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_checkpoint_file(path, self._key, map_location)  # always the restricted unpickler


def tao_checkpoint_callbacks(results_dir, every_n_epochs: int, keep: int = -1) -> list[ModelCheckpoint]:
    """``model_epoch_<NNN>_step_<SSSSS>.pth`` (0-based epoch and global step, as TAO 7.3) every N epochs, the last
    ``keep`` of them kept (-1: all), and ``oi_model_latest.pth`` every epoch (a file, not TAO's symlink: it is
    written every epoch, also when checkpoint_interval writes no periodic file, and survives a copy).

    Two callbacks: Lightning's ``save_last`` writes the latest file only in epochs that wrote a periodic one, so
    a kill could lose up to N - 1 epochs. Retention is Lightning's top-k with the epoch as the score (the newest
    are the best), so only files this training wrote are ever deleted.
    """
    periodic = _checkpoint(
        ModelCheckpoint, results_dir, PERIODIC_NAME, every_n_epochs, keep, "epoch" if keep > 1 else None
    )
    latest = _checkpoint(LatestCheckpoint, results_dir, LATEST_NAME, 1, keep=1)  # one name, replaced every epoch
    return [periodic, latest]


def best_checkpoint_callback(checkpointer, results_dir) -> ModelCheckpoint | None:
    """TAO's ``train.checkpointer``: the ``save_top_k`` best checkpoints by a logged metric (Lightning's top-k),
    beside the periodic files, or instead of them with ``replace_periodic`` (then one, as TAO keeps)."""
    if not checkpointer.enable_topk:
        return None
    monitor = monitored_metric(checkpointer)
    callback = BestCheckpoint(
        dirpath=checkpointer.dirpath or results_dir,
        filename=checkpointer.filename,
        monitor=monitor,
        mode=checkpointer.mode or default_mode(monitor),
        save_top_k=1 if checkpointer.replace_periodic else checkpointer.save_top_k,
        auto_insert_metric_name=checkpointer.auto_insert_metric_name,
        save_on_train_epoch_end=monitor.startswith("train_"),  # val_*: when validation has run
        enable_version_counter=False,
    )
    callback.FILE_EXTENSION = CHECKPOINT_EXT
    return callback


def monitored_metric(checkpointer) -> str:
    return checkpointer.monitor or "val_loss"  # TAO's default for every network without its own


def default_mode(monitor: str) -> str:
    return "max" if higher_is_better(monitor) else "min"


class BestCheckpoint(ModelCheckpoint):
    """``train.checkpointer``'s files; a class of its own for Lightning's per-class callback state."""


class LatestCheckpoint(ModelCheckpoint):
    """``oi_model_latest.pth``. A class of its own so that Lightning, which keys callback states by class and
    interval, can tell its state from the periodic callback's when both run every epoch."""


def _checkpoint(
    kind: type, results_dir, filename: str, every_n_epochs: int, keep: int, monitor: str | None = None
) -> ModelCheckpoint:
    callback = kind(
        dirpath=results_dir,
        filename=filename,
        monitor=monitor,
        mode="max",
        auto_insert_metric_name=False,
        every_n_epochs=every_n_epochs,
        save_top_k=keep,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    callback.FILE_EXTENSION = CHECKPOINT_EXT
    return callback


class ValidateLastEpoch(Callback):
    """Validate the final epoch whatever train.validation_interval says, so the last checkpoint's calibrated
    threshold comes from the weights it holds. (Lightning reads check_val_every_n_epoch each epoch.)"""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == trainer.max_epochs - 1:
            trainer.check_val_every_n_epoch = 1


def epoch_metrics(trainer) -> dict[str, float]:
    """The epoch's logged metrics (train_*, val_*), without the per-batch loss shown in the progress bar."""
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1 and k != BAR_LOSS}


class ThroughputAndStatus(Checkpoint):
    """Measures training pairs/s (training steps only, validation excluded) and appends a RUNNING line with the
    epoch's KPIs to status.json.

    A ``Checkpoint`` subclass only so Lightning runs its ``on_train_epoch_end`` after the module's, when the
    epoch's train metrics have been logged (plain callbacks run before the module's hook).
    """

    def __init__(self, status: StatusLogger):
        self.status = status
        self.pairs = 0
        self.seconds = 0.0
        self._start = self._last_line = 0.0

    def on_train_start(self, trainer, pl_module):
        log.info(
            "Training on %d process(es) x %d node(s), %d torch threads per process.",
            trainer.world_size // trainer.num_nodes,
            trainer.num_nodes,
            torch.get_num_threads(),
        )
        self.status.write(RUNNING, "Starting Training Loop.")

    def on_train_end(self, trainer, pl_module):
        self.status.write(RUNNING, "Training loop complete.")

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = self._last_line = time.perf_counter()
        self._validation_seconds = 0.0
        self._epoch_pairs = 0
        self._epoch_steps = 0

    # Validation runs inside the training epoch; its time is not training time.
    def on_validation_start(self, trainer, pl_module):
        self._validation_start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        self._validation_seconds += time.perf_counter() - self._validation_start

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._epoch_pairs += len(batch[2]) * trainer.world_size  # every process trains an equal share
        self._epoch_steps += 1
        if self._log_progress(trainer):
            total = trainer.num_training_batches
            seconds = time.perf_counter() - self._start - self._validation_seconds
            left = (total - self._epoch_steps) * seconds / self._epoch_steps if total != float("inf") else None
            log.info("Epoch %d/%d: %d of %s batches (%s), %.0f pairs/s%s", trainer.current_epoch + 1,
                     trainer.max_epochs, self._epoch_steps, total,
                     f"{100 * self._epoch_steps / total:.0f} %" if left is not None else "size unknown",
                     self._epoch_pairs / max(seconds, 1e-9),
                     f", about {left:.0f} s left in the epoch" if left is not None else "")  # fmt: skip

    def _log_progress(self, trainer) -> bool:
        """In a log (no terminal, so no progress bar), a line every progress.LOG_EVERY_S seconds of an epoch: a
        long epoch is never silent. The main process says it for all."""
        now = time.perf_counter()
        if now - self._last_line < progress.LOG_EVERY_S or progress.bars_wanted() or not trainer.is_global_zero:
            return False
        self._last_line = now
        return True

    def on_train_epoch_end(self, trainer, pl_module):
        elapsed = time.perf_counter() - self._start
        self.pairs += self._epoch_pairs
        self.seconds += elapsed - self._validation_seconds
        kpi = epoch_metrics(trainer)
        epochs_left = trainer.max_epochs - 1 - trainer.current_epoch
        steps = max(self._epoch_steps, 1)
        self.status.write(
            RUNNING,
            "Train/Eval metrics generated.",
            kpi=kpi,
            epoch=trainer.current_epoch,
            max_epoch=trainer.max_epochs - 1,
            step=trainer.global_step,
            max_step=trainer.global_step + epochs_left * steps,
            # TAO writes these as text ("0:00:07.551234", str(timedelta)) and its AutoML reads them so; the
            # seconds stay as numbers under keys of their own
            time_per_epoch=str(timedelta(seconds=elapsed)),
            time_per_step=str(timedelta(seconds=elapsed / steps)),
            eta=str(timedelta(seconds=elapsed * epochs_left)),
            time_per_epoch_s=round(elapsed, 3),
            time_per_step_s=round(elapsed / steps, 4),
            eta_s=round(elapsed * epochs_left, 1),
        )
        if not progress.bars_wanted() and trainer.is_global_zero:  # in a log: each epoch in one line
            shown = ", ".join(f"{k} {kpi[k]:.4g}" for k in EPOCH_LINE_KPIS if isinstance(kpi.get(k), (int, float)))
            log.info("Epoch %d/%d done in %.1f s: %s; about %.0f s left", trainer.current_epoch + 1,
                     trainer.max_epochs, elapsed, shown or "no metrics", elapsed * epochs_left)  # fmt: skip

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.seconds if self.seconds else 0.0
