"""Validation reports every problem of a split at once, by CSV line, before any work starts."""

import pytest
from PIL import Image

from tao_siamese_oi.config import load_config
from tao_siamese_oi.data.validate import MAX_LISTED, validate_split
from tao_siamese_oi.errors import DataError

HEADER = "input_path,golden_path,object_name,label\n"


def make(tmp_path, rows: str, images=("in/C1", "gold/C1", "in/C2", "gold/C2"), extra=()):
    for stem in images:
        path = tmp_path / "images" / f"{stem}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (90, 90, 90)).save(path)
    csv = tmp_path / "pairs.csv"
    csv.write_text(HEADER + rows)
    cfg = load_config(
        None,
        [
            "dataset.num_input=1",
            "dataset.input_map=null",
            "dataset.image_ext=.png",
            f"dataset.train_dataset.csv_path={csv}",
            f"dataset.train_dataset.images_dir={tmp_path / 'images'}",
            *extra,
        ],
    )
    return cfg.dataset


def problems(dataset_cfg, training=False) -> list[str]:
    with pytest.raises(DataError) as info:
        validate_split(dataset_cfg, "train_dataset", training=training)
    return str(info.value).splitlines()


def test_a_clean_split_passes(tmp_path):
    table = validate_split(make(tmp_path, "in,gold,C1,PASS\nin,gold,C2,short\n"), "train_dataset", training=True)
    assert table.labels.tolist() == [0, 1]


def test_all_problems_are_reported_together_with_line_numbers(tmp_path):
    rows = "in,gold,C1,PASS\nin,gold,C9,short\nin,gold,,PASS\nin,gold,C2,\n"
    lines = problems(make(tmp_path, rows))
    assert lines[0].startswith(f"pair CSV {tmp_path}/pairs.csv: 2 problem(s)")
    assert lines[1:] == ["  row 4: empty object_name", "  row 5: empty label"]


def test_missing_images_are_reported_by_row_after_cells_are_clean(tmp_path):
    lines = problems(make(tmp_path, "in,gold,C1,PASS\nin,gold,C9,short\nin,gold,C9,PASS\n"))
    assert len(lines) == 3  # summary + input C9 + golden C9
    assert lines[1] == f"  row 3: image {tmp_path}/images/gold/C9.png not found (also rows 4)"
    assert lines[2] == f"  row 3: image {tmp_path}/images/in/C9.png not found (also rows 4)"


def test_corrupt_and_truncated_images_are_reported_by_row(tmp_path):
    cfg = make(tmp_path, "in,gold,C1,PASS\nin,gold,C2,short\n", extra=["dataset.image_ext=.jpg"])
    for stem, data in [("in/C1", b"junk"), ("gold/C1", None), ("in/C2", None), ("gold/C2", None)]:
        path = tmp_path / "images" / f"{stem}.jpg"
        if data is None:
            Image.new("RGB", (64, 64), (10, 200, 30)).save(path, quality=90)
        else:
            path.write_bytes(data)
    truncated = (tmp_path / "images" / "in" / "C2.jpg").read_bytes()
    (tmp_path / "images" / "in" / "C2.jpg").write_bytes(truncated[: len(truncated) // 2])
    lines = problems(cfg)
    assert any(line.startswith("  row 2: image") and "in/C1.jpg cannot be decoded" in line for line in lines)
    assert any(line.startswith("  row 3: image") and "in/C2.jpg cannot be decoded" in line for line in lines)


def test_existence_only_mode_skips_decoding(tmp_path):
    cfg = make(tmp_path, "in,gold,C1,PASS\nin,gold,C2,short\n", extra=["dataset.validate_images=false"])
    (tmp_path / "images" / "in" / "C1.png").write_bytes(b"junk")
    validate_split(cfg, "train_dataset")  # decoding errors would surface later, at load time


def test_tiny_images_are_not_sane(tmp_path):
    cfg = make(tmp_path, "in,gold,C1,PASS\n")
    Image.new("RGB", (3, 40)).save(tmp_path / "images" / "in" / "C1.png")
    assert "is 3x40 px, too small to be a component crop" in problems(cfg)[1]


@pytest.mark.parametrize(
    "column, value", [("input_path", "../outside"), ("golden_path", "/abs/gold"), ("object_name", "../../etc/C1")]
)
def test_paths_may_not_leave_images_dir_unless_allowed(tmp_path, column, value):
    row = {"input_path": "in", "golden_path": "gold", "object_name": "C1", "label": "PASS"} | {column: value}
    cfg = make(tmp_path, ",".join(row.values()) + "\n")
    assert f"row 2: {column} '{value}' leaves images_dir" in problems(cfg)[1]
    allowed = make(tmp_path, ",".join(row.values()) + "\n", extra=["dataset.allow_absolute_paths=true"])
    assert "leaves images_dir" not in "\n".join(problems(allowed))  # now only the missing files are reported


def test_training_needs_both_classes(tmp_path):
    lines = problems(make(tmp_path, "in,gold,C1,PASS\nin,gold,C2,pass\n"), training=True)
    assert "no FAIL rows: training needs defects" in lines[1]
    lines = problems(make(tmp_path, "in,gold,C1,short\nin,gold,C2,open\n"), training=True)
    assert "no PASS rows" in lines[1]
    validate_split(make(tmp_path, "in,gold,C1,PASS\n"), "train_dataset")  # evaluation sets may be one class


def test_long_reports_are_capped(tmp_path):
    rows = "".join(f"in,gold,X{i},PASS\n" for i in range(40))
    lines = problems(make(tmp_path, rows))
    assert len(lines) == 1 + MAX_LISTED + 1
    assert lines[-1] == f"  ... and {80 - MAX_LISTED} more"


def test_long_loops_show_a_progress_bar_on_a_terminal_only(capsys, monkeypatch):
    from tao_siamese_oi.utils import progress as progress_module
    from tao_siamese_oi.utils.progress import MIN_ITEMS, progress

    monkeypatch.setattr(progress_module, "bars_wanted", lambda: True)  # as on a terminal
    short = list(range(MIN_ITEMS - 1))
    assert progress(short, len(short), "short work") is short
    assert sum(progress(iter(range(MIN_ITEMS)), MIN_ITEMS, "long work", "image")) == sum(range(MIN_ITEMS))
    err = capsys.readouterr().err
    assert f"long work:   0%|          | 0/{MIN_ITEMS}" in err and "short work" not in err

    monkeypatch.setattr(progress_module, "bars_wanted", lambda: False)  # a log file: no bar stuck at 0 %
    long = list(range(MIN_ITEMS))
    assert list(progress(long, len(long), "long work")) == long
    assert capsys.readouterr().err == ""


def test_in_a_log_long_work_says_how_far_it_is_now_and_then(monkeypatch, caplog):
    """The report: 1 M rows of missing images printed nothing for minutes. In a log (no terminal), a line every
    LOG_EVERY_S seconds while the work lasts."""
    import logging

    from tao_siamese_oi.utils import progress as progress_module

    monkeypatch.setattr(progress_module, "bars_wanted", lambda: False)
    clock = iter(float(t) for t in range(10_000))  # one second per item
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="tao_siamese_oi"):
        assert sum(progress_module.progress(range(300), 300, "checking images of big.csv", "image")) == sum(range(300))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 9  # every 30 s of 300
    assert lines[0] == "checking images of big.csv: 30 of 300 images (10 %), about 270 s left"


def test_bars_are_wanted_only_when_stderr_is_a_terminal(monkeypatch):
    import io

    from tao_siamese_oi.utils.progress import bars_wanted

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not bars_wanted()


def test_an_upload_too_large_for_a_component_is_refused_from_its_header():
    """The report: one 130 KB 8192 x 8192 16-bit PNG cost the microservice 10 s and 1.3 GB. Its header says its
    size: refused before a pixel is decoded."""
    import time
    import tracemalloc

    from tao_siamese_oi.data.transforms import Layout
    from tao_siamese_oi.deploy.microservice import MAX_UPLOAD_PIXELS, _decode
    from tests.integration.hardening_helpers import png_claiming

    data = png_claiming(8192, 8192)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"input\[0\] is 8192x8192 px, far too large for a component crop"):
        _decode(data, Layout(("a",), 24, 24, 1, 1), 0)
    elapsed, (_, peak) = time.perf_counter() - started, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 50 * 2**20 and MAX_UPLOAD_PIXELS < 8192 * 8192


def test_a_split_of_missing_images_stops_early_with_one_report(tmp_path, monkeypatch):
    """The report: 1 M rows of missing images printed nothing for minutes. After STOP_AFTER problems the check
    stops: the images_dir or image_ext is wrong, and more rows would say nothing new."""
    import time

    from tao_siamese_oi.data import validate

    monkeypatch.setattr(validate, "STOP_AFTER", 100)
    rows = "".join(f"in,gold,X{i},PASS\n" for i in range(20_000))  # 40,000 missing images
    started = time.perf_counter()
    lines = problems(make(tmp_path, rows))
    assert time.perf_counter() - started < 10
    assert lines[0].startswith(f"pair CSV {tmp_path}/pairs.csv: 101 problem(s)")
    assert lines[1] == "  stopped after 100 missing or broken images; fix these first"
    assert lines[-1] == f"  ... and {101 - MAX_LISTED} more"
