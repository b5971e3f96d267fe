"""The pair dataset: one item = (input tensor, golden tensor, label, row index)."""

import torch
from torch.utils.data import Dataset

from tao_siamese_oi.data.pairs import PairTable
from tao_siamese_oi.data.transforms import SidePreprocessor


class PairDataset(Dataset):
    def __init__(self, table: PairTable, images_dir, preprocessor: SidePreprocessor):
        self.table = table
        self.images_dir = images_dir
        self.preprocessor = preprocessor
        frame = table.frame
        # Plain lists: indexing a DataFrame per item is slow and holds the GIL longer.
        self._rows = list(zip(frame["input_path"], frame["golden_path"], frame["object_name"]))

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int):
        input_dir, golden_dir, object_name = self._rows[index]
        image = self.preprocessor.load(self.images_dir, input_dir, object_name)
        golden = self.preprocessor.load(self.images_dir, golden_dir, object_name)
        return (
            torch.from_numpy(image),
            torch.from_numpy(golden),
            torch.tensor(float(self.table.labels[index])),
            torch.tensor(index),
        )
