"""The pair dataset: one item = (input uint8 (3, H, W), goldens uint8 (G, 3, H, W), label, row index)."""

import numpy as np
import torch
from torch.utils.data import Dataset

from tao_siamese_oi.data.augment import PairAugmenter
from tao_siamese_oi.data.goldens import GoldenIndex
from tao_siamese_oi.data.pairs import PairTable
from tao_siamese_oi.data.transforms import SideLoader

# Decoded goldens kept per worker: about 200 MB at 4 lights of 128 x 128.
GOLDEN_CACHE_SIZE = 1024


class PairDataset(Dataset):
    def __init__(self, table: PairTable, images_dir, dataset_cfg, augment: bool = False, seed: int = 0):
        self.table = table
        self.images_dir = images_dir
        self.inputs = SideLoader(dataset_cfg)
        self.goldens = SideLoader(dataset_cfg, cache_size=GOLDEN_CACHE_SIZE)
        self.golden_index = GoldenIndex(
            images_dir, self.inputs.layout.lights, dataset_cfg.image_ext, dataset_cfg.num_golden, seed=seed
        )
        self.augmenter = PairAugmenter(dataset_cfg.augmentation_config) if augment else None
        frame = table.frame
        # Plain lists: indexing a DataFrame per item is slow.
        self._rows = list(zip(frame["input_path"], frame["golden_path"], frame["object_name"]))

    def __len__(self) -> int:
        return len(self._rows)

    def golden_stems(self, index: int) -> list[str]:
        _, golden_dir, object_name = self._rows[index]
        return self.golden_index.for_row(index, golden_dir, object_name)

    def __getitem__(self, index: int):
        input_dir, golden_dir, object_name = self._rows[index]
        augment = None
        if self.augmenter is not None:
            # Drawn from torch's per-worker generator, so a seeded run repeats exactly.
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,))))
            augment = self.augmenter.draw(rng).apply
        image = self.inputs.load(self.images_dir, input_dir, object_name, augment)
        goldens = [self.goldens.load(self.images_dir, golden_dir, stem, augment) for stem in self.golden_stems(index)]
        goldens = goldens[0][None] if len(goldens) == 1 else np.stack(goldens)  # one golden: a view, no copy
        return (
            torch.from_numpy(image),
            torch.from_numpy(goldens),
            torch.tensor(float(self.table.labels[index])),
            torch.tensor(index),
        )
