"""The life of one task run in its results folder.

Before anything is written (so a refused run changes nothing on disk):
0. a folder another run holds now is refused, naming that run (before anything is read from the folder: a
   running training's checkpoints and a running evaluation's outputs are not final);
1. the results folder must be a folder we can use (not a file);
2. **the overwrite rule**: a task never replaces a file an earlier run made. Each task names the files it would
   write (:data:`Outputs`); if one exists the run stops (exit 5) naming them, unless ``<task>.overwrite: true``.
   Train has no overwrite: rerunning it in a folder continues that training (resume); a new training needs a
   new results_dir;
3. the task's ``preflight(cfg)`` checks its inputs (data, model files);
4. the folder is locked for the whole run (another run into it is refused, naming its PID and host).
Then stale temp files of killed writes are removed, experiment.yaml is written, status.json records the run
(appended, as TAO: STARTED ... SUCCESS or FAILURE with the reason, "Interrupted by SIGTERM" included) and
``<task>.log`` what the console showed (utils/run_log.py).
"""

import contextlib
import functools
import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

from tao_siamese_oi.actions import ACTIONS
from tao_siamese_oi.config import save_resolved_config
from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.engine.distributed import is_main_process
from tao_siamese_oi.errors import ConfigError, OutputExistsError
from tao_siamese_oi.utils import signals
from tao_siamese_oi.utils.files import remove_stale_temp_files
from tao_siamese_oi.utils.memory import keep_freed_memory
from tao_siamese_oi.utils.run_lock import locked_folder, refuse_if_busy
from tao_siamese_oi.utils.run_log import log_result, run_log
from tao_siamese_oi.utils.status import FAILURE, STARTED, SUCCESS, StatusLogger

log = logging.getLogger("tao_siamese_oi")

MAX_NAMED = 3

# outputs(cfg, out) -> the files (or folders) the run would write; those that exist are refused.
Outputs = Callable[[ExperimentConfig, Path], list[Path]]


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def quiet_libraries() -> None:
    """Drop library chatter that says nothing about the user's run: banners (GPU/TPU available), adverts,
    warnings about choices made on purpose (resuming into a folder with checkpoints, our batch hook)."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropAdverts())
    if log.getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message=r"You have overridden `on_after_batch_transfer`")
    # On a SLURM login node Lightning suggests srun even for a one-process run started outside SLURM.
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r".*does not have many workers")
    # SiameseModule gathers every process's scores itself, so each logs the same epoch values.
    warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting")


def tracked_task(
    task: str,
    outputs: Outputs | None = None,
    preflight: Callable | None = None,
    elsewhere: str = "results_dir",
    finished: Callable | None = None,
):
    """Decorate ``run(cfg, out, status)`` with the life described in this module's docstring. ``elsewhere``: the
    key a refused user can change to write somewhere else; ``finished(cfg)``: the result of a run that has
    nothing left to do (a finished training), returned without touching the folder."""

    def decorate(run):
        @functools.wraps(run)
        def wrapper(cfg: ExperimentConfig):
            quiet_libraries()
            keep_freed_memory()
            out = Path(getattr(cfg, task).results_dir)
            if not is_main_process():  # another DDP process: the main one checks and reports, this one computes
                log.setLevel(logging.WARNING)
                return run(cfg, out=out, status=StatusLogger(None))
            refuse_if_busy(out)  # a running task's folder says nothing final yet (finished? outputs written?)
            check_outputs(cfg, task, out, outputs, elsewhere)
            result = finished(cfg) if finished is not None else None
            if result is not None:
                return result
            if preflight is not None:
                preflight(cfg)
            with _created_folder(out, task), locked_folder(out, task):
                check_outputs(cfg, task, out, outputs, elsewhere)  # again: another run may have finished meanwhile
                remove_stale_temp_files(out)
                save_resolved_config(cfg, out)
                return _run_recorded(run, cfg, task, out)

        return wrapper

    return decorate


def _run_recorded(run, cfg: ExperimentConfig, task: str, out: Path):
    status = StatusLogger(out)
    with run_log(out, task) as file_log:
        status.write(STARTED, started_message(task))
        try:
            result = run(cfg, out=out, status=status)
        except BaseException as exc:
            stopped = signals.received()
            message = str(stopped or exc) or type(exc).__name__
            with contextlib.suppress(OSError):  # on a full disk the failure itself cannot be recorded
                status.write(FAILURE, message if message.endswith(".") else message + ".", verbosity="ERROR")
                file_log.error("%s", message)
            raise
        kpi = {k: v for k, v in (result or {}).items() if isinstance(v, (int, float))}
        extra = {"provenance": result["provenance"]} if isinstance(result, dict) and "provenance" in result else {}
        status.write(SUCCESS, f"{task.capitalize()} finished successfully.", kpi=kpi, **extra)
        log_result(file_log, result)
    return result


def check_outputs(
    cfg: ExperimentConfig, task: str, out: Path, outputs: Outputs | None, elsewhere: str = "results_dir"
) -> None:
    """Refuse to start when the results folder is unusable, another task's, or the run would replace an earlier
    run's files."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{task}.results_dir {out} is a file, not a folder; choose another results_dir")
    owner = folder_task(out)
    if owner not in (None, task):
        raise OutputExistsError(
            f"{task}.results_dir {out} holds a {owner} run (its status.json); a task writes only into its own "
            f"folder: choose another {task}.results_dir"
        )
    existing = [path for path in (outputs(cfg, out) if outputs else []) if path.exists()]
    if not existing or getattr(getattr(cfg, task), "overwrite", False):
        return
    named = ", ".join(map(str, existing[:MAX_NAMED])) + (
        f" and {len(existing) - MAX_NAMED} more" if len(existing) > MAX_NAMED else ""
    )
    how = (
        f"pass {task}.overwrite=true to replace them"
        if hasattr(getattr(cfg, task), "overwrite")
        else "remove them first"
    )
    raise OutputExistsError(f"{task} would replace {named} from an earlier run; {how}, or choose another {elsewhere}")


def folder_task(out: Path) -> str | None:
    """The task whose runs a results folder holds, from the first line of its status.json (None: no run yet)."""
    try:
        with (out / "status.json").open() as handle:
            message = json.loads(handle.readline()).get("message", "")
    except (OSError, ValueError, AttributeError):
        return None
    return next((name for name, info in ACTIONS.items() if message == started_message(name)), None)


def started_message(task: str) -> str:
    return f"Starting Optical Inspection {ACTIONS[task].status_title}."


@contextlib.contextmanager
def _created_folder(out: Path, task: str):
    """Create the results folder (and missing parents); remove what was created if the run is refused before it
    wrote anything (another run holds the folder)."""
    missing = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"{task}.results_dir {out}: a parent of it is a file; choose another results_dir") from None
    try:
        yield
    except OutputExistsError:
        for folder in missing:  # deepest first; only folders that are still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
