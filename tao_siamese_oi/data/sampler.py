"""TAO's FAIL-upweighting training sampler, vectorised.

Weights: PASS rows 1, FAIL rows (num_pass / num_fail) * fpratio_sampling, drawn with replacement,
len(dataset) draws per epoch. The expected FAIL share of an epoch is r / (1 + r) whatever the class ratio:
about 9 % at the default r = 0.1. Note this *down*-weights defects when PASS rows are fewer than
10x the FAIL rows (DeepPCB-like data); raise fpratio_sampling there.
"""

import math

import numpy as np
import torch
from torch.utils.data import Sampler

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


class EpochSeededSampler(Sampler[int]):
    """Weighted draw with replacement that depends only on (seed, epoch): Lightning calls ``set_epoch`` before each
    epoch, so a run resumed from a checkpoint draws exactly the pairs an uninterrupted run would have.

    Distributed, every process makes the same draw of ``num_replicas`` x ceil(N / num_replicas) rows and keeps
    every num_replicas-th from its rank on: the shares are disjoint and together follow the weights.
    (Lightning's DistributedSamplerWrapper would instead reshuffle one draw that never changes with the epoch.)
    """

    def __init__(self, weights, seed: int, num_replicas: int = 1, rank: int = 0):
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.seed = seed
        self.epoch = 0
        self.num_replicas, self.rank = num_replicas, rank
        self.num_samples = math.ceil(len(self.weights) / num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        draw = torch.multinomial(self.weights, self.num_samples * self.num_replicas, True, generator=generator)
        return iter(draw[self.rank :: self.num_replicas].tolist())


def build_train_sampler(labels, fpratio_sampling: float, seed: int, csv_path="training CSV", num_replicas=1, rank=0):
    weights = fpratio_weights(labels, fpratio_sampling, csv_path)
    return EpochSeededSampler(weights, seed if seed >= 0 else int(torch.seed() % 2**31), num_replicas, rank)
