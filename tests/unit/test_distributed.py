"""Devices and ranks: TAO's num_gpus/gpu_ids rule, Trainer settings on a CPU machine, sharded sampling."""

import logging

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from tao_siamese_oi.data.sampler import EpochSeededSampler
from tao_siamese_oi.engine import distributed
from tao_siamese_oi.engine.distributed import is_main_process, reconcile_gpus, trainer_devices
from tao_siamese_oi.errors import ConfigError


@pytest.mark.parametrize(
    "num_gpus, gpu_ids, expected",
    [
        (1, [0], (1, [0])),
        (2, [2, 3], (2, [2, 3])),  # agreeing: kept as given
        (2, [3], (2, [0, 1])),  # TAO's example: the larger count wins, ids become range(n)
        (1, [1, 2], (2, [1, 2])),  # the ids are the larger: kept
        (3, [], (3, [0, 1, 2])),
    ],
)
def test_gpu_reconciliation_follows_tao(num_gpus, gpu_ids, expected):
    assert reconcile_gpus(num_gpus, gpu_ids) == expected


def test_replaced_gpu_ids_are_said_out_loud(caplog):
    with caplog.at_level(logging.WARNING, logger="tao_siamese_oi"):
        reconcile_gpus(2, [3], "inference")
    assert "inference.num_gpus=2 and inference.gpu_ids=[3] disagree" in caplog.text


def test_bad_gpu_ids_are_config_errors():
    with pytest.raises(ConfigError, match=r"train.gpu_ids \[1, 1\] must be distinct"):
        reconcile_gpus(2, [1, 1])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
@pytest.mark.parametrize(
    "num_gpus, gpu_ids, nodes, devices, strategy",
    [(1, [0], 1, 1, "auto"), (0, [], 1, 1, "auto"), (2, [0], 1, 2, "ddp"), (1, [0], 2, 1, "ddp")],
)
def test_cpu_machines_run_one_process_per_requested_device(num_gpus, gpu_ids, nodes, devices, strategy):
    cfg = OmegaConf.create({"num_gpus": num_gpus, "gpu_ids": gpu_ids, "num_nodes": nodes})
    settings = trainer_devices(cfg, "train")
    assert settings == {"accelerator": "cpu", "devices": devices, "num_nodes": nodes, "strategy": strategy}


@pytest.mark.parametrize(
    "env, main",
    [
        ({}, True),
        ({"LOCAL_RANK": "1"}, False),  # Lightning's launcher, second process
        ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),  # first process of the second node
        ({"RANK": "0", "LOCAL_RANK": "0"}, True),  # torchrun
        ({"RANK": "3", "LOCAL_RANK": "0"}, False),
        ({"SLURM_PROCID": "1", "SLURM_NTASKS": "2"}, False),
        ({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, True),
    ],
)
def test_main_process_is_read_from_the_launchers_environment(monkeypatch, env, main):
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_main_process() is main


def test_without_a_process_group_gather_returns_the_own_part():
    assert distributed.world() == (1, 0)
    assert distributed.gather_objects({"a": 1}) == [{"a": 1}]


def test_sharded_sampler_splits_one_weighted_draw_between_processes():
    weights = np.r_[np.ones(90), np.full(11, 5.0)]  # 101 rows: the shares need one row of padding
    whole = list(EpochSeededSampler(weights, seed=3, num_replicas=1, rank=0))
    shares = [EpochSeededSampler(weights, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
    for share in shares:
        share.set_epoch(0)
    drawn = [list(s) for s in shares]
    assert len(drawn[0]) == len(drawn[1]) == len(shares[0]) == 51
    # Interleaved, the two shares are one draw of 102 rows made from the same (seed, epoch) as the single one.
    interleaved = [row for pair in zip(*drawn) for row in pair]
    reference = torch.multinomial(
        torch.as_tensor(weights), 102, True, generator=torch.Generator().manual_seed(3 * 1_000_003)
    ).tolist()
    assert interleaved == reference and whole == reference[:101]
    for share in shares:
        share.set_epoch(1)
    assert [list(s) for s in shares] != drawn  # a new epoch, a new draw
