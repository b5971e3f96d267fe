"""TAO's FAIL-upweighting training sampler, vectorised.

Weights: PASS rows 1, FAIL rows (num_pass / num_fail) * fpratio_sampling, drawn with replacement,
len(dataset) draws per epoch. The expected FAIL share of an epoch is r / (1 + r) whatever the class ratio:
about 9 % at the default r = 0.1. Note this *down*-weights defects when PASS rows are fewer than
10x the FAIL rows (DeepPCB-like data); raise fpratio_sampling there.
"""

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from tao_siamese_oi.errors import DataError


def fpratio_weights(labels: np.ndarray, fpratio_sampling: float, csv_path="training CSV") -> np.ndarray:
    labels = np.asarray(labels)
    num_fail = int(labels.sum())
    num_pass = len(labels) - num_fail
    if num_fail == 0:
        raise DataError(
            f"{csv_path} has no FAIL rows; the training sampler needs defects (label anything other than PASS)"
        )
    if num_pass == 0:
        raise DataError(f"{csv_path} has no PASS rows; training needs good (PASS) pairs too")
    fail_weight = num_pass / num_fail * fpratio_sampling
    return np.where(labels == 1, fail_weight, 1.0)


class EpochSeededSampler(WeightedRandomSampler):
    """WeightedRandomSampler whose draw depends only on (seed, epoch): Lightning calls ``set_epoch`` before each
    epoch, so a run resumed from a checkpoint draws exactly the pairs an uninterrupted run would have."""

    def __init__(self, weights, seed: int):
        super().__init__(torch.as_tensor(weights, dtype=torch.double), num_samples=len(weights), replacement=True)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return super().__iter__()


def build_train_sampler(labels, fpratio_sampling: float, seed: int, csv_path="training CSV"):
    weights = fpratio_weights(labels, fpratio_sampling, csv_path)
    return EpochSeededSampler(weights, seed if seed >= 0 else int(torch.seed() % 2**31))
