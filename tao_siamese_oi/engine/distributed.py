"""Devices, processes and ranks: TAO's num_gpus/gpu_ids rule, Lightning Trainer settings, and gathering results.

One process per device (DDP through Lightning). On a machine without CUDA, ``num_gpus: N`` > 1 runs N CPU
processes on the gloo backend, so the distributed path is the same code everywhere. Lightning's own launcher
starts the extra processes by re-running the command line; torchrun and SLURM start them themselves (Lightning
detects both). Only the main process (global rank 0) writes status.json, experiment.yaml and outputs.

Threads: with N processes per machine, each gets cpu_count // N torch threads, unless OMP_NUM_THREADS is set
(Lightning's launcher does this; torchrun sets OMP_NUM_THREADS=1 itself).
"""

import logging
import os

import torch

from tao_siamese_oi.config.schema import ScoringConfig, TrainConfig
from tao_siamese_oi.errors import ConfigError

log = logging.getLogger("tao_siamese_oi")


def reconcile_gpus(num_gpus: int, gpu_ids: list[int], key: str = "train") -> tuple[int, list[int]]:
    """TAO's rule: when num_gpus and len(gpu_ids) disagree the larger wins, and gpu_ids becomes range(num_gpus)
    unless its length already matches. Unlike TAO, a replaced gpu_ids is said out loud."""
    gpu_ids = [int(i) for i in gpu_ids]
    if any(i < 0 for i in gpu_ids) or len(set(gpu_ids)) != len(gpu_ids):
        raise ConfigError(f"{key}.gpu_ids {gpu_ids} must be distinct device numbers >= 0")
    if num_gpus == len(gpu_ids):
        return num_gpus, gpu_ids
    count = max(num_gpus, len(gpu_ids))
    if len(gpu_ids) != count:
        log.warning(
            "%s.num_gpus=%d and %s.gpu_ids=%s disagree: using %d devices %s (TAO's rule: the larger count wins); "
            "set both to silence this",
            key,
            num_gpus,
            key,
            gpu_ids,
            count,
            list(range(count)),
        )
        gpu_ids = list(range(count))
    return count, gpu_ids


def trainer_devices(task_cfg: TrainConfig | ScoringConfig, key: str) -> dict:
    """Trainer keyword arguments (accelerator, devices, num_nodes, strategy) for a train/evaluate/inference config."""
    count, gpu_ids = reconcile_gpus(task_cfg.num_gpus, list(task_cfg.gpu_ids), key)
    nodes = task_cfg.num_nodes
    devices: list[int] | int  # GPU ids, or a number of CPU processes (Lightning's two forms)
    if torch.cuda.is_available():
        visible = torch.cuda.device_count()
        if max(gpu_ids, default=0) >= visible:
            raise ConfigError(
                f"{key}.gpu_ids {gpu_ids} asks for a GPU this machine does not have ({visible} visible); "
                f"lower {key}.num_gpus / gpu_ids"
            )
        accelerator, devices = "gpu", gpu_ids or [0]
    else:
        processes = max(count, 1)
        accelerator, devices = "cpu", processes
        if processes > 1 or nodes > 1:
            log.info("No CUDA device found: running %d processes per node on the CPU (gloo backend).", processes)
        else:
            log.info("No CUDA device found: running on the CPU.")
    processes = len(devices) if isinstance(devices, list) else devices
    strategy = "ddp" if processes * nodes > 1 else "auto"
    return {"accelerator": accelerator, "devices": devices, "num_nodes": nodes, "strategy": strategy}


def is_main_process() -> bool:
    """Global rank 0, read from the launcher's environment, so it is right before any Trainer exists.

    torchrun sets RANK, SLURM sets SLURM_PROCID, Lightning's launcher sets NODE_RANK and LOCAL_RANK.
    """
    env = os.environ
    if "RANK" in env:
        return int(env["RANK"]) == 0
    if "SLURM_PROCID" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        return int(env["SLURM_PROCID"]) == 0
    return int(env.get("NODE_RANK", 0)) == 0 and int(env.get("LOCAL_RANK", 0)) == 0


def world() -> tuple[int, int]:
    """(world size, global rank) of the initialised process group, (1, 0) without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


def gather_objects(obj) -> list:
    """Every process's ``obj``, in rank order, on every process ([obj] when not distributed).

    Pickled, so the parts may differ in length (a rank's share of a split need not match another's).
    """
    size, _ = world()
    if size == 1:
        return [obj]
    parts = [None] * size
    torch.distributed.all_gather_object(parts, obj)
    return parts
