"""Weights & Biases tracking of a training run through Lightning's WandbLogger (``wandb`` section, as TAO's).

TAO tracks only when someone is logged in and says nothing otherwise; here an enabled section is never silent:
without credentials the run is logged offline (``wandb sync`` uploads it later), without the package one line
says how to get it.
"""

import logging
import netrc
import os
from pathlib import Path

from tao_siamese_oi.config.loader import redacted_container
from tao_siamese_oi.config.schema import ExperimentConfig

log = logging.getLogger("tao_siamese_oi")

WANDB_HOST = "api.wandb.ai"


def wandb_logger(cfg: ExperimentConfig, out: Path) -> list:
    """[WandbLogger] for an enabled ``wandb`` section, or [] with a one-line notice when wandb is not installed."""
    try:
        from lightning.pytorch.loggers import WandbLogger
    except ImportError:  # pragma: no cover - part of lightning
        return []
    try:
        import wandb  # noqa: F401  (WandbLogger imports it only when the run starts)
    except ImportError:
        log.warning(
            "wandb.enable is true but the wandb package is not installed: this training is not tracked in W&B "
            "(pip install 'tao-siamese-oi[wandb]', or set wandb.enable: false)"
        )
        return []
    settings = cfg.wandb
    mode = settings.mode or ("online" if has_credentials() else "offline")
    if mode == "offline":
        log.info(
            "W&B: logging offline to %s (no WANDB_API_KEY or wandb login); upload it later with `wandb sync`",
            out / "wandb",
        )
    return [
        WandbLogger(
            project=settings.project,
            entity=settings.entity or None,
            group=settings.group or None,
            tags=list(settings.tags),
            name=settings.name,
            id=settings.run_id or None,
            save_dir=str(out),
            mode=mode,
            save_code=settings.save_code,
            sync_tensorboard=settings.sync_tensorboard,
            config=redacted_container(cfg),  # the encryption key never leaves this machine
        )
    ]


def has_credentials() -> bool:
    """An API key in the environment or in ~/.netrc (where ``wandb login`` puts it). The key is never read out."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def finish_tracking(loggers: list, failed: bool) -> None:
    """End the W&B run this training started (Lightning leaves it open until the process exits, which a job
    service's worker or an in-process caller does not), marking it failed when training failed."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger" and logger._experiment is not None:
            logger.experiment.finish(exit_code=1 if failed else 0)
