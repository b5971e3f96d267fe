"""The launcher is multi-model for real: throw-away plugin distributions on sys.path are found and routed to."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FAKE_MODULE = """
PLUGIN = {{"api_version": 1, "name": "{name}", "summary": "a throw-away plugin", "argv_prefix": ["{name}"],
          "image": "local/{name}:test",
          "actions": {{"hello": {{"help": "say hello", "handler": "{module}:handle"}}}}}}


def handle(argv):
    print("{module} got", argv)
    return 7
"""


def make_distribution(site: Path, dist: str, module: str, name: str) -> None:
    (site / f"{module}.py").write_text(FAKE_MODULE.format(name=name, module=module))
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[tao_launcher.plugins]\n{name} = {module}:PLUGIN\n")


def tao(site: Path, *args):
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = "import sys; from entry_points.tao import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)


@pytest.fixture
def site(tmp_path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "fakeplug", "fakeplug", "fake_task")
    return site


def test_a_second_plugin_is_listed_and_routed_to(site):
    listing = tao(site, "--help")
    assert "fake_task" in listing.stdout and "optical_inspection" in listing.stdout
    actions = tao(site, "model", "fake_task", "--help")
    assert "hello" in actions.stdout and "fakeplug 1.0" in actions.stdout
    out = tao(site, "--local", "model", "fake_task", "hello", "a=1", "--flag")
    assert out.returncode == 7  # the handler's exit code is the launcher's
    assert "fakeplug got ['hello', 'a=1', '--flag']" in out.stdout


def test_a_broken_plugin_is_reported_once_and_skipped(site):
    info = site / "brokenplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[tao_launcher.plugins]\nbroken = no_such_module:PLUGIN\n")
    out = tao(site, "--help")
    assert out.returncode == 0
    assert out.stderr.count("plugin 'broken' from brokenplug 0.1 cannot be loaded") == 1
    assert "fake_task" in out.stdout


def test_two_distributions_with_one_plugin_name_are_refused(site):
    make_distribution(site, "otherplug", "otherplug", "fake_task")
    out = tao(site, "model", "fake_task", "hello")
    assert out.returncode == 2
    assert "two installed distributions declare the plugin 'fake_task'" in out.stderr
    assert "fakeplug 1.0" in out.stderr and "otherplug 1.0" in out.stderr


def test_unknown_task_and_action_are_one_line_errors(site):
    out = tao(site, "model", "nope")
    assert out.returncode == 2 and out.stderr.strip().startswith("error: unknown task 'nope'; installed:")
    out = tao(site, "model", "fake_task", "bye")
    assert out.returncode == 2 and "fake_task has no action 'bye'; choose one of hello" in out.stderr


def test_without_a_docker_engine_the_error_points_to_local_mode(site, tmp_path):
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no.sock", "LAUNCHER_MOUNTS": ""}
    code = "import sys; from entry_points.tao import main; main(sys.argv[1:])"
    out = subprocess.run(
        [sys.executable, "-c", code, "model", "fake_task", "hello"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site), **env},
    )
    assert out.returncode == 2
    assert textwrap.dedent(out.stderr).strip() == (
        f"error: cannot reach the Docker daemon at unix://{tmp_path}/no.sock; start Docker (or set DOCKER_HOST), "
        "or run the action in this Python environment with: tao --local ..."
    )


def test_local_mode_by_environment_and_mounts_validation(site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(site), "TAO_LAUNCHER_LOCAL": "1"}
    code = "import sys; from entry_points.tao import main; main(sys.argv[1:])"
    out = subprocess.run(
        [sys.executable, "-c", code, "model", "fake_task", "hello"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 7 and "fakeplug got ['hello']" in out.stdout
    good = tmp_path / "good.json"
    mounts = {"Mounts": [{"source": str(tmp_path), "destination": "/d"}], "DockerOptions": {"gpus": "none"}}
    good.write_text(json.dumps(mounts))
    out = tao(site, "mounts", "validate", str(good))
    assert out.returncode == 0 and "valid (1 mounts, 0 env variables, Docker options: gpus)" in out.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"Env": []}')
    out = tao(site, "mounts", "validate", str(bad))
    assert out.returncode == 2 and "unknown key 'Env'; did you mean Envs?" in out.stderr
