"""Hostile and broken files: no code runs, one line with the documented exit code, nothing changes on disk."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY_KEY, load_tiny_checkpoint
from tests.integration.hardening_helpers import (
    billion_laughs,
    error_report,
    one_error_line,
    png_claiming,
    run_oi,
    run_tao,
    snapshot,
    write_tiny_spec,
)
from tests.unit.test_safe_load import malicious_checkpoint

pytestmark = pytest.mark.slow  # real trainings and subprocesses: the slow lane

REFUSED = "holds a Python object of type posix.system that no model file needs; refused without running it"


# --- 1. A checkpoint never runs code, whatever path reads it ----------------------------------------------------


def _evil(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pth"
    malicious_checkpoint(evil, marker)
    return evil, marker


@pytest.mark.parametrize(
    "action, key",
    [
        ("evaluate", "evaluate.checkpoint"),
        ("inference", "inference.checkpoint"),
        ("export", "export.checkpoint"),
        ("train", "train.resume_training_checkpoint_path"),
        ("train", "train.pretrained_model_path"),
    ],
)
def test_a_malicious_checkpoint_runs_nothing_through_any_key(capsys, tmp_path, tiny_data, action, key):
    evil, marker = _evil(tmp_path)
    results = tmp_path / "results"
    spec = write_tiny_spec(tmp_path, tiny_data, results)
    code, err = run_oi(capsys, action, "-e", spec, f"{key}={evil}")
    assert code == 4
    assert one_error_line(err) == (
        f"error: checkpoint {evil} {REFUSED} (the file may be malicious). Use a checkpoint written by train or TAO"
    )
    assert not marker.exists()
    assert snapshot(results) == {}  # refused before the run started


def test_a_malicious_latest_checkpoint_in_the_results_folder_runs_nothing(capsys, tmp_path, tiny_data):
    """Whoever can write a results folder must not get code run by the next training there."""
    evil, marker = _evil(tmp_path)
    results = tmp_path / "results"
    (results / "train").mkdir(parents=True)
    shutil.copy(evil, results / "train" / "oi_model_latest.pth")
    before = snapshot(results)
    code, err = run_oi(capsys, "train", "-e", write_tiny_spec(tmp_path, tiny_data, results))
    assert code == 4 and REFUSED in one_error_line(err)
    assert not marker.exists()
    assert snapshot(results) == before


def test_a_malicious_checkpoint_runs_nothing_through_the_launcher(capsys, tmp_path, tiny_data):
    evil, marker = _evil(tmp_path)
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results")
    code, err = run_tao(
        capsys, "--local", "model", "optical_inspection", "evaluate", "-e", spec, f"evaluate.checkpoint={evil}"
    )
    assert code == 4 and REFUSED in one_error_line(err)
    assert not marker.exists()


# --- 4. Bad files: a table of them -------------------------------------------------------------------------------


def _copy_images(tiny_data, tmp_path) -> Path:
    images = tmp_path / "images"
    shutil.copytree(tiny_data / "images", images)
    return images


def _first_image(images: Path) -> Path:
    return sorted(images.rglob("*.jpg"))[0]


def _case_truncated_jpeg(tmp_path, tiny_data, model):
    images = _copy_images(tiny_data, tmp_path)
    victim = _first_image(images)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])
    return [
        "validate",
        "-e",
        "{spec}",
        f"dataset.train_dataset.images_dir={images}",
    ], f"image {victim} cannot be decoded"


def _case_named_pipe_as_an_image(tmp_path, tiny_data, model):
    """The report: a named pipe in the image tree blocked inference forever (opening it waits for a writer)."""
    images = _copy_images(tiny_data, tmp_path)
    victim = next(p for p in sorted(images.rglob("*.jpg")) if p.parent.name.startswith("test_"))
    victim.unlink()
    os.mkfifo(victim)
    argv = ["inference", "-e", "{spec}", f"inference.checkpoint={model['checkpoint']}"]
    return [*argv, f"dataset.infer_dataset.images_dir={images}"], (
        f"image {victim} is not a regular file (a pipe, a device, a socket or a folder)"
    )


def _case_decompression_bomb(tmp_path, tiny_data, model):
    images = _copy_images(tiny_data, tmp_path)
    victim = _first_image(images)
    victim.write_bytes(png_claiming(40_000, 40_000))
    return ["validate", "-e", "{spec}", f"dataset.train_dataset.images_dir={images}"], "far too large"


def _case_symlinked_folder(tmp_path, tiny_data, model):
    outside = tmp_path / "outside"
    shutil.copytree(tiny_data / "images", outside)
    images = tmp_path / "images"
    images.mkdir()
    for entry in outside.iterdir():  # every board folder is a link to a folder outside images_dir
        (images / entry.name).symlink_to(entry, target_is_directory=True)
    return ["validate", "-e", "{spec}", f"dataset.train_dataset.images_dir={images}"], "outside images_dir"


def _case_random_onnx(tmp_path, tiny_data, model):
    onnx_file = tmp_path / "random.onnx"
    onnx_file.write_bytes(os.urandom(4096))
    shutil.copy(model["sidecar"], onnx_file.with_suffix(".json"))
    return ["evaluate", "-e", "{spec}", "evaluate.backend=onnxruntime", f"evaluate.onnx_file={onnx_file}"], (
        f"error: {onnx_file} is not an ONNX file"
    )


def _case_foreign_onnx(tmp_path, tiny_data, model):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["z"])],
        "foreign",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3]) for n in ("x", "y")],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3])],
    )
    onnx_file = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), onnx_file)
    shutil.copy(model["sidecar"], onnx_file.with_suffix(".json"))
    return ["evaluate", "-e", "{spec}", "evaluate.backend=onnxruntime", f"evaluate.onnx_file={onnx_file}"], (
        "is not a tao_siamese_oi / TAO SiameseOI export (inputs ['x', 'y']"
    )


def _calibration_changed(tmp_path, model, **calibration) -> Path:
    from tao_siamese_oi.artifacts.checkpoint import save_checkpoint

    checkpoint = load_tiny_checkpoint(model["checkpoint"])
    checkpoint["calibration"] = {**checkpoint["calibration"], **calibration}
    path = tmp_path / "changed.pth"
    save_checkpoint(checkpoint, path, TINY_KEY)
    return path


def _case_nan_threshold(tmp_path, tiny_data, model):
    path = _calibration_changed(tmp_path, model, threshold=float("nan"))
    return ["evaluate", "-e", "{spec}", f"evaluate.checkpoint={path}"], (
        f"checkpoint {path}: its global threshold is nan, not a finite distance"
    )


def _case_self_referencing_calibration(tmp_path, tiny_data, model):
    """A few hundred bytes that expand to 2**60 values when written out (shared references in the pickle)."""
    nested: list = []
    for _ in range(60):
        nested = [nested, nested]
    path = _calibration_changed(tmp_path, model, notes=nested)
    return ["evaluate", "-e", "{spec}", f"evaluate.checkpoint={path}"], (
        f"checkpoint {path}: its calibration record is far too large or refers to itself; refused"
    )


def _inference_with_sidecar(tmp_path, model, sidecar_text: str) -> tuple[Path, list[str]]:
    """A copy of the tiny export with ``sidecar_text`` as its sidecar, and the inference command that scores it."""
    onnx_file = tmp_path / "model.onnx"
    shutil.copy(model["onnx"], onnx_file)
    onnx_file.with_suffix(".json").write_text(sidecar_text)
    return onnx_file, ["inference", "-e", "{spec}", "inference.backend=onnxruntime", f"inference.onnx_file={onnx_file}"]


def _case_nan_threshold_in_a_sidecar(tmp_path, tiny_data, model):
    sidecar = model["sidecar"].read_text().replace('"threshold": ', '"threshold": NaN, "was": ', 1)
    onnx_file, argv = _inference_with_sidecar(tmp_path, model, sidecar)
    return argv, (
        f"sidecar {onnx_file.with_suffix('.json')} is not a valid export sidecar (not a sidecar object with a "
        "finite threshold)"
    )


def _case_sidecar_for_other_lights(tmp_path, tiny_data, model):
    sidecar = json.loads(model["sidecar"].read_text())
    lights = sidecar["lights"]
    onnx_file, argv = _inference_with_sidecar(tmp_path, model, json.dumps({**sidecar, "lights": lights[::-1]}))
    return argv, (
        f"{onnx_file} was exported for lights {lights[::-1]} but the spec gives {lights}; set dataset.input_map as "
        "the export did"
    )


def _case_sidecar_for_another_mean(tmp_path, tiny_data, model):
    sidecar = json.loads(model["sidecar"].read_text())
    sidecar["preprocessing"]["mean"] = [0.5, 0.5, 0.5]
    _, argv = _inference_with_sidecar(tmp_path, model, json.dumps(sidecar))
    return argv, "set dataset.augmentation_config.rgb_input_mean as the export did"


def _case_onnx_with_external_data(tmp_path, tiny_data, model):
    """The report: refused by onnxruntime with a raw error and exit 1; a relative location read from the current
    folder."""
    import onnx

    from tao_siamese_oi.artifacts.exported import read_onnx

    onnx_file = tmp_path / "model.onnx"
    external = {"save_as_external_data": True, "location": "weights.bin", "size_threshold": 0}
    onnx.save_model(read_onnx(model["onnx"], TINY_KEY), onnx_file, **external)
    shutil.copy(model["sidecar"], onnx_file.with_suffix(".json"))
    return ["inference", "-e", "{spec}", "inference.backend=onnxruntime", f"inference.onnx_file={onnx_file}"], (
        f"{onnx_file} keeps"
    )


def _case_broken_sidecar(tmp_path, tiny_data, model):
    onnx_file = tmp_path / "model.onnx"
    shutil.copy(model["onnx"], onnx_file)
    onnx_file.with_suffix(".json").write_text('{"threshold": 0.5,')
    return ["inference", "-e", "{spec}", "inference.backend=onnxruntime", f"inference.onnx_file={onnx_file}"], (
        f"sidecar {onnx_file.with_suffix('.json')} is not a valid export sidecar"
    )


def _case_missing_sidecar(tmp_path, tiny_data, model):
    onnx_file = tmp_path / "model.onnx"
    shutil.copy(model["onnx"], onnx_file)
    strict = "inference.strict_threshold=true"  # without it, the margin decides with a warning (as for TAO's .pth)
    return ["inference", "-e", "{spec}", "inference.backend=onnxruntime", f"inference.onnx_file={onnx_file}", strict], (
        f"{onnx_file} carries no calibrated threshold (no sidecar model.json record"
    )


def _case_binary_spec(tmp_path, tiny_data, model):
    spec = tmp_path / "binary.yaml"
    spec.write_bytes(bytes(range(256)))
    return ["validate", "-e", spec], f"error: spec file {spec}: it is not UTF-8 text"


def _case_billion_laughs(tmp_path, tiny_data, model):
    spec = tmp_path / "laughs.yaml"
    spec.write_text(billion_laughs())
    return ["validate", "-e", spec], "expands to more than 100,000 values through aliases"


def _case_results_dir_is_a_file(tmp_path, tiny_data, model):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    return ["validate", "-e", "{spec}", f"validate.results_dir={taken}"], f"validate.results_dir {taken} is a file"


def _case_results_dir_under_a_file(tmp_path, tiny_data, model):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    return ["validate", "-e", "{spec}", f"results_dir={taken}"], "a parent of it is a file"


def _case_checkpoint_is_a_folder(tmp_path, tiny_data, model):
    folder = model["checkpoint"].parent
    return ["evaluate", "-e", "{spec}", f"evaluate.checkpoint={folder}"], f"evaluate.checkpoint {folder} is a folder"


def _case_output_column_clash(tmp_path, tiny_data, model):
    frame = pd.read_csv(tiny_data / "test.csv", dtype=str)
    frame["siamese_score"] = "0.3"
    csv = tmp_path / "scored_before.csv"
    frame.to_csv(csv, index=False)
    return [
        "inference",
        "-e",
        "{spec}",
        f"dataset.infer_dataset.csv_path={csv}",
        f"inference.checkpoint={model['checkpoint']}",
    ], ("already has column(s) siamese_score, which inference writes")


def _case_training_csv_without_labels(tmp_path, tiny_data, model):
    csv = tmp_path / "unlabelled.csv"
    pd.read_csv(tiny_data / "train.csv", dtype=str).drop(columns=["label"]).to_csv(csv, index=False)
    return ["train", "-e", "{spec}", f"dataset.train_dataset.csv_path={csv}"], "lacks column(s) label"


def _case_registration_not_trained(tmp_path, tiny_data, model):
    return [
        "evaluate",
        "-e",
        "{spec}",
        "dataset.alignment.enable=true",
        f"evaluate.checkpoint={model['checkpoint']}",
    ], (f"{model['checkpoint']} was trained without registration but the spec asks for")


def _case_registration_not_exported(tmp_path, tiny_data, model):
    onnx_file = model["onnx"]
    return [
        "inference",
        "-e",
        "{spec}",
        "dataset.alignment.enable=true",
        "inference.backend=onnxruntime",
        f"inference.onnx_file={onnx_file}",
    ], f"{onnx_file} was trained without registration"


BAD_FILES = {
    # name: (case, exit code); a case writes its hostile file and returns (argv, text of the error report)
    "truncated JPEG": (_case_truncated_jpeg, 3),
    "decompression bomb": (_case_decompression_bomb, 3),
    "named pipe as an image": (_case_named_pipe_as_an_image, 3),
    "symlinked folder inside images_dir": (_case_symlinked_folder, 3),
    "random bytes as ONNX": (_case_random_onnx, 4),
    "ONNX with external data": (_case_onnx_with_external_data, 4),
    "NaN threshold in a checkpoint": (_case_nan_threshold, 4),
    "self-referencing calibration record": (_case_self_referencing_calibration, 4),
    "NaN threshold in a sidecar": (_case_nan_threshold_in_a_sidecar, 4),
    "sidecar for other lights": (_case_sidecar_for_other_lights, 4),
    "sidecar for another mean": (_case_sidecar_for_another_mean, 4),
    "ONNX with other inputs": (_case_foreign_onnx, 4),
    "broken sidecar": (_case_broken_sidecar, 4),
    "ONNX without its sidecar": (_case_missing_sidecar, 4),
    "binary spec": (_case_binary_spec, 2),
    "billion laughs": (_case_billion_laughs, 2),
    "results_dir is a file": (_case_results_dir_is_a_file, 2),
    "results_dir below a file": (_case_results_dir_under_a_file, 2),
    "checkpoint is a folder": (_case_checkpoint_is_a_folder, 4),
    "output column in the input CSV": (_case_output_column_clash, 3),
    "training CSV without labels": (_case_training_csv_without_labels, 3),
    "registration the checkpoint was not trained with": (_case_registration_not_trained, 2),
    "registration the export was not made with": (_case_registration_not_exported, 2),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_get_one_line_the_documented_code_and_change_nothing(capsys, tmp_path, tiny_data, tiny_model, name):
    case, code = BAD_FILES[name]
    results = tmp_path / "results"
    spec = write_tiny_spec(tmp_path, tiny_data, results)
    argv, expected = case(tmp_path, tiny_data, tiny_model)
    before = snapshot(tmp_path)
    got, err = run_oi(capsys, *[str(a).replace("{spec}", str(spec)) for a in argv])
    report = error_report(err)
    assert got == code, report
    assert expected in report, report
    assert snapshot(tmp_path) == before  # a refused run changes nothing: no results folder, no status.json


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.gpu_ids=[0,", "error: override train.gpu_ids: the value is not valid YAML"),
        ("encryption_key=[hunter2, x]", "error: command-line overrides: encryption_key must be a string"),
        ("encryption_key={k: hunter2}", "error: command-line overrides: encryption_key must be a string"),
        ("train.num_epochs", "error: override 'train.num_epochs' is not key=value"),
        ("evaluate.threshold=.nan", "error: evaluate.threshold: nan is not a finite number"),
        (
            "train.checkpointer.filename=../../elsewhere/x",
            "error: train.checkpointer.filename '../../elsewhere/x' must",
        ),
        ("evaluate.target_fpr=.inf", "error: evaluate.target_fpr: inf is not a finite number"),
    ],
)
def test_bad_overrides_are_exit_2_naming_the_override_and_never_echo_a_secret(
    capsys, tmp_path, tiny_data, override, expected
):
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results")
    code, err = run_oi(capsys, "validate", "-e", spec, override)
    assert code == 2
    assert one_error_line(err).startswith(expected)
    assert "hunter2" not in err and not (tmp_path / "results").exists()


def test_a_secret_in_the_spec_file_is_not_echoed_either(capsys, tmp_path, tiny_data):
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results", encryption_key=["hunter2"])
    code, err = run_oi(capsys, "validate", "-e", spec)
    assert code == 2 and "encryption_key must be a string" in one_error_line(err) and "hunter2" not in err


def test_the_alias_bomb_is_refused_in_well_under_a_second(tmp_path):
    import time

    from tao_siamese_oi.errors import ConfigError

    spec = tmp_path / "laughs.yaml"
    spec.write_text(billion_laughs())
    start = time.perf_counter()
    with pytest.raises(ConfigError):
        from tao_siamese_oi.config import load_config

        load_config(spec)
    assert time.perf_counter() - start < 1.0


# --- Filesystems that cannot be written (need root for a private mount) ------------------------------------------


@pytest.fixture
def small_mount(tmp_path):
    """A mount point factory: tmpfs with the given options, unmounted afterwards."""
    mounted = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); CI runs as root and can")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_read_only_results_folder_is_exit_7_naming_it(capsys, tmp_path, tiny_data, small_mount):
    results = small_mount("ro,size=64k")
    code, err = run_oi(capsys, "validate", "-e", write_tiny_spec(tmp_path, tiny_data, results))
    assert code == 7
    assert (
        one_error_line(err)
        == f"error: cannot use {results / 'validate'}: the file system is read-only; choose a writable results_dir"
    )


def test_a_full_disk_is_exit_7_naming_the_file(capsys, tmp_path, tiny_data, small_mount):
    results = small_mount("size=96k")
    code, err = run_oi(capsys, "train", "-e", write_tiny_spec(tmp_path, tiny_data, results))
    assert code == 7
    line = one_error_line(err)
    assert line.startswith(f"error: cannot use {results / 'train'}/") and line.endswith(
        ": the disk is full; free space or choose another results_dir"
    )
    assert not [p for p in (results / "train").iterdir() if p.name.endswith(".tmp")]  # no half-written file kept


# --- 6. Data a factory really has -------------------------------------------------------------------------------


def test_inference_scores_an_unlabelled_csv(capsys, tmp_path, tiny_data, tiny_model):
    csv = tmp_path / "production.csv"
    production = pd.read_csv(tiny_data / "test.csv", dtype=str).drop(columns=["label"])
    production.to_csv(csv, index=False)
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results")
    code, err = run_oi(
        capsys,
        "inference",
        "-e",
        spec,
        f"dataset.infer_dataset.csv_path={csv}",
        f"inference.checkpoint={tiny_model['checkpoint']}",
    )
    assert code == 0, err
    scored = pd.read_csv(tmp_path / "results" / "inference" / "inference.csv", dtype=str)
    assert list(scored.columns) == [*production.columns, "siamese_score", "decision"]
    assert scored["object_name"].tolist() == production["object_name"].tolist()
    assert set(scored["decision"]) <= {"PASS", "FAIL"}


@pytest.mark.parametrize("model_file", ["onnx_file", "checkpoint"])
def test_a_model_without_its_threshold_decides_at_the_margin_with_a_warning(
    capsys, tmp_path, tiny_data, tiny_model, model_file
):
    """TAO's models carry no calibrated threshold: an ONNX file without its sidecar is treated as a TAO .pth is
    (the margin decides, said once); strict_threshold refuses both (test_bad_files covers the ONNX case)."""
    from tao_siamese_oi.artifacts.checkpoint import save_checkpoint

    if model_file == "onnx_file":
        path, backend = tmp_path / "tao.onnx", "onnxruntime"
        shutil.copy(tiny_model["onnx"], path)
    else:
        path, backend = tmp_path / "tao.pth", "pytorch"
        checkpoint = load_tiny_checkpoint(tiny_model["checkpoint"])
        checkpoint.pop("calibration")
        save_checkpoint(checkpoint, path, TINY_KEY)
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results")
    argv = ["inference", "-e", spec, f"inference.backend={backend}", f"inference.{model_file}={path}"]
    code, err = run_oi(capsys, *argv)
    assert code == 0, err
    assert "deciding at model.margin = 2.0" in err
    scored = pd.read_csv(tmp_path / "results" / "inference" / "inference.csv")
    assert (scored["decision"] == np.where(scored["siamese_score"] > 2.0, "FAIL", "PASS")).all()
    code, err = run_oi(capsys, *argv, "inference.strict_threshold=true", "inference.results_dir=" + str(tmp_path / "s"))
    assert code == 4 and "carries no calibrated threshold" in one_error_line(err)
    assert not (tmp_path / "s").exists()


def test_csv_cells_are_text_so_na_is_a_component_name(tmp_path):
    from tao_siamese_oi.data.pairs import read_pairs

    csv = tmp_path / "pairs.csv"
    csv.write_text("input_path,golden_path,object_name,label,lot\nb1,golden,NA,PASS,007\nb1,golden,null,short,N/A\n")
    table = read_pairs(csv)
    assert table.frame["object_name"].tolist() == ["NA", "null"]
    assert table.frame["lot"].tolist() == ["007", "N/A"]  # passed through exactly as written
    assert table.labels.tolist() == [0, 1]


def test_duplicated_rows_are_warned_about(capsys, tmp_path, tiny_data):
    frame = pd.read_csv(tiny_data / "train.csv", dtype=str)
    csv = tmp_path / "doubled.csv"
    pd.concat([frame, frame.iloc[:2]]).to_csv(csv, index=False)
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results")
    code, err = run_oi(capsys, "validate", "-e", spec, f"dataset.train_dataset.csv_path={csv}")
    assert code == 0
    first = len(frame) + 2  # CSV line of the first repeat (header is line 1)
    assert f"doubled.csv: 2 row(s) repeat an earlier row (rows {first}, {first + 1})" in err


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    from PIL import Image

    from tao_siamese_oi.data.transforms import decode_resized

    wide = (np.arange(16 * 16, dtype=np.uint32).reshape(16, 16) * 255).astype(np.uint16)  # 0 .. 65025
    Image.fromarray(wide).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    rgb = decode_resized(tmp_path / "deep.png", 16, 16)
    assert rgb.dtype == np.uint8 and rgb.shape == (16, 16, 3)
    assert np.abs(rgb[..., 0].astype(int) - np.round(wide / 257)).max() <= 1
    assert rgb.mean() < 200  # Pillow's own conversion clips this to pure white


def test_floating_point_images_are_refused_by_name(tmp_path):
    from PIL import Image

    from tao_siamese_oi.data.transforms import decode_resized
    from tao_siamese_oi.errors import DataError

    Image.fromarray(np.zeros((8, 8), dtype=np.float32)).save(tmp_path / "float.tiff")
    with pytest.raises(DataError, match="float.tiff is a floating-point image"):
        decode_resized(tmp_path / "float.tiff", 8, 8)


def test_a_loader_worker_error_stays_one_line(capsys, tmp_path, tiny_data, tiny_model):
    """Images are checked only for existence here, so the broken one is met by a loader worker."""
    images = _copy_images(tiny_data, tmp_path)
    frame = pd.read_csv(tiny_data / "test.csv", dtype=str)
    victim = images / frame["input_path"][0] / f"{frame['object_name'][0]}_SolderLight.jpg"
    victim.write_bytes(b"\xff\xd8 not really a jpeg")
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results")
    code, err = run_oi(
        capsys,
        "inference",
        "-e",
        spec,
        f"dataset.infer_dataset.images_dir={images}",
        "dataset.validate_images=false",
        "dataset.workers=1",
        f"inference.checkpoint={tiny_model['checkpoint']}",
    )
    assert code == 3
    line = one_error_line(err)
    assert line.startswith(f"error: image {victim} cannot be decoded") and "DataLoader worker" not in err
    log = (tmp_path / "results" / "inference" / "inference.log").read_text()
    assert log.splitlines()[-1].endswith(line[len("error: ") :])  # the error line is kept in the run's log too
    assert "ERROR: " in log.splitlines()[-1] and "optical_inspection" in log.splitlines()[0]


def test_a_run_log_keeps_the_console_lines_and_the_result(capsys, tmp_path, tiny_data, tiny_model):
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results")
    code, err = run_oi(capsys, "evaluate", "-e", spec, f"evaluate.checkpoint={tiny_model['checkpoint']}")
    assert code == 0
    log = (tmp_path / "results" / "evaluate" / "evaluate.log").read_text()
    console = [line.split(": ", 1)[1] for line in err.splitlines() if line.startswith("INFO: ")]
    assert console and all(text in log for text in console)  # every line our logger showed
    assert '"auroc"' in log.splitlines()[-1] and "result: " in log.splitlines()[-1]
    assert "\r" not in log  # no progress-bar frames
    # 8 PASS pairs cannot show an FPR of 1 %: said in one line, on the console and in the log
    too_few = "has 8 PASS pairs: too few to show an FPR of 1 % (at least 368 are needed even with none wrong)"
    assert too_few in err and too_few in log
