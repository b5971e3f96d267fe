"""Checkpoints: Lightning's layout (``state_dict`` with ``model.*`` keys, ``epoch``), which TAO's files share,
plus our records: ``calibration``, and the network's hyper-parameters under ``siamese_oi_hparams`` (Lightning's
``hyper_parameters`` would be handed to TAO's class as constructor arguments). Read safely and decrypted when
encrypted; written atomically and encrypted when a key is set. No Lightning: a deployment loads the plain network
with :func:`load_network`.
"""

import io
import math
import os
from pathlib import Path
from typing import TypedDict

from tao_siamese_oi.artifacts.crypto import MAGIC, decrypt, encrypt, is_encrypted
from tao_siamese_oi.artifacts.safe_load import safe_torch_load
from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.errors import CheckpointError, ConfigError, FolderBusyError
from tao_siamese_oi.utils.files import atomic_write

HPARAMS_KEY = "siamese_oi_hparams"
TAO_HPARAMS_KEY = "hyper_parameters"  # Lightning's key


class CalibrationRecord(TypedDict, total=False):
    """The decision threshold picked on the validation set at training time (stored in every checkpoint, copied
    into export sidecars): for the most recall at ``target_fpr`` % or the fewest false alarms at
    ``target_recall`` %, with what it gave on validation."""

    threshold: float
    target_fpr: float
    target_recall: float
    fpr: float | None
    recall: float | None
    num_pass: int
    num_fail: int
    epoch: int
    split: str


MAX_RECORD_NODES = 100_000  # a calibration record holds a few dozen values; per-group ones a few per group


def checked_calibration(record, where) -> CalibrationRecord | None:
    """A stored calibration record as plain, finite data, or a one-line error (exit 4). Its threshold decides
    every pair, so a NaN one (which passes every defect) is refused, and so is a structure that is not plain data
    or references itself (a pickle's shared references can make a small file expand without end when written)."""
    if record is None:
        return None
    if not isinstance(record, dict):
        raise CheckpointError(f"{where}: its calibration record is not a mapping; it is not a file this project made")
    _plain(record, where)
    by_group = record.get("by_group") or {}
    entries = {"global": record}
    if isinstance(by_group, dict):
        entries.update({f"{by_group.get('column')}={k}": v for k, v in (by_group.get("thresholds") or {}).items()})
    for name, entry in entries.items():
        value = entry.get("threshold") if isinstance(entry, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise CheckpointError(
                f"{where}: its {name} threshold is {value!r}, not a finite distance; the file is damaged or was "
                "not made by this project"
            )
    return record  # type: ignore[return-value]


def _plain(record, where) -> None:
    """Plain data (dicts with string keys, lists, strings, numbers, booleans, None), visited within a budget:
    shared references are visited each time they occur, as writing the record out would."""
    stack, visited = [record], 0
    while stack:
        item = stack.pop()
        visited += 1
        if visited > MAX_RECORD_NODES:
            raise CheckpointError(f"{where}: its calibration record is far too large or refers to itself; refused")
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                raise CheckpointError(f"{where}: its calibration record has keys that are not text; refused")
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif not (item is None or isinstance(item, (str, int, float, bool))):
            raise CheckpointError(f"{where}: its calibration record holds a {type(item).__name__}; refused")


def check_model_file(path: str | os.PathLike, what: str) -> Path:
    """A model file that exists and is a file (not a folder), with a one-line error otherwise; ``builtin:<name>``
    is a pretrained model shipped in the package (tao_siamese_oi/pretrained)."""
    from tao_siamese_oi.pretrained import builtin_path, is_builtin
    from tao_siamese_oi.utils.run_lock import holder_now

    path = builtin_path(path) if is_builtin(path) else Path(path)
    if path.is_dir():
        raise CheckpointError(f"{what} {path} is a folder; name the model file inside it")
    if not path.is_file():
        raise CheckpointError(f"{what} {path} not found; train (or export) first, or fix the path")
    holder = holder_now(path.parent)
    if holder is not None and f" pid {os.getpid()} " not in holder:  # a training still running (not this one)
        raise FolderBusyError(
            f"{what} {path} is in a folder that a running {holder} is still writing; wait for it to finish, or copy "
            "the file elsewhere to use it as it is now"
        )
    return path


def load_checkpoint_file(path, encryption_key: str | None = None, map_location="cpu", mmap: bool = False) -> dict:
    """A checkpoint written by train (or TAO), decrypted first when it is encrypted, read without running code.

    A plain file is loaded from its path (``mmap``: its tensors are mapped, not read), never copied into memory
    first: a Siamese_3 checkpoint at 4 x 128 x 128 is 3 GB.
    """
    with open(path, "rb") as handle:
        encrypted = is_encrypted(handle.read(len(MAGIC)))
    name = f"checkpoint {path}"
    if not encrypted:
        return safe_torch_load(path, name, map_location=map_location, mmap=mmap)
    data = decrypt(Path(path).read_bytes(), encryption_key, name)
    return safe_torch_load(io.BytesIO(data), name, map_location=map_location)


def save_checkpoint(checkpoint: dict, path, encryption_key: str | None = None) -> None:
    """Write atomically (a kill never leaves a truncated file), encrypted when a key is set."""
    import torch

    if not encryption_key:
        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))
        return
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    data = encrypt(buffer.getvalue(), encryption_key)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


_last_read: dict = {}


def read_checkpoint(path: str | os.PathLike, encryption_key: str | None = None, mmap: bool = False) -> dict:
    """A checkpoint, read safely. The last one read is remembered (keyed by the file's identity and the way it
    was read), so a task's preflight and its run read a large or encrypted file once."""
    path = check_model_file(path, "checkpoint")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, encryption_key, mmap)
    if key not in _last_read:
        _last_read.clear()
        _last_read[key] = _load_checkpoint(path, encryption_key, mmap)
    return _last_read[key]


def _load_checkpoint(path: Path, encryption_key: str | None, mmap: bool) -> dict:
    try:
        return load_checkpoint_file(path, encryption_key, mmap=mmap)
    except CheckpointError:
        raise
    except Exception as exc:  # torch raises many kinds for a corrupt or foreign file
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}); it is truncated or not a PyTorch file"
        ) from None


def model_state(checkpoint: dict) -> dict:
    """Network weights from a Lightning checkpoint (keys ``model.*``, TAO's layout too) or a bare state dict."""
    state = checkpoint.get("state_dict", checkpoint)
    if any(k.startswith("model.") for k in state):
        state = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    return state


def epochs_done(path, encryption_key: str | None) -> int:
    """Completed epochs recorded in a checkpoint (a plain one is memory-mapped: its weights are not read)."""
    return int(read_checkpoint(path, encryption_key, mmap=True).get("epoch", -1)) + 1


def read_fitting_checkpoint(cfg: ExperimentConfig, path) -> dict:
    """``read_checkpoint``, refused in one line when the spec would prepare or pool pairs otherwise than the
    training did (dataset.alignment, model.grid_pool). Preflights call it, so a mismatch is refused before
    anything is written."""
    from tao_siamese_oi.data.align import check_alignment

    checkpoint = read_checkpoint(path, cfg.encryption_key)
    check_alignment(checkpoint.get("alignment"), cfg.dataset, path)
    _check_fits(checkpoint, cfg, path)
    checked_calibration(checkpoint.get("calibration"), f"checkpoint {path}")
    return checkpoint


def _check_fits(checkpoint: dict, cfg: ExperimentConfig, path) -> None:
    """The spec prepares and pools pairs as the training did (its records in the checkpoint)."""
    from tao_siamese_oi.artifacts.preprocessing import check_preprocessing

    record = checkpoint.get("preprocessing")
    check_preprocessing(
        record if isinstance(record, dict) else None, cfg.dataset, path, "trained", "as the training did"
    )
    _check_grid_pool(checkpoint, cfg, path)
    _check_network(checkpoint, cfg, path)


def _trained_as(checkpoint: dict) -> dict:
    """The network a checkpoint says it holds (model_type, input_shape, embedding_size), or {} (TAO's: none)."""
    trained = checkpoint.get(HPARAMS_KEY) or checkpoint.get(TAO_HPARAMS_KEY)  # 0.1.x kept them in the latter
    return trained if isinstance(trained, dict) and "input_shape" in trained else {}  # TAO's: an OmegaConf record


def _check_network(checkpoint: dict, cfg: ExperimentConfig, path, detail: str = "") -> None:
    """Refuse, before anything is written, a spec whose network is not the one the checkpoint records (its input
    shape too, except for a size-agnostic Siamese_Grid); with ``detail`` (the weights did not load), refuse in any
    case, saying what it records."""
    from tao_siamese_oi.data.transforms import layout_from_config
    from tao_siamese_oi.model.registry import canonical

    trained, shape = _trained_as(checkpoint), layout_from_config(cfg.dataset).shape
    if trained:
        model_type, input_shape = canonical(str(trained.get("model_type"))), tuple(trained["input_shape"])
        embedding = trained.get("embedding_size")
        fits = model_type == canonical(cfg.model.model_type) and embedding == cfg.model.embedding_vectors
        if not detail and fits and (input_shape == shape or model_type == "Siamese_Grid"):
            return
        detail = f"it was trained as {model_type} with input shape {input_shape} and embedding {embedding}"
    if detail:
        raise CheckpointError(
            f"checkpoint {path} does not fit the spec's model ({cfg.model.model_type}, input shape {shape}, "
            f"embedding {cfg.model.embedding_vectors}): {detail}; use the spec it was trained with"
        )


def _check_grid_pool(checkpoint: dict, cfg: ExperimentConfig, path) -> None:
    """A Siamese_Grid checkpoint is scored with the pooling it was trained with."""
    from tao_siamese_oi.model.networks import recorded_grid_pool
    from tao_siamese_oi.model.registry import canonical

    recorded = recorded_grid_pool(checkpoint)
    if canonical(cfg.model.model_type) == "Siamese_Grid" and recorded != cfg.model.grid_pool:
        raise ConfigError(
            f"checkpoint {path} was trained with model.grid_pool={recorded} but the spec says "
            f"{cfg.model.grid_pool}; set model.grid_pool={recorded}"
        )


def load_network(cfg: ExperimentConfig, path):
    """(the spec's network with the checkpoint's weights, in eval mode; its calibration record or None), with a
    one-line error when the checkpoint does not fit the spec's model."""
    from tao_siamese_oi.data.transforms import layout_from_config
    from tao_siamese_oi.model.networks import create_model

    checkpoint = read_checkpoint(path, cfg.encryption_key)
    _check_fits(checkpoint, cfg, path)
    shape = layout_from_config(cfg.dataset).shape
    model = cfg.model
    network = create_model(
        model.model_type, input_shape=shape, embedding_size=model.embedding_vectors, grid_pool=model.grid_pool
    )
    try:
        network.load_state_dict(model_state(checkpoint))
    except RuntimeError as exc:
        _check_network(checkpoint, cfg, path, str(exc).splitlines()[0])
    return network.eval(), checked_calibration(checkpoint.get("calibration"), f"checkpoint {path}")


def calibrated_checkpoint(cfg, out: Path) -> Path:
    """Where calibrate writes its re-calibrated copy of a model (``out``: calibrate's results folder)."""
    from tao_siamese_oi.model_files import CALIBRATED_NAME

    return Path(cfg.calibrate.output_checkpoint or out / CALIBRATED_NAME)
