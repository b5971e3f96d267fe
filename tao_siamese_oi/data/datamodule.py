"""Lightning data module over the four TAO splits (train, validation, test, infer)."""

import lightning as L
from torch.utils.data import DataLoader, DistributedSampler

from tao_siamese_oi.config.schema import DatasetConfig
from tao_siamese_oi.data.dataset import PairDataset, pass_batch
from tao_siamese_oi.data.sampler import build_train_sampler
from tao_siamese_oi.data.splits import build_dataset
from tao_siamese_oi.errors import ConfigError, DataError


class PairDataModule(L.LightningDataModule):
    def __init__(
        self, dataset_cfg: DatasetConfig, seed: int = 1234, eval_batch_size: int = -1, eval_split: str = "test"
    ):
        super().__init__()
        self.cfg = dataset_cfg
        self.seed = seed
        self.eval_batch_size = eval_batch_size if eval_batch_size > 0 else dataset_cfg.batch_size
        self.eval_split = eval_split
        self.datasets: dict[str, PairDataset] = {}

    def dataset(self, split: str) -> PairDataset:
        if split not in self.datasets:
            self.datasets[split] = build_dataset(self.cfg, split, self.seed)
        return self.datasets[split]

    def train_dataloader(self):
        data = self.dataset("train")
        batch = self.cfg.batch_size
        if batch < 2:
            raise ConfigError("dataset.batch_size must be > 1 for training (batch norm needs two samples)")
        if len(data) < batch:
            raise DataError(
                f"{data.table.csv_path} has {len(data)} rows, fewer than dataset.batch_size={batch}; "
                "lower the batch size or add pairs"
            )
        replicas, rank = self._replicas()
        sampler = build_train_sampler(
            data.table.labels, self.cfg.fpratio_sampling, self.seed, data.table.csv_path, replicas, rank
        )
        return self._loader(data, batch, sampler=sampler, drop_last=True)

    def val_dataloader(self):
        return self._loader(self.dataset("validation"), self.eval_batch_size, sampler=self._eval_sampler("validation"))

    def predict_dataloader(self):
        return self._loader(
            self.dataset(self.eval_split), self.eval_batch_size, sampler=self._eval_sampler(self.eval_split)
        )

    def _replicas(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def _eval_sampler(self, split: str):
        """Distributed, each process scores an interleaved share (the last ones padded by repeating rows); the
        row indices travel with the scores, so results are put back in CSV order and repeats dropped."""
        replicas, rank = self._replicas()
        if replicas == 1:
            return None
        return DistributedSampler(self.dataset(split), num_replicas=replicas, rank=rank, shuffle=False)

    def _loader(self, data, batch_size, sampler=None, drop_last=False):
        workers = self.cfg.workers
        return DataLoader(
            data,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            drop_last=drop_last,
            collate_fn=pass_batch,
            num_workers=workers,
            persistent_workers=workers > 0,
        )
