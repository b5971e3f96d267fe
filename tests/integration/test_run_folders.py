"""One results folder, one run; outputs are never replaced behind the user's back; no temp file survives."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from tests.conftest import load_tiny_checkpoint
from tests.integration.hardening_helpers import (
    cli_env,
    dead_pid,
    oi_command,
    one_error_line,
    run_oi,
    snapshot,
    write_tiny_spec,
)

pytestmark = pytest.mark.slow  # real trainings and subprocesses: the slow lane


@pytest.fixture
def finished(capsys, tmp_path, tiny_data, tiny_model):
    """A results folder in which every task has run once (train, evaluate, inference, export, dataset_convert)."""
    results = tmp_path / "results"
    spec = write_tiny_spec(
        tmp_path,
        tiny_data,
        results,
        train={"num_epochs": 1},
        dataset_convert={"source": "synthetic", "data_convert_output_dir": str(tmp_path / "converted")},
    )
    checkpoint = results / "train" / "oi_model_latest.pth"
    runs = {
        "train": ["train"],
        "evaluate": ["evaluate", f"evaluate.checkpoint={checkpoint}"],
        "inference": ["inference", f"inference.checkpoint={checkpoint}"],
        "export": ["export", f"export.checkpoint={checkpoint}"],
        "dataset_convert": ["dataset_convert"],
    }
    for name, *overrides in runs.values():
        code, err = run_oi(capsys, name, "-e", spec, *overrides)
        assert code == 0, err
    return {"spec": spec, "results": results, "runs": runs, "tmp": tmp_path}


@pytest.mark.parametrize(
    "action, replaced, elsewhere",
    [
        ("evaluate", "results/evaluate/metrics.json", "results_dir"),
        ("inference", "results/inference/inference.csv", "results_dir"),
        ("export", "results/export/oi_model.onnx", "export.onnx_file"),
        ("dataset_convert", "converted/train.csv", "dataset_convert.data_convert_output_dir"),
    ],
)
def test_a_rerun_never_replaces_outputs_unless_asked(capsys, finished, action, replaced, elsewhere):
    name, *overrides = finished["runs"][action]
    before = snapshot(finished["tmp"])
    code, err = run_oi(capsys, name, "-e", finished["spec"], *overrides)
    assert code == 5
    line = one_error_line(err)
    assert line.startswith(f"error: {action} would replace ") and replaced.split("/")[1] in line
    assert line.endswith(f"pass {action}.overwrite=true to replace them, or choose another {elsewhere}")
    assert snapshot(finished["tmp"]) == before  # refused: nothing touched, experiment.yaml and status.json included

    code, err = run_oi(capsys, name, "-e", finished["spec"], *overrides, f"{action}.overwrite=true")
    assert code == 0, err
    after = snapshot(finished["tmp"])
    assert after[replaced] != before[replaced]  # replaced, as asked


def test_a_rerun_of_a_finished_training_continues_it_and_replaces_nothing(capsys, finished):
    before = snapshot(finished["results"] / "train")
    code, err = run_oi(capsys, "train", "-e", finished["spec"])
    assert code == 0 and "Training already finished (1 of 1 epochs)" in err
    after = snapshot(finished["results"] / "train")
    assert {k: v for k, v in after.items() if k.endswith(".pth")} == {
        k: v for k, v in before.items() if k.endswith(".pth")
    }


def test_a_training_never_overwrites_checkpoints_of_another_one(capsys, tmp_path, tiny_data):
    results = tmp_path / "results"
    (results / "train").mkdir(parents=True)
    (results / "train" / "model_epoch_000_step_00005.pth").write_bytes(b"someone's model")
    spec = write_tiny_spec(tmp_path, tiny_data, results)
    before = snapshot(tmp_path)
    code, err = run_oi(capsys, "train", "-e", spec)
    assert code == 5
    assert one_error_line(err) == (
        f"error: train would replace {results / 'train' / 'model_epoch_000_step_00005.pth'} from an earlier run; "
        "remove them first, or choose another results_dir"
    )
    assert snapshot(tmp_path) == before


def test_export_will_not_put_its_sidecar_over_another_file(capsys, finished):
    """An ONNX file named metrics.onnx would get metrics.json as its sidecar: evaluate's output."""
    onnx_file = finished["results"] / "evaluate" / "metrics.onnx"
    before = snapshot(finished["tmp"])
    name, *overrides = finished["runs"]["export"]
    code, err = run_oi(capsys, name, "-e", finished["spec"], *overrides, f"export.onnx_file={onnx_file}")
    assert code == 5 and str(onnx_file.with_suffix(".json")) in one_error_line(err)
    assert snapshot(finished["tmp"]) == before


@pytest.mark.parametrize("second", [[], ["train.num_epochs=1"]], ids=["same spec", "fewer epochs than done"])
def test_a_second_run_into_a_busy_folder_is_refused_naming_the_holder(capsys, tmp_path, tiny_data, second):
    """Also when the folder's checkpoints already hold as many epochs as the second run asks for: a running
    training's folder is not a finished one."""
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results", train={"num_epochs": 5000})
    status = tmp_path / "results" / "train" / "status.json"
    first = subprocess.Popen(oi_command("train", "-e", spec), stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        deadline = time.time() + 120
        while not (status.exists() and '"epoch"' in status.read_text()) and time.time() < deadline:
            assert first.poll() is None, first.communicate()[1]
            time.sleep(0.2)
        experiment = (status.parent / "experiment.yaml").read_bytes()
        code, err = run_oi(capsys, "train", "-e", spec, *second)
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert code == 5
    assert one_error_line(err) == (
        f"error: {status.parent} is in use by another train pid {first.pid} on host {socket.gethostname()}; wait for "
        "it to finish or choose another results_dir"
    )
    lines = [json.loads(line) for line in status.read_text().splitlines()]
    assert [line["status"] for line in lines].count("STARTED") == 1  # the refused run wrote nothing
    assert (status.parent / "experiment.yaml").read_bytes() == experiment


@pytest.mark.parametrize("action", ["evaluate", "inference", "export", "validate"])
def test_a_task_never_writes_into_another_tasks_folder(capsys, finished, action):
    """The report: evaluate.results_dir pointed at a training folder replaced its experiment.yaml and appended to
    its status.json (exit 0)."""
    train_dir = finished["results"] / "train"
    name, *overrides = finished["runs"].get(action, [action])
    before = snapshot(finished["tmp"])
    code, err = run_oi(capsys, name, "-e", finished["spec"], *overrides, f"{action}.results_dir={train_dir}")
    assert code == 5
    assert one_error_line(err) == (
        f"error: {action}.results_dir {train_dir} holds a train run (its status.json); a task writes only into its "
        f"own folder: choose another {action}.results_dir"
    )
    assert snapshot(finished["tmp"]) == before


def test_a_model_that_a_running_training_is_still_writing_is_refused(capsys, tmp_path, tiny_data):
    """The report: evaluating a training that is still running used an intermediate checkpoint silently."""
    spec = write_tiny_spec(tmp_path, tiny_data, tmp_path / "results", train={"num_epochs": 5000})
    status = tmp_path / "results" / "train" / "status.json"
    first = subprocess.Popen(oi_command("train", "-e", spec), stderr=subprocess.PIPE, text=True, env=cli_env())
    checkpoint = tmp_path / "results" / "train" / "oi_model_latest.pth"
    try:
        deadline = time.time() + 120
        while not (status.exists() and '"epoch"' in status.read_text()) and time.time() < deadline:
            assert first.poll() is None, first.communicate()[1]
            time.sleep(0.2)
        runs = [
            ["evaluate", f"evaluate.checkpoint={checkpoint}", f"evaluate.results_dir={tmp_path}/e"],
            ["export", f"export.checkpoint={checkpoint}", f"export.results_dir={tmp_path}/x"],
        ]
        answers = [run_oi(capsys, name, "-e", spec, *overrides) for name, *overrides in runs]
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    holder = f"train pid {first.pid} on host {socket.gethostname()}"
    for (name, *_), (code, err) in zip(runs, answers):
        assert code == 5 and one_error_line(err) == (
            f"error: {name}.checkpoint {checkpoint} is in a folder that a running {holder} is still writing; wait "
            "for it to finish, or copy the file elsewhere to use it as it is now"
        )
    assert not (tmp_path / "e").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("action", ["train", "evaluate", "inference", "export", "dataset_convert", "validate"])
def test_every_task_refuses_a_folder_another_run_holds_before_reading_it(capsys, finished, action):
    """Whatever the folder holds (a finished training, outputs a rerun would replace), a run that holds it now is
    what the refusal names, and nothing is written."""
    from tao_siamese_oi.utils.run_lock import locked_folder

    folder = finished["results"] / action
    folder.mkdir(exist_ok=True)
    name, *overrides = finished["runs"].get(action, [action])
    with locked_folder(folder, "train"):  # as a running task holds it (flock: another open file conflicts)
        before = snapshot(finished["tmp"])
        code, err = run_oi(capsys, name, "-e", finished["spec"], *overrides)
        assert snapshot(finished["tmp"]) == before
    assert code == 5
    assert one_error_line(err) == (
        f"error: {folder} is in use by another train pid {os.getpid()} on host {socket.gethostname()}; wait for it "
        "to finish or choose another results_dir"
    )


def test_a_lock_left_by_a_dead_run_is_taken_over_and_said(capsys, tmp_path, tiny_data):
    folder = tmp_path / "results" / "validate"
    folder.mkdir(parents=True)
    pid = dead_pid()
    (folder / ".tao_oi.lock").write_text(f"validate pid {pid} on host gone\n")
    code, err = run_oi(capsys, "validate", "-e", write_tiny_spec(tmp_path, tiny_data, tmp_path / "results"))
    assert code == 0, err
    assert f"Taking over {folder}: its holder (validate pid {pid} on host gone) is no longer running." in err
    assert not (folder / ".tao_oi.lock").exists()  # released when the run ended


def test_temp_files_of_killed_writes_are_removed_by_the_next_run(capsys, finished):
    """A kill -9 mid-write leaves ``.<name>.<pid>-<random>.tmp``; the next run that writes there removes it, also
    when the file is outside the results folder (an export.onnx_file elsewhere)."""
    pid = dead_pid()
    elsewhere = finished["tmp"] / "deploy"
    elsewhere.mkdir()
    stale = [
        finished["results"] / "export" / f".oi_model.onnx.{pid}-x1y2.tmp",
        elsewhere / f".model.onnx.{pid}-a1b2.tmp",
        finished["results"] / "train" / f".oi_model_latest.pth.{pid}-c3d4.tmp",
    ]
    live = finished["results"] / "export" / f".oi_model.onnx.{os.getpid()}-live.tmp"  # a writer still running
    for path in [*stale, live]:
        path.write_bytes(b"half")
    name, *overrides = finished["runs"]["export"]
    assert run_oi(capsys, name, "-e", finished["spec"], *overrides, "export.overwrite=true")[0] == 0
    assert (
        run_oi(capsys, name, "-e", finished["spec"], *overrides, f"export.onnx_file={elsewhere / 'model.onnx'}")[0] == 0
    )
    assert run_oi(capsys, "train", "-e", finished["spec"], "train.num_epochs=2")[0] == 0  # continues: writes
    assert [path.exists() for path in stale] == [False, False, False]
    assert live.exists()


def test_an_interrupted_write_leaves_no_temp_file(tmp_path):
    from tao_siamese_oi.utils.files import atomic_write
    from tao_siamese_oi.utils.signals import Interrupted

    target = tmp_path / "model.onnx"
    target.write_bytes(b"the previous model")

    def interrupted(tmp):
        with open(tmp, "wb") as handle:
            handle.write(b"half")
        raise Interrupted(signal.SIGTERM)

    with pytest.raises(Interrupted):
        atomic_write(target, interrupted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    assert target.read_bytes() == b"the previous model"


def test_the_latest_checkpoint_holds_the_newest_epoch_whatever_the_interval(capsys, tmp_path, tiny_data):
    results = tmp_path / "results"
    spec = write_tiny_spec(tmp_path, tiny_data, results, train={"num_epochs": 3, "checkpoint_interval": 5})
    code, err = run_oi(capsys, "train", "-e", spec)
    assert code == 0, err
    assert sorted(p.name for p in (results / "train").glob("*.pth")) == ["oi_model_latest.pth"]  # no periodic one due
    assert load_tiny_checkpoint(results / "train" / "oi_model_latest.pth")["epoch"] == 2
