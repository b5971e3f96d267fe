"""dataset_convert sources: factory AOI CSVs, DeepPCB crops, the synthetic generator."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.deeppcb import deeppcb_root, missing_reason
from tao_siamese_oi.config import load_config
from tao_siamese_oi.data.convert_aoi import convert_aoi
from tao_siamese_oi.data.convert_deeppcb import DEFECT_TYPES, MARGIN, convert_deeppcb, read_list
from tao_siamese_oi.data.sample import make_sample_dataset
from tao_siamese_oi.data.validate import validate_split
from tao_siamese_oi.errors import ConfigError, DataError

DEEPPCB = deeppcb_root()
LIGHTS = ["LowAngleLight", "SolderLight", "UniformLight", "WhiteLight"]


def aoi_rows(comp, panel, lights=LIGHTS, defects=None, directory="boardA/top"):
    defects = defects or {}
    return [
        {
            "CompName": comp,
            "TB_Panel": panel,
            "directory": directory,
            "LightingCondition": light,
            "MachineDefect": "",
            "ConfirmDefect": defects.get(light, ""),
            "Status": "",
            "image_name": f"{comp}@{panel}_{light}.jpg",
        }
        for light in lights
    ]


@pytest.fixture
def aoi(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    top = aoi_rows("C1", "1") + aoi_rows("C2", "1", defects={"SolderLight": "bridge", "WhiteLight": "missing"})
    top += aoi_rows("C3", "1", lights=LIGHTS[:3]) + aoi_rows("C9", "1")  # C3: a light short; C9: no golden
    top += aoi_rows("C4", "2", defects={"UniformLight": "PASS", "LowAngleLight": "bridge", "WhiteLight": "bridge"})
    frame = pd.DataFrame(top)
    frame.insert(0, "Project", "P1")
    frame.insert(1, "BoardSN", "SN1")
    frame.insert(2, "TOP_BOT", "TOP")
    frame.to_csv(train / "P1_TOP_SN1.csv", index=False)
    pd.DataFrame(aoi_rows("R7", "1", directory="boardA/bot")).to_csv(train / "P1_BOT_SN1.csv", index=False)
    goldens = tmp_path / "golden"
    goldens.mkdir()
    pd.DataFrame(
        [
            {"CompName": c, "TOP_BOT": "TOP", "TB_Panel": p, "directory": f"golden/{c}"}
            for c, p in [("C1", "1"), ("C2", "1"), ("C3", "1"), ("C4", "2")]
        ]
    ).to_csv(goldens / "P1TOP.csv")
    pd.DataFrame([{"CompName": "R7", "TOP_BOT": "BOT", "TB_Panel": "1", "directory": "golden/R7"}]).to_csv(
        goldens / "P1BOT.csv"
    )
    return tmp_path


def aoi_config(root, *overrides):
    return load_config(
        None,
        [
            f"dataset_convert.root_dataset_dir={root}",
            "dataset_convert.golden_csv_dir=golden",
            "dataset_convert.train_pcb_dataset_dir=train",
            *overrides,
        ],
    )


def test_aoi_components_become_pairs_with_joined_defect_labels(aoi):
    out = aoi / "out"
    out.mkdir()
    summary = convert_aoi(aoi_config(aoi).dataset_convert, LIGHTS, out)
    pairs = pd.read_csv(out / "train_combined.csv", dtype=str)
    assert summary["train_combined.csv"] | {"labels": None} == {
        "pairs": 4,
        "labels": None,
        "components": 6,
        "missing_lights": 1,
        "no_golden": 1,
    }
    by_comp = pairs.set_index("comp_name")
    assert by_comp.loc["C1", "label"] == "PASS"
    assert by_comp.loc["C2", "label"] == "bridge_missing"  # distinct defects, in the order of the rows
    assert by_comp.loc["C4", "label"] == "bridge"
    assert by_comp.loc["C2", "object_name"] == "C2@1"
    assert by_comp.loc["C2", "golden_path"] == "golden/C2"
    assert by_comp.loc["R7", "side"] == "BOT" and by_comp.loc["R7", "project"] == "P1"  # parsed from the file name


def test_aoi_top_bot_filter_works(aoi):
    out = aoi / "out"
    out.mkdir()
    convert_aoi(aoi_config(aoi, "dataset_convert.bot_top=BOT").dataset_convert, LIGHTS, out)
    assert pd.read_csv(out / "train_combined.csv")["comp_name"].tolist() == ["R7"]
    with pytest.raises(ConfigError, match="dataset_convert.bot_top: 'TOPS' is not one of TOP, BOT, all"):
        aoi_config(aoi, "dataset_convert.bot_top=TOPS")


def test_aoi_any_number_of_lights(aoi):
    out = aoi / "out"
    out.mkdir()
    convert_aoi(aoi_config(aoi).dataset_convert, ["LowAngleLight", "SolderLight"], out)
    pairs = pd.read_csv(out / "train_combined.csv")
    assert set(pairs["comp_name"]) == {"C1", "C2", "C3", "C4", "R7"}  # C3 has both of these two lights


def test_aoi_errors_name_the_file(aoi):
    pd.DataFrame([{"CompName": "X"}]).to_csv(aoi / "train" / "bad.csv", index=False)
    out = aoi / "out"
    out.mkdir()
    with pytest.raises(DataError, match=r"bad\.csv lacks column\(s\) TB_Panel"):
        convert_aoi(aoi_config(aoi).dataset_convert, LIGHTS, out)


@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_deeppcb_crops_defects_and_clean_board(tmp_path):
    cfg = load_config(
        None,
        [
            f"dataset_convert.root_dataset_dir={DEEPPCB}",
            "dataset_convert.max_images=6",
            "dataset_convert.pass_crops_per_image=5",
            "dataset_convert.crop_size=48",
        ],
    )
    summary = convert_deeppcb(cfg.dataset_convert, tmp_path)
    splits = {s: pd.read_csv(tmp_path / f"{s}.csv", dtype={"object_name": str}) for s in ("train", "val", "test")}
    assert {s: summary[s]["pairs"] for s in splits} == {s: len(f) for s, f in splits.items()}
    boards = {s: set(f["board"]) for s, f in splits.items()}
    assert not boards["train"] & boards["val"] and not boards["train"] & boards["test"]
    train = splits["train"]
    fails = train[train["label"] != "PASS"]
    assert set(fails["label"]) <= set(DEFECT_TYPES.values()) and (fails["label"] == fails["defect_type"]).all()
    listed = {f"{b.group}/{b.image_id}": b for b in read_list(DEEPPCB, "trainval.txt")}
    for row in train[train["label"] == "PASS"].itertuples():
        for x1, y1, x2, y2, _ in listed[row.board].boxes:  # a PASS crop touches no defect
            assert (
                row.x + row.crop_size <= x1 - MARGIN
                or row.x >= x2 + MARGIN
                or row.y + row.crop_size <= y1 - MARGIN
                or row.y >= y2 + MARGIN
            )
    for row in fails.itertuples():  # the box columns are the annotated box, in the crop's pixels, inside it
        box = (row.x + row.box_x1, row.y + row.box_y1, row.x + row.box_x2, row.y + row.box_y2)
        assert any(b[:4] == box and DEFECT_TYPES[b[4]] == row.label for b in listed[row.board].boxes)
        assert 0 <= row.box_x1 < row.box_x2 <= row.crop_size and 0 <= row.box_y1 < row.box_y2 <= row.crop_size
        assert row.crop_size >= 48
    assert train[train["label"] == "PASS"]["box_x1"].isna().all()  # no box for a clean crop
    spec = load_config(
        None,
        [
            "dataset.num_input=1",
            "dataset.input_map=null",
            "dataset.image_ext=.png",
            f"dataset.train_dataset.csv_path={tmp_path / 'train.csv'}",
            f"dataset.train_dataset.images_dir={tmp_path / 'images'}",
        ],
    )
    table = validate_split(spec.dataset, "train_dataset", training=True)
    assert len(table) == len(train)
    first = train.iloc[0]
    with Image.open(tmp_path / "images" / first.input_path / f"{first.object_name}.png") as img:
        assert img.size == (first.crop_size, first.crop_size)


@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_deeppcb_scale_draws_the_same_boards_smaller(tmp_path):
    """dataset_convert.scale: the same board split, crops cut from the resized boards, boxes resized with them."""
    frames = {}
    for scale in (1.0, 0.5):
        out = tmp_path / str(scale)
        out.mkdir()
        options = ["max_images=4", "pass_crops_per_image=2", f"scale={scale}", f"root_dataset_dir={DEEPPCB}"]
        cfg = load_config(None, [f"dataset_convert.{option}" for option in options])
        convert_deeppcb(cfg.dataset_convert, out)
        frames[scale] = {s: pd.read_csv(out / f"{s}.csv", dtype={"object_name": str}) for s in ("train", "val")}
    for split in ("train", "val"):
        assert set(frames[0.5][split]["board"]) == set(frames[1.0][split]["board"])  # the split does not move
    listed = {f"{b.group}/{b.image_id}": b for b in read_list(DEEPPCB, "trainval.txt")}
    small = frames[0.5]["train"]
    fails = small[small["label"] != "PASS"]
    assert len(fails) == len(frames[1.0]["train"].query("label != 'PASS'"))  # a crop for every defect still
    for row in fails.itertuples():  # the annotated box at half size, inside the crop
        box = (row.x + row.box_x1, row.y + row.box_y1, row.x + row.box_x2, row.y + row.box_y2)
        halved = [tuple(round(v * 0.5) for v in b[:4]) for b in listed[row.board].boxes]
        assert box in halved
    board = listed[small.iloc[0].board]
    with Image.open(board.tested) as full:
        resized = full.convert("L").resize((full.width // 2, full.height // 2), Image.Resampling.BILINEAR)
    first = small.iloc[0]
    with Image.open(tmp_path / "0.5" / "images" / first.input_path / f"{first.object_name}.png") as crop:
        expected = resized.crop((first.x, first.y, first.x + first.crop_size, first.y + first.crop_size))
        assert (np.asarray(crop) == np.asarray(expected)).all()  # cut from the resized board, not resized crops
    assert (small["x"] + small["crop_size"]).max() <= 320  # DeepPCB boards are 640 px: now 320
    options = ["max_images=1", "scale=0.25", "crop_size=200", f"root_dataset_dir={DEEPPCB}"]
    cfg = load_config(None, [f"dataset_convert.{option}" for option in options])
    with pytest.raises(
        DataError, match=r"160x160 px \(dataset_convert.scale=0.25\), smaller than dataset_convert.crop_size=200"
    ):
        convert_deeppcb(cfg.dataset_convert, tmp_path / "tiny")


def test_synthetic_generator_any_lights_and_extension(tmp_path):
    csvs = make_sample_dataset(tmp_path, size=12, lights=["A", "B", "C"], image_ext=".png", splits={"train": (6, 3)})
    frame = pd.read_csv(csvs["train"])
    assert sorted(frame["label"].unique()) == ["PASS", "bridge", "missing", "shifted"]
    cfg = load_config(
        None,
        [
            "dataset.num_input=3",
            "dataset.input_map={A: 0, B: 1, C: 2}",
            "dataset.image_ext=.png",
            "dataset.concat_type=grid",
            "dataset.grid_map.x=3",
            "dataset.grid_map.y=1",
            f"dataset.train_dataset.csv_path={csvs['train']}",
            f"dataset.train_dataset.images_dir={tmp_path / 'images'}",
        ],
    )
    assert len(validate_split(cfg.dataset, "train_dataset", training=True)) == 9


def test_the_deeppcb_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPPCB_ROOT", str(tmp_path))
    assert deeppcb_root() == tmp_path
    assert f"in {tmp_path}: set DEEPPCB_ROOT" in str(missing_reason())  # the skip reason names the variable
    (tmp_path / "PCBData").mkdir()
    assert missing_reason() is None
    monkeypatch.delenv("DEEPPCB_ROOT")
    assert deeppcb_root().parts[-3:] == ("shared", "data", "deeppcb-dev")  # default: beside the repository
