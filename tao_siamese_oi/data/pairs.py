"""The TAO pair-CSV contract: columns, labels, light order and the image path rule.

A row is ``input_path, golden_path, object_name, label`` (extra columns are kept and passed through; an
inference CSV may leave out ``label``: production data is unlabelled). Every cell is read as text, as written:
``NA``, ``null`` or ``007`` are names, not missing values or numbers.
Each side's image for light L is ``images_dir/<input_path>/<object_name>_<L><image_ext>``, or
``<object_name><image_ext>`` when the spec has no input_map. An absolute input_path/golden_path is used as is.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tao_siamese_oi.errors import ConfigError, DataError

REQUIRED_COLUMNS = ("input_path", "golden_path", "object_name", "label")
PATH_COLUMNS = REQUIRED_COLUMNS[:3]
PASS_LABEL = "PASS"


@dataclass(frozen=True)
class PairTable:
    """A pair CSV as read: the frame (original order and columns) plus 0/1 labels (1 = defect; all 0 in an
    unlabelled CSV, ``labelled`` False)."""

    csv_path: Path
    frame: pd.DataFrame
    labels: np.ndarray
    labelled: bool = True

    def __len__(self) -> int:
        return len(self.frame)


def read_pairs(csv_path: str | os.PathLike, need_label: bool = True) -> PairTable:
    """Read and check a pair CSV. Labels: ``PASS`` (any case, surrounding spaces ignored) = good, else defect.
    ``need_label`` False: the label column may be absent (then every row counts as unlabelled)."""
    path = Path(csv_path)
    if path.is_dir():
        raise DataError(f"pair CSV {path} is a folder; point dataset.*.csv_path at the CSV file")
    if not path.is_file():
        raise DataError(f"pair CSV {path} not found; check the dataset.*.csv_path key of your spec")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"pair CSV {path} is empty; it needs a header: {', '.join(REQUIRED_COLUMNS)}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"pair CSV {path} cannot be parsed: {str(exc).splitlines()[0]}") from None
    required = REQUIRED_COLUMNS if need_label else PATH_COLUMNS
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"pair CSV {path} lacks column(s) {', '.join(missing)}; the header must name {', '.join(required)}"
        )
    if frame.empty:
        raise DataError(f"pair CSV {path} has a header but no rows")
    if "label" not in frame.columns:
        return PairTable(path, frame, np.zeros(len(frame), dtype=np.int64), labelled=False)
    labels = (frame["label"].str.strip().str.upper() != PASS_LABEL).to_numpy(dtype=np.int64)
    return PairTable(path, frame, labels)


def light_order(input_map, num_input: int) -> list[str | None]:
    """Light suffixes in tensor order: sorted by their input_map value. ``[None]`` = one image per side."""
    if not input_map:
        if num_input != 1:
            raise ConfigError(
                f"dataset.num_input is {num_input} but dataset.input_map is not set (TAO's dataclass defaults "
                f"contradict each other this way): for images named <object>_<light><ext>, set dataset.input_map "
                f"to {num_input} entries 'light: position' (example: {{LowAngleLight: 0, SolderLight: 1}}); for "
                "one image per side, set dataset.num_input: 1"
            )
        return [None]
    if len(input_map) != num_input:
        raise ConfigError(
            f"dataset.num_input is {num_input} but dataset.input_map names {len(input_map)} lights; make them agree"
        )
    positions = sorted(input_map.values())
    if positions != list(range(num_input)):
        raise ConfigError(f"dataset.input_map values {positions} must be the positions 0..{num_input - 1}, each once")
    return sorted(input_map, key=input_map.get)


def image_path(
    images_dir: str | os.PathLike, side_dir: str, object_name: str, light: str | None, image_ext: str
) -> str:
    """``<images_dir>/<side_dir>/<object_name>_<light><ext>``; an absolute side_dir replaces images_dir.

    A plain string: the loaders build one per light per pair, and pathlib costs more than the read.
    """
    stem = f"{object_name}_{light}" if light else str(object_name)
    return os.path.join(images_dir, side_dir, stem + image_ext)
