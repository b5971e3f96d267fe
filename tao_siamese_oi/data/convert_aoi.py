"""Factory AOI export -> pair CSVs (TAO's dataset_convert layout, its bugs fixed).

Input: folders of per-board AOI CSVs, one row per component per lighting, with the columns
``CompName, TB_Panel, directory, LightingCondition, ConfirmDefect, image_name`` and, when present,
``Project, TOP_BOT, BoardSN`` (otherwise parsed from a ``<project>_<TOP|BOT>_<serial>.csv`` file name).
Goldens: ``<golden_csv_dir>/<project><TOP|BOT>.csv`` with ``CompName, TOP_BOT, TB_Panel, directory``.

A component (project, board, side, CompName, TB_Panel) becomes one pair when it has exactly one row for every
light (the spec's ``dataset.input_map`` lights, or else every light seen in the data, any number) and a golden.
Its label is PASS when every light's ConfirmDefect is empty or PASS, else the distinct defect names joined with
``_``. object_name is image_name up to its first ``_``; any image extension works. Components dropped (missing
lights, no golden) are counted in the summary, never silently. Unlike TAO, ``bot_top: TOP``/``BOT`` filters
(TAO accepts only "all"), and a missing value in an unrelated column does not drop a row.
"""

import logging
import re
from pathlib import Path

import pandas as pd

from tao_siamese_oi.config.schema import DatasetConvertConfig
from tao_siamese_oi.errors import ConfigError, DataError
from tao_siamese_oi.utils.progress import progress

log = logging.getLogger("tao_siamese_oi")

BOARD_COLUMNS = ["CompName", "TB_Panel", "directory", "LightingCondition", "ConfirmDefect", "image_name"]
GOLDEN_COLUMNS = ["CompName", "TOP_BOT", "TB_Panel", "directory"]
KEY = ["Project", "BoardSN", "TOP_BOT", "CompName", "TB_Panel"]
FILE_NAME = re.compile(r"^(?P<project>.+?)_(?P<side>TOP|BOT)_(?P<serial>.+)\.csv$", re.IGNORECASE)
OUTPUTS = {
    "train_pcb_dataset_dir": "train_combined.csv",
    "val_pcb_dataset_dir": "valid_combined.csv",
    "all_pcb_dataset_dir": "all_combined.csv",
}


def read_board_csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in BOARD_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"AOI CSV {path} lacks column(s) {', '.join(missing)}")
    match = FILE_NAME.match(path.name)
    for column, group in (("Project", "project"), ("TOP_BOT", "side"), ("BoardSN", "serial")):
        if column not in frame.columns:
            frame[column] = ""
        blank = frame[column] == ""
        if blank.any():
            if not match:
                raise DataError(
                    f"AOI CSV {path} has no {column} values and its name is not <project>_<TOP|BOT>_<serial>.csv"
                )
            frame.loc[blank, column] = match[group]
    frame["TOP_BOT"] = frame["TOP_BOT"].str.upper()
    return frame


def read_goldens(golden_dir: Path, project: str, side: str, cache: dict) -> pd.DataFrame | None:
    key = (project, side)
    if key not in cache:
        path = golden_dir / f"{project}{side}.csv"
        if not path.is_file():
            cache[key] = None
        else:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
            missing = [c for c in GOLDEN_COLUMNS if c not in table.columns]
            if missing:
                raise DataError(f"golden CSV {path} lacks column(s) {', '.join(missing)}")
            table["TOP_BOT"] = table["TOP_BOT"].str.upper()
            cache[key] = table.drop_duplicates(["CompName", "TOP_BOT", "TB_Panel"])
    return cache[key]


def component_label(defects: pd.Series) -> str:
    names = [d.strip() for d in defects if d.strip() and d.strip().upper() != "PASS"]
    return "_".join(dict.fromkeys(names)) or "PASS"


def convert_folder(
    folder: Path, convert_cfg: DatasetConvertConfig, lights: list[str] | None, golden_dir: Path
) -> tuple[pd.DataFrame, dict]:
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise DataError(f"no per-board CSV files in {folder}")
    rows = pd.concat([read_board_csv(p) for p in files], ignore_index=True)
    if convert_cfg.project_name not in (None, "all"):
        rows = rows[rows["Project"] == convert_cfg.project_name]
    if convert_cfg.bot_top not in (None, "all"):
        rows = rows[rows["TOP_BOT"] == convert_cfg.bot_top]
    wanted = set(lights) if lights else set(rows["LightingCondition"])
    counts = {"components": 0, "missing_lights": 0, "no_golden": 0}
    pairs: list[dict] = []
    goldens: dict = {}
    components = rows.groupby(KEY, sort=False)
    for key, comp in progress(components, components.ngroups, f"pairing {folder.name}", "component"):
        counts["components"] += 1
        present = comp["LightingCondition"]
        if not wanted <= set(present) or present[present.isin(wanted)].duplicated().any():
            counts["missing_lights"] += 1
            continue
        project, board, side, name, panel = key
        table = read_goldens(golden_dir, project, side, goldens)
        match = None if table is None else table[(table["CompName"] == name) & (table["TB_Panel"] == panel)]
        if match is None or match.empty:
            counts["no_golden"] += 1
            continue
        pairs.append(
            {
                "input_path": comp["directory"].iloc[0],
                "golden_path": match["directory"].iloc[0],
                "object_name": comp["image_name"].iloc[0].split("_")[0],
                "label": component_label(comp["ConfirmDefect"]),
                "project": project,
                "board_sn": board,
                "side": side,
                "comp_name": name,
                "tb_panel": panel,
            }
        )
    return pd.DataFrame(
        pairs,
        columns=[
            "input_path",
            "golden_path",
            "object_name",
            "label",
            "project",
            "board_sn",
            "side",
            "comp_name",
            "tb_panel",
        ],
    ), counts


def convert_aoi(convert_cfg: DatasetConvertConfig, lights: list[str] | None, out_dir: Path) -> dict:
    if not convert_cfg.golden_csv_dir:
        raise ConfigError("dataset_convert.golden_csv_dir is not set; point it at the <project><side>.csv tables")
    root = Path(convert_cfg.root_dataset_dir or ".")
    summary = {}
    for key, name in OUTPUTS.items():
        if not getattr(convert_cfg, key):
            continue
        folder = root / getattr(convert_cfg, key)
        frame, counts = convert_folder(folder, convert_cfg, lights, root / convert_cfg.golden_csv_dir)
        frame.to_csv(out_dir / name, index=False)
        labels = {k: int(v) for k, v in frame["label"].value_counts().sort_index().items()}
        summary[name] = {"pairs": len(frame), "labels": labels, **counts}
        log.info(
            "%s: %d components -> %d pairs (%s); dropped %d with missing lights, %d without a golden",
            name,
            counts["components"],
            len(frame),
            ", ".join(f"{k} {v}" for k, v in labels.items()),
            counts["missing_lights"],
            counts["no_golden"],
        )
    if not summary:
        raise ConfigError(
            "set at least one of dataset_convert.train_pcb_dataset_dir, val_pcb_dataset_dir or all_pcb_dataset_dir"
        )
    return summary
