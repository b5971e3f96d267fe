"""``optical_inspection <action> -e spec.yaml [key=value ...]``: the task CLI.

Each action loads the config (schema <- spec <- overrides) and calls ``tao_siamese_oi.tasks.<action>.run``.
Task modules, and with them torch, are imported only when an action runs.
"""

import contextlib
import importlib
import json
import logging
import os
import shlex
import sys
import traceback
from typing import NoReturn

import click
from tao_launcher.redaction import RedactingStream, redact_argv, register_argv

from tao_siamese_oi import __version__
from tao_siamese_oi.actions import ACTIONS, SECRET_KEYS, SPEC_OPTIONS
from tao_siamese_oi.errors import FILE_ACCESS_EXIT_CODE, OIError, file_access_message


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (a test's capture, a redirected stream)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _setup_logging() -> None:
    # Our own logger only: Lightning configures its loggers itself, a root handler would print them twice.
    logger = logging.getLogger("tao_siamese_oi")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _fail(message: str, code: int, debug: bool) -> NoReturn:
    if debug:
        traceback.print_exc()
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def redacted_console():
    """The console streams with every known secret hidden, for the whole run (our log lines, library output,
    warnings, error lines, the result): the job service's job.log is this console."""
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams


def run_task(action: str, spec: str, overrides: tuple, debug: bool) -> dict:
    from tao_siamese_oi.utils import signals

    register_argv(overrides, SECRET_KEYS)
    _setup_logging()
    with signals.handled():
        cfg, result = _run_or_fail(action, spec, overrides, debug)
    if result is not None:
        hint = next_step(action, spec, overrides, cfg, result)
        if hint:
            click.echo(f"next: {hint}", err=True)
    return result


def _run_or_fail(action: str, spec: str, overrides: tuple, debug: bool):
    from tao_siamese_oi.config import load_config
    from tao_siamese_oi.utils import signals

    try:
        cfg = load_config(spec, overrides)
        return cfg, importlib.import_module(ACTIONS[action].task_module).run(cfg)
    except signals.Interrupted as exc:
        _fail(str(exc), exc.exit_code, debug)
    except (SystemExit, KeyboardInterrupt, Exception) as exc:  # noqa: BLE001 - the CLI edge: one line each
        stopped = signals.received()  # Lightning turns signals into SystemExit or its own exceptions
        if stopped is not None:
            _fail(str(stopped), stopped.exit_code, debug)
        if isinstance(exc, OIError):
            _fail(str(exc), exc.exit_code, debug)
        if isinstance(exc, OSError):
            _fail(file_access_message(exc), FILE_ACCESS_EXIT_CODE, debug)
        if isinstance(exc, KeyboardInterrupt):
            _fail("interrupted", 130, debug)
        if isinstance(exc, SystemExit):
            raise
        _fail(f"{type(exc).__name__}: {exc} (rerun with --debug for the traceback)", 1, debug)


# The split a task scores; a spec without it is not the one to run that task with.
SCORED_SPLIT = {"evaluate": "test_dataset", "inference": "infer_dataset", "train": "train_dataset"}


# The CSVs dataset_convert writes (tasks/dataset_convert.py), by the split they fill.
CONVERTED_CSVS = {"train_dataset": "train.csv", "validation_dataset": "val.csv", "test_dataset": "test.csv"}


def next_step(action: str, spec: str, overrides: tuple, cfg, result: dict) -> str | None:
    """The natural next command after a successful run, with this run's overrides and files. The spec is this
    run's when it has the split the next task needs, else ``<task>.yaml`` beside it (TAO's layout: one spec per
    task), else this one with the missing key to fill in. A command whose task would find its results folder
    taken gets a free one (``<task>.results_dir``): what is suggested runs as printed."""
    from pathlib import Path

    def command(task: str, *extra: str, fresh: str = "") -> str:
        kept = [o for o in overrides if not o.startswith(f"{action}.") and not o.startswith(f"{task}.")]
        task_spec, missing = spec, []
        split = SCORED_SPLIT.get(task)
        if (
            split
            and not getattr(cfg.dataset, split).csv_path
            and not any(o.startswith(f"dataset.{split}") for o in kept)
        ):
            sibling = Path(spec).with_name(f"{task}.yaml")
            task_spec = str(sibling) if sibling.is_file() else spec
            missing = [] if sibling.is_file() else [f"dataset.{split}.csv_path=<your {split} CSV>"]
        args = [*kept, *extra]
        if not missing:
            args += _free_results_dir(task, task_spec, args, fresh)
        # Through the tao launcher, the way the user ran this task (it says so in the environment).
        prog = shlex.split(os.environ.get("TAO_LAUNCHER_COMMAND", "optical_inspection"))
        shown = redact_argv(args, SECRET_KEYS)
        return shlex.join([*prog, task, "-e", task_spec, *shown]) + "".join(f" {m}" for m in missing)

    if action == "train" and result.get("checkpoint"):
        return command("evaluate", f"evaluate.checkpoint={result['checkpoint']}")
    if action == "evaluate":
        report = Path(cfg.evaluate.results_dir) / "metrics.json"
        model = cfg.evaluate.checkpoint
        export = command("export", f"export.checkpoint={model}") if model and cfg.evaluate.backend == "pytorch" else ""
        return f"metrics in {report} (plots beside it)" + (f"; to deploy: {export}" if export else "")
    if action == "calibrate" and result.get("checkpoint"):
        return command("evaluate", f"evaluate.checkpoint={result['checkpoint']}")
    if action == "export" and result.get("onnx_file"):
        onnx = result["onnx_file"]
        return command("inference", "inference.backend=onnxruntime", f"inference.onnx_file={onnx}", fresh="onnx")
    if action == "inference":
        decided = f"decisions in {result['inference_csv']}"
        model = cfg.inference.checkpoint
        if model and cfg.inference.backend == "pytorch":
            return f"{decided}; to deploy: " + command("export", f"export.checkpoint={model}")
        return decided
    if action == "dataset_convert":
        out = Path(cfg.dataset_convert.data_convert_output_dir)
        splits = [f"dataset.{split}.{key}={value}" for split, name in CONVERTED_CSVS.items() if (out / name).is_file()
                  for key, value in (("csv_path", out / name), ("images_dir", out / "images"))]  # fmt: skip
        return command("validate", *splits) if splits else None
    if action == "validate":
        return command("train")
    return None


def _free_results_dir(task: str, spec: str, args: list, fresh: str) -> list[str]:
    """``[<task>.results_dir=<a free folder>]`` when the folder the task would write to already holds files (the
    task would refuse to replace them), named ``<folder>_<fresh>`` or ``<folder>_<n>``; else ``[]``."""
    from pathlib import Path

    from tao_siamese_oi.config import load_config

    try:
        folder = Path(getattr(load_config(spec, args), task).results_dir)
    except Exception:  # noqa: BLE001 - a hint only: the command itself will say what is wrong
        return []
    if not folder.is_dir() or not any(folder.iterdir()):
        return []
    names = ([f"{folder}_{fresh}"] if fresh else []) + [f"{folder}_{n}" for n in range(2, 1000)]
    free = next(name for name in names if not Path(name).exists())
    return [f"{task}.results_dir={free}"]


def _action_command(action: str):
    help_text = ACTIONS[action].help + f"\n\n\b\nExample:\n  {ACTIONS[action].example}"

    @click.command(action, help=help_text, context_settings={"ignore_unknown_options": True})
    @click.option(
        *SPEC_OPTIONS,
        "spec",
        required=True,
        type=click.Path(dir_okay=False),
        help="YAML experiment spec.",
    )
    @click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
    @click.version_option(__version__)
    @click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
    def command(spec, debug, overrides):
        with redacted_console():
            result = run_task(action, spec, overrides, debug)
            if result is not None:  # None: a DDP process other than the main one, which reports
                click.echo(json.dumps(result, default=str))

    return command


@click.group(
    help="SiameseOI optical inspection: train, evaluate, infer and export PCB-component models.\n\n"
    "\b\nExample:\n  optical_inspection train -e specs/train.yaml train.num_epochs=20"
)
@click.version_option(__version__)
def cli():
    pass


for _action in ACTIONS:
    cli.add_command(_action_command(_action))


@cli.command(
    "get-job-schema",
    help="Print an action's default spec and its JSON Schema (types, allowed values, help) as JSON.\n\n"
    "\b\nExample:\n"
    "  optical_inspection get-job-schema --action train",
)
@click.option("--action", required=True, type=click.Choice(list(ACTIONS)))
@click.version_option(__version__)
def get_job_schema(action):
    from tao_siamese_oi.config import action_schema, default_spec

    click.echo(
        json.dumps({"action": action, "default": default_spec(action), "schema": action_schema(action)}, indent=2)
    )


@cli.command(
    "make_sample_data",
    help="Write the synthetic sample dataset the shipped specs use.\n\n\b\n"
    "Example:\n  optical_inspection make_sample_data --out data/sample",
)
@click.option("--out", default="data/sample", show_default=True, type=click.Path(file_okay=False))
@click.option("--size", default=40, show_default=True, help="Image side in pixels.")
@click.version_option(__version__)
def make_sample_data(out, size):
    from tao_siamese_oi.data.sample import make_sample_dataset

    csvs = make_sample_dataset(out, size=size)
    click.echo(f"wrote sample dataset to {out}: " + ", ".join(f"{k}={v}" for k, v in csvs.items()))


def spec_option_split(argv: list[str]) -> list[str]:
    """``-e=spec.yaml`` as ``-e spec.yaml``, as TAO's argparse reads it (click would take ``=spec.yaml``)."""
    from tao_launcher.protocol import split_option_values

    return split_option_values(argv, SPEC_OPTIONS)


def main(argv=None):
    cli.main(args=spec_option_split(sys.argv[1:] if argv is None else list(argv)), prog_name="optical_inspection")


def run_action(argv: list[str]) -> int:
    """Plugin handler: run ``optical_inspection <argv>`` in this process and return its exit code."""
    try:
        cli.main(args=spec_option_split(list(argv)), prog_name="optical_inspection", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    main()
