"""The pair dataset: one item = (input uint8 (3, H, W), goldens uint8 (G, 3, H, W), label, row index).

The DataLoader asks for whole batches (``__getitems__``): each image is written once, straight into the batch
tensors (in shared memory inside a loader worker), instead of once into an item and again by the collate step.
"""

import math

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from tao_siamese_oi.config.schema import DatasetConfig
from tao_siamese_oi.data.align import align_to_golden
from tao_siamese_oi.data.augment import InputSideAugmenter, PairAugmenter
from tao_siamese_oi.data.goldens import GoldenIndex
from tao_siamese_oi.data.pairs import PairTable
from tao_siamese_oi.data.transforms import SideLoader, light_views

# Decoded goldens kept per worker: about 200 MB at 4 lights of 128 x 128.
GOLDEN_CACHE_SIZE = 1024


class PairDataset(Dataset):
    """``augment``: these are training pairs, changed by the augmentations ``dataset_cfg`` turns on."""

    def __init__(
        self,
        table: PairTable,
        images_dir,
        dataset_cfg: DatasetConfig,
        augment: bool = False,
        seed: int = 0,
        load_goldens=True,
    ):
        self.table = table
        # False: batches carry no golden images (G = 0); a scorer with a golden-embedding cache loads them itself.
        self.load_goldens = load_goldens
        self.images_dir = images_dir
        self.inputs = SideLoader(dataset_cfg)
        self.goldens = SideLoader(dataset_cfg, cache_size=GOLDEN_CACHE_SIZE)
        self.golden_index = GoldenIndex(
            images_dir, self.inputs.layout.lights, dataset_cfg.image_ext, dataset_cfg.num_golden, seed=seed
        )
        aug_cfg = dataset_cfg.augmentation_config
        self.augmenter = PairAugmenter(aug_cfg) if augment and aug_cfg.augment else None
        input_side = InputSideAugmenter(aug_cfg)
        self.input_side = input_side if augment and input_side.active else None
        self.alignment = dataset_cfg.alignment if dataset_cfg.alignment.enable else None
        frame = table.frame
        # Plain lists: indexing a DataFrame per item is slow.
        self._rows = list(zip(frame["input_path"], frame["golden_path"], frame["object_name"]))

    def __len__(self) -> int:
        return len(self._rows)

    def golden_stems(self, index: int) -> list[str]:
        _, golden_dir, object_name = self._rows[index]
        return self.golden_index.for_row(index, golden_dir, object_name)

    def golden_keys(self, index: int) -> list[tuple[str, str]]:
        """(golden_dir, stem) of each of the row's goldens: the same key means the same golden images."""
        golden_dir = self._rows[index][1]
        return [(golden_dir, stem) for stem in self.golden_stems(index)]

    def load_golden(self, key: tuple[str, str]) -> np.ndarray:
        return self.goldens.load(self.images_dir, *key)

    def __getitem__(self, index: int):
        image, goldens, labels, indices = self.__getitems__([index])
        return image[0], goldens[0], labels[0], indices[0]

    def __getitems__(self, indices: list[int]):
        """A collated batch: images (B, 3, H, W) and goldens (B, G, 3, H, W) uint8, labels float, row indices."""
        shape = self.inputs.layout.shape
        images = _batch_tensor((len(indices), *shape))
        num_golden = self.golden_index.num_golden if self.load_goldens else 0
        goldens = _batch_tensor((len(indices), num_golden, *shape))
        images_np, goldens_np = images.numpy(), goldens.numpy()
        for slot, index in enumerate(indices):
            self._load_into(index, images_np[slot], goldens_np[slot])
        return (
            images,
            goldens,
            torch.from_numpy(self.table.labels[indices].astype(np.float32)),
            torch.tensor(indices, dtype=torch.int64),
        )

    def _load_into(self, index: int, image_out: np.ndarray, goldens_out: np.ndarray) -> None:
        input_dir, golden_dir, object_name = self._rows[index]
        augment = None
        # Drawn from torch's per-worker generator, so a seeded run repeats exactly.
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)))) if self.augmenter or self.input_side else None
        if self.augmenter is not None and rng is not None:
            augment = self.augmenter.draw(rng).apply
        self.inputs.load(self.images_dir, input_dir, object_name, augment, out=image_out)
        if self.input_side is not None and rng is not None:
            self.input_side.apply(self._light_views(image_out), rng)
        stems = self.golden_stems(index)
        if self.load_goldens:
            for out, stem in zip(goldens_out, stems):
                self.goldens.load(self.images_dir, golden_dir, stem, augment, out=out)
        if self.alignment is not None:
            # Registered to the first golden (the row's own): with num_golden > 1 the others share its frame.
            golden = goldens_out[0] if self.load_goldens else self.goldens.load(self.images_dir, golden_dir, stems[0])
            align_to_golden(image_out, golden, self._light_views, self.alignment)

    def _light_views(self, chw: np.ndarray) -> list[np.ndarray]:
        return light_views(chw, self.inputs.layout)


def pass_batch(batch):
    """The DataLoader's collate step for :class:`PairDataset`, whose ``__getitems__`` already returns batches."""
    return batch


def _batch_tensor(shape: tuple) -> torch.Tensor:
    """An uninitialised uint8 tensor; in a loader worker, in shared memory, so the hand-over copies nothing."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=torch.uint8)
    # What torch's default_collate does for the same reason (allocating, then share_memory_(), would copy).
    storage = torch.UntypedStorage._new_shared(math.prod(shape))
    return torch.empty(0, dtype=torch.uint8).set_(storage).view(shape)
