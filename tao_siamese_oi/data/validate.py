"""Check a split before any work starts, and report every problem at once with its CSV line number.

Run at the start of every task (and on its own by ``optical_inspection validate``), so a bad row fails in seconds
instead of mid-epoch. Row numbers are line numbers of the CSV file (the header is line 1).
"""

import io
import json
import logging
import os
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePath

from PIL import Image, UnidentifiedImageError
from tao_launcher.service.walls import ROOTS_ENV

from tao_siamese_oi.config.schema import DatasetConfig
from tao_siamese_oi.data.goldens import GoldenIndex
from tao_siamese_oi.data.pairs import PATH_COLUMNS, PairTable, image_path, read_pairs
from tao_siamese_oi.data.transforms import MAX_PIXELS, image_mode_problem, layout_from_config, read_image_file
from tao_siamese_oi.errors import DataError
from tao_siamese_oi.utils.progress import progress

log = logging.getLogger("tao_siamese_oi")

MAX_LISTED = 20
STOP_AFTER = 1000  # problems with images: more says nothing new (images_dir or image_ext is wrong)
MIN_SIDE = 4  # px; anything smaller is a broken crop, not a component


def line(index: int) -> int:
    return index + 2


_checked: dict[tuple, PairTable] = {}


def validate_split(dataset_cfg: DatasetConfig, key: str, *, training: bool = False, seed: int = 0) -> PairTable:
    """Read ``dataset.<key>`` and check it; raise one DataError listing every problem found.

    A split that passed is remembered for the life of the process (keyed by the dataset config and the CSV's
    size and time), so a task's preflight check and its run decode the images once.
    """
    paths = getattr(dataset_cfg, key)
    memo = _memo_key(dataset_cfg, key, training, seed)
    if memo in _checked:
        return _checked[memo]
    need_label = key != "infer_dataset"  # production data is unlabelled
    table = read_pairs(paths.csv_path, need_label=need_label)
    problems: list[tuple[int, str]] = []
    problems += _cell_problems(table, dataset_cfg.allow_absolute_paths, need_label)
    if not problems:  # image checks need well-formed rows
        problems += _image_problems(table, paths.images_dir, dataset_cfg, seed)
        _warn_duplicates(table)
    if training:
        problems += _class_problems(table)
    if problems:
        raise DataError(_report(table.csv_path, problems))
    if memo is not None:
        _checked[memo] = table
    return table


def _memo_key(dataset_cfg: DatasetConfig, key: str, training: bool, seed: int) -> tuple | None:
    try:
        stat = os.stat(getattr(dataset_cfg, key).csv_path)
    except (OSError, TypeError):
        return None
    return key, training, seed, repr(dataset_cfg), stat.st_size, stat.st_mtime_ns  # dataclass repr: every field


def _cell_problems(table: PairTable, allow_outside: bool, need_label: bool) -> list[tuple[int, str]]:
    problems = []
    frame = table.frame
    for column in PATH_COLUMNS + (("label",) if need_label else ()):
        for i in frame.index[frame[column].str.strip() == ""]:
            problems.append((line(i), f"empty {column}"))
    if allow_outside:
        return problems
    for column in PATH_COLUMNS:
        for i, value in frame[column].items():
            parts = PurePath(str(value)).parts
            if PurePath(str(value)).is_absolute() or ".." in parts or (column == "object_name" and len(parts) > 1):
                problems.append(
                    (
                        line(i),
                        f"{column} '{value}' leaves images_dir; use paths relative to it, or set "
                        "dataset.allow_absolute_paths=true",
                    )
                )
    return problems


def _class_problems(table: PairTable) -> list[tuple[int, str]]:
    num_fail = int(table.labels.sum())
    if num_fail == 0:
        return [
            (
                0,
                "no FAIL rows: training needs defects for the contrastive loss and the sampler "
                "(label them with the defect name, anything other than PASS)",
            )
        ]
    if num_fail == len(table):
        return [(0, "no PASS rows: training needs good pairs too (label PASS)")]
    return []


def _image_problems(table: PairTable, images_dir, dataset_cfg: DatasetConfig, seed: int) -> list[tuple[int, str]]:
    layout = layout_from_config(dataset_cfg)
    goldens = GoldenIndex(images_dir, layout.lights, dataset_cfg.image_ext, dataset_cfg.num_golden, seed)
    rows_of: dict[str, list[int]] = defaultdict(list)
    problems = []
    frame = table.frame
    listed = zip(frame["input_path"], frame["golden_path"], frame["object_name"])
    for i, (input_dir, golden_dir, name) in enumerate(
        progress(listed, len(frame), f"listing images of {table.csv_path.name}", "row")
    ):
        try:
            stems = goldens.for_row(i, golden_dir, name)
        except DataError as exc:
            problems.append((line(i), str(exc)))
            stems = []
        sides = [(input_dir, name)] + [(golden_dir, stem) for stem in stems]
        for side_dir, stem in sides:
            for light in layout.lights:
                rows_of[image_path(images_dir, side_dir, stem, light, dataset_cfg.image_ext)].append(line(i))
    check = _decode_problem if dataset_cfg.validate_images else _exists_problem
    if not dataset_cfg.allow_absolute_paths:
        check = _inside([os.path.realpath(images_dir)], check, IMAGES_DIR_ONLY)
    elif job_roots():  # a job of the job service: absolute paths, but never outside its walls
        check = _inside(job_roots(), check, JOB_WALLS)
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        checked = progress(pool.map(check, rows_of), len(rows_of), f"checking images of {table.csv_path.name}", "image")
        for path, problem in zip(rows_of, checked):
            if problem:
                rows = rows_of[path]
                problems += [
                    (rows[0], f"image {path} {problem}" + (f" (also rows {_span(rows[1:])})" if len(rows) > 1 else ""))
                ]
            if len(problems) >= STOP_AFTER:  # a wrong images_dir: say so now, not after a million checks
                pool.shutdown(cancel_futures=True)
                problems.append((0, f"stopped after {STOP_AFTER} missing or broken images; fix these first"))
                break
    return problems


IMAGES_DIR_ONLY = "outside images_dir (through a symlink); copy the file in, or set dataset.allow_absolute_paths=true"
JOB_WALLS = "outside this job's folders and its org's data; a job reads only its own org's images"


def job_roots() -> list[str]:
    """The folders a job of the job service may read (``TAO_JOB_ROOTS``, set by the service), resolved; [] outside
    a job."""
    return [os.path.realpath(r) for r in json.loads(os.environ.get(ROOTS_ENV) or "[]")]


def _inside(roots: list[str], check, where: str):
    """``check`` after making sure that the file, symlinks resolved, is inside one of ``roots`` (the resolved
    images_dir, or a job's walls): a path or a link in the image tree must not read files from elsewhere."""

    def checked(path: str) -> str | None:
        real = os.path.realpath(path)
        if not any(os.path.commonpath([root, real]) == root for root in roots):
            return f"resolves to {real}, {where}"
        return check(path)

    return checked


def _warn_duplicates(table: PairTable) -> None:
    columns = [c for c in table.frame.columns if c in (*PATH_COLUMNS, "label")]
    repeated = table.frame.duplicated(subset=columns, keep="first")
    if repeated.any():
        rows = [line(i) for i in table.frame.index[repeated]]
        log.warning(
            "%s: %d row(s) repeat an earlier row (rows %s); they count twice in training and metrics. Remove them "
            "unless that is intended.",
            table.csv_path,
            len(rows),
            _span(rows),
        )


def _exists_problem(path: str) -> str | None:
    if os.path.isfile(path):
        return None
    return "is not a regular file (a pipe, a device, a socket or a folder)" if os.path.exists(path) else "not found"


def _decode_problem(path: str) -> str | None:
    problem = _exists_problem(path)  # never opened otherwise: a named pipe would block the run forever
    if problem:
        return problem
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(read_image_file(path))) as img:
                if img.width * img.height > MAX_PIXELS:
                    return f"is {img.width}x{img.height} px, far too large for a component crop"
                img.load()  # a full decode: truncated JPEGs fail here, not at open
                width, height = img.size
                mode = image_mode_problem(img.mode)
    except DataError as exc:  # read_image_file's line names the file; the report names it already
        return str(exc).split(f"{path} ", 1)[-1]
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return "is far too large for a component crop (a decompression bomb?)"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"cannot be decoded ({exc})"
    if mode:
        return mode
    if min(width, height) < MIN_SIDE:
        return f"is {width}x{height} px, too small to be a component crop"
    return None


def _span(rows: list[int], most: int = 5) -> str:
    shown = ", ".join(map(str, rows[:most]))
    return shown + (f" and {len(rows) - most} more" if len(rows) > most else "")


def _report(csv_path, problems: list[tuple[int, str]]) -> str:
    problems = sorted(problems)
    lines = [
        f"pair CSV {csv_path}: {len(problems)} problem(s); fix them and rerun "
        "(optical_inspection validate -e SPEC checks without running a task)"
    ]
    for row, text in problems[:MAX_LISTED]:
        lines.append(f"  row {row}: {text}" if row else f"  {text}")
    if len(problems) > MAX_LISTED:
        lines.append(f"  ... and {len(problems) - MAX_LISTED} more")
    return "\n".join(lines)
