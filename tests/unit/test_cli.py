"""The CLI edge: light imports, help with examples, one-line errors, exit codes, plugin declaration."""

import dataclasses
import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from tests.conftest import cli

NO_TORCH = (
    "import sys, runpy\n"
    "sys.argv = {argv!r}\n"
    "try:\n"
    "    runpy.run_module({module!r}, run_name='__main__')\n"
    "except SystemExit:\n"
    "    pass\n"
    "heavy = sorted(m for m in ('torch', 'lightning', 'onnx', 'pandas', 'omegaconf', 'tao_siamese_oi.model.networks',"
    " 'tao_siamese_oi.tasks') if m in sys.modules)\n"
    "print('HEAVY=' + ','.join(heavy))\n"
)


@pytest.mark.parametrize(
    "module, argv",
    [
        ("tao_launcher.cli", ["tao", "--help"]),
        ("tao_launcher.cli", ["tao", "model", "optical_inspection", "--help"]),
        ("tao_siamese_oi.entry_points.optical_inspection", ["optical_inspection", "--help"]),
        ("tao_siamese_oi.entry_points.optical_inspection", ["optical_inspection", "train", "--help"]),
    ],
)
def test_help_does_not_import_heavy_libraries(module, argv):
    out = subprocess.run(
        [sys.executable, "-c", NO_TORCH.format(argv=argv, module=module)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "HEAVY=\n" in out, out
    assert "example" in out.lower()


def test_plugin_entry_point_is_declared_and_plain_data():
    from tao_launcher.protocol import PROTOCOL_VERSION, parse

    (ep,) = [ep for ep in entry_points(group="tao_launcher.plugins") if ep.name == "optical_inspection"]
    assert ep.value == "tao_siamese_oi.plugin:PLUGIN"
    plugin = parse(ep.load())
    assert plugin.name == "optical_inspection" and plugin.protocol == PROTOCOL_VERSION
    assert plugin.action_names == [
        "train",
        "evaluate",
        "inference",
        "calibrate",
        "export",
        "gen_trt_engine",
        "dataset_convert",
        "validate",
    ]
    json.dumps(dataclasses.asdict(plugin))  # nothing but plain data


def test_tao_lists_plugins_and_their_actions():
    out = subprocess.run([cli("tao"), "model", "optical_inspection", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "train" in out.stdout and "export" in out.stdout


class Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def run_cli(capsys):
    """``optical_inspection ARGS`` in this process (the CLI edge as installed, without a 3 s interpreter start)."""
    from tao_siamese_oi.entry_points.optical_inspection import run_action

    def run(*args) -> Ran:
        capsys.readouterr()
        code = run_action(list(args))
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


def test_bad_override_is_one_line_no_traceback_nonzero_exit(tmp_path, run_cli):
    out = run_cli("train", "-e", "specs/train.yaml", "train.num_epoch=3")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "error: command-line overrides: unknown key train.num_epoch; did you mean train.num_epochs?"
    )


def test_missing_data_is_a_one_line_error(tmp_path, run_cli):
    out = run_cli(
        "train",
        "-e",
        "specs/train.yaml",
        f"results_dir={tmp_path}",
        f"dataset.train_dataset.csv_path={tmp_path}/missing.csv",
    )
    assert out.returncode == 3
    assert "Traceback" not in out.stderr
    assert f"pair CSV {tmp_path}/missing.csv not found" in out.stderr
    assert list(tmp_path.iterdir()) == []  # refused before it started: no results folder, no status.json


def test_debug_shows_the_traceback(tmp_path, run_cli):
    out = run_cli(
        "train",
        "-e",
        "specs/train.yaml",
        "--debug",
        f"results_dir={tmp_path}",
        f"dataset.train_dataset.csv_path={tmp_path}/missing.csv",
    )
    assert out.returncode == 3
    assert "Traceback" in out.stderr


def test_validate_reports_every_problem_of_a_split(tmp_path, run_cli):
    csv = tmp_path / "pairs.csv"
    csv.write_text("input_path,golden_path,object_name,label\nin,gold,C1,PASS\n../x,gold,C2,\n")
    out = run_cli(
        "validate",
        "-e",
        "specs/train.yaml",
        f"results_dir={tmp_path}",
        f"dataset.train_dataset.csv_path={csv}",
        f"dataset.train_dataset.images_dir={tmp_path}",
        "dataset.validation_dataset.csv_path=null",
    )
    assert out.returncode == 3
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()[-3:]
    assert lines[0].endswith(
        "pairs.csv: 2 problem(s); fix them and rerun "
        "(optical_inspection validate -e SPEC checks without running a task)"
    )
    assert lines[1] == "  row 3: empty label"
    assert lines[2].startswith("  row 3: input_path '../x' leaves images_dir")


def test_get_job_schema_prints_the_default_spec(run_cli):
    out = run_cli("get-job-schema", "--action", "export")
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    assert schema["action"] == "export"
    assert schema["default"]["export"]["opset_version"] == 17
    assert schema["default"]["dataset"]["input_map"]["WhiteLight"] == 3


def test_help_of_an_action_needs_no_container(capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    from tao_launcher.cli import main

    with pytest.raises(SystemExit) as done:
        main(["model", "optical_inspection", "train", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: optical_inspection train [OPTIONS]") and "Example:" in out


def test_tao_version_names_the_launcher_and_its_plugins(capsys, monkeypatch):
    monkeypatch.setenv("TAO_LAUNCHER_PLUGINS", "optical_inspection")  # not the launcher's example plugin
    from tao_launcher import __version__ as launcher_version
    from tao_launcher.cli import main
    from tao_launcher.protocol import PROTOCOL_VERSION

    from tao_siamese_oi import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.splitlines() == [
        f"tao launcher {launcher_version} (plugin protocol {PROTOCOL_VERSION})",
        f"  optical_inspection: tao_siamese_oi {__version__}",
    ]


@pytest.mark.parametrize(
    "argv, first_line",
    [
        (["model", "optical_inspection", "--version"], "optical_inspection {plugin} (tao_siamese_oi {plugin}, image"),
        (["model", "optical_inspection", "train", "--version"], "optical_inspection, version {plugin}"),
        (["model", "optical_inspection", "export", "--version"], "optical_inspection, version {plugin}"),
        (["serve", "--version"], "tao serve (tao launcher {launcher})"),
        (["mounts", "validate", "--version"], "tao launcher {launcher} (plugin protocol"),
        (["plugins", "--version"], "tao launcher {launcher} (plugin protocol"),
    ],
)
def test_every_command_answers_version_without_a_container(capsys, monkeypatch, argv, first_line):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    from tao_launcher import __version__ as launcher_version
    from tao_launcher.cli import main

    from tao_siamese_oi import __version__

    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    expected = first_line.format(plugin=__version__, launcher=launcher_version)
    assert capsys.readouterr().out.splitlines()[0].startswith(expected)


@pytest.mark.parametrize("action", ["train", "get-job-schema", "make_sample_data"])
def test_every_plugin_command_answers_version(action):
    from click.testing import CliRunner

    from entry_points.optical_inspection import cli as plugin_cli
    from tao_siamese_oi import __version__

    result = CliRunner().invoke(plugin_cli, [action, "--version"], prog_name="optical_inspection")
    assert result.exit_code == 0 and result.output.strip() == f"optical_inspection, version {__version__}"


def test_a_mistyped_action_through_the_launcher_names_the_nearest(capsys):
    from tao_launcher.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--local", "model", "optical_inspection", "trian", "-e", "spec.yaml"])
    assert done.value.code == 2
    assert capsys.readouterr().err.strip() == "error: optical_inspection: unknown action 'trian'; did you mean train?"


def test_the_next_step_through_the_launcher_is_a_launcher_command(capsys, tmp_path, tiny_data):
    import yaml
    from tao_launcher.cli import main

    from tests.conftest import tiny_spec_dict

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec_dict(tiny_data, tmp_path / "results")))
    with pytest.raises(SystemExit) as done:
        main(["--local", "model", "optical_inspection", "validate", "-e", str(spec)])
    assert done.value.code == 0
    assert f"next: tao --local model optical_inspection train -e {spec}" in capsys.readouterr().err
    import os

    assert "TAO_LAUNCHER_COMMAND" not in os.environ  # set for the task only


@pytest.mark.parametrize("spec_option", ["-e={spec}", "--experiment_spec_file={spec}", "--experiment_spec_file {spec}"])
@pytest.mark.parametrize("through", ["task command", "launcher --local"])
def test_tao_s_spec_option_forms_work_wherever_e_does(capsys, tmp_path, tiny_data, spec_option, through):
    """TAO's argparse reads -e=FILE and --experiment_spec_file (with = or a space); so do we, directly and through
    the launcher (the container case: tests/integration/test_secrets.py's dry-run)."""
    import yaml
    from tao_launcher.cli import main
    from tao_siamese_oi.entry_points.optical_inspection import run_action

    from tests.conftest import tiny_spec_dict

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec_dict(tiny_data, tmp_path / "results")))
    argv = ["validate", *spec_option.format(spec=spec).split(" ")]
    if through == "task command":
        code = run_action(argv)
    else:
        with pytest.raises(SystemExit) as done:
            main(["--local", "model", "optical_inspection", *argv])
        code = done.value.code
    err = capsys.readouterr().err
    assert code == 0, err
    assert (tmp_path / "results" / "validate" / "status.json").is_file()


def test_tao_docker_disable_runs_locally_as_with_nvidias_launcher(capsys, monkeypatch, tmp_path, tiny_data):
    import yaml
    from tao_launcher.cli import main

    from tests.conftest import tiny_spec_dict

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # a container run would fail
    monkeypatch.setenv("TAO_DOCKER_DISABLE", "1")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec_dict(tiny_data, tmp_path / "results")))
    with pytest.raises(SystemExit) as done:
        main(["model", "optical_inspection", "validate", "-e", str(spec)])
    assert done.value.code == 0
    assert "next: tao --local model optical_inspection train" in capsys.readouterr().err


def test_the_docker_build_context_leaves_out_the_virtual_environment_and_caches():
    from pathlib import Path

    from docker.utils.build import exclude_paths

    root = Path(__file__).resolve().parents[2]
    patterns = [
        line.strip() for line in (root / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
    ]
    sent = exclude_paths(str(root), patterns)
    assert not any(p.startswith((".venv/", ".git/")) or "__pycache__" in p for p in sent)
    copied = ["setup.cfg", "pyproject.toml", "README.md", "tao_siamese_oi/__init__.py", "launcher/pyproject.toml"]
    copied += ["entry_points/optical_inspection.py", "specs/train.yaml"]
    assert all(p in sent for p in copied)  # what the Dockerfile COPYs is still sent


def test_dataset_convert_suggests_validating_what_it_wrote_and_the_line_runs(capsys, tmp_path, monkeypatch):
    import shlex

    import yaml
    from tao_siamese_oi.entry_points.optical_inspection import run_action

    monkeypatch.chdir(tmp_path)
    convert = {"results_dir": "results", "dataset_convert": {"source": "synthetic", "data_convert_output_dir": "pairs"}}
    (tmp_path / "convert.yaml").write_text(yaml.safe_dump(convert))
    assert run_action(["dataset_convert", "-e", "convert.yaml"]) == 0
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("next: ")]
    argv = shlex.split(line[len("next: ") :])
    assert argv[:4] == ["optical_inspection", "validate", "-e", "convert.yaml"]
    bound = {"dataset.train_dataset.csv_path=pairs/train.csv", "dataset.test_dataset.images_dir=pairs/images"}
    assert bound <= set(argv)
    assert run_action(argv[1:]) == 0  # as printed
    assert "next: optical_inspection train -e convert.yaml dataset.train_dataset.csv_path=pairs/train.csv" in (
        capsys.readouterr().err
    )
