"""The launcher is multi-model for real: throw-away plugin distributions on sys.path are found, checked against
the protocol and routed to, without importing any other plugin's model code."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tao_launcher.protocol import PROTOCOL_VERSION

FAKE_MODULE = """
PLUGIN = {{"protocol": "{protocol}", "name": "{name}", "version": "1.0", "summary": "a throw-away plugin",
          "argv_prefix": ["{name}"], "image": "local/{name}:test", "handler": "{module}:handle",
          "actions": [{{"name": "hello", "help": "say hello", "example": "{name} hello a=1"}}],
          "path_keys": ["out"]}}


def handle(argv):
    print("{module} got", argv)
    return 7
"""


def make_distribution(site: Path, dist: str, module: str, name: str, protocol: str = "1.0") -> None:
    (site / f"{module}.py").write_text(FAKE_MODULE.format(name=name, module=module, protocol=protocol))
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[tao_launcher.plugins]\n{name} = {module}:PLUGIN\n")


def tao(site: Path, *args, **env):
    env = {**os.environ, "PYTHONPATH": str(site), **env}
    code = (
        "import sys\nfrom tao_launcher.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
        "    print('IMPORTED=' + ','.join(sorted(m for m in ('tao_siamese_oi', 'torch') if m in sys.modules)))"
    )
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)


@pytest.fixture
def site(tmp_path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "fakeplug", "fakeplug", "fake_task")
    return site


def test_a_second_plugin_is_listed_and_routed_to(site):
    listing = tao(site, "--help")
    assert "fake_task" in listing.stdout and "example_task" in listing.stdout
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


def test_unknown_task_and_action_are_one_line_errors_with_the_nearest_name(site):
    out = tao(site, "model", "fake_tsk")
    assert out.returncode == 2 and out.stderr.strip().endswith(
        "error: unknown task 'fake_tsk'; did you mean fake_task?"
    )
    out = tao(site, "model", "fake_task", "helo")
    assert out.returncode == 2 and "error: fake_task: unknown action 'helo'; did you mean hello?" in out.stderr
    out = tao(site, "model", "fake_task", "zzz")
    assert out.returncode == 2 and "error: fake_task: unknown action 'zzz'; choose one of hello" in out.stderr


def test_a_plugin_of_another_protocol_major_is_skipped_with_one_line(site):
    make_distribution(site, "futureplug", "futureplug", "future_task", protocol="2.0")
    out = tao(site, "--help")
    assert out.returncode == 0 and "future_task" not in out.stdout and "fake_task" in out.stdout
    line = f"plugin 'future_task' from futureplug 1.0 speaks protocol 2.0, this launcher {PROTOCOL_VERSION}"
    assert out.stderr.count(line) == 1


def test_a_declaration_that_breaks_the_protocol_is_skipped_naming_the_field(site):
    (site / "badplug.py").write_text("PLUGIN = {'name': 'bad', 'actions': []}\n")
    info = site / "badplug-0.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: badplug\nVersion: 0.2\n")
    (info / "entry_points.txt").write_text("[tao_launcher.plugins]\nbad = badplug:PLUGIN\n")
    out = tao(site, "--help")
    assert (
        "plugin 'bad' from badplug 0.2 cannot be loaded (missing field(s) argv_prefix, handler, image, summary, "
        in (out.stderr)
    )


def test_tao_plugins_lists_what_is_installed_and_the_environment_restricts_it(site):
    out = tao(site, "plugins")
    rows = [line.split() for line in out.stdout.splitlines() if not line.startswith("IMPORTED=")]
    assert rows[0] == ["name", "version", "distribution", "image", "protocol"]
    assert ["fake_task", "1.0", "fakeplug", "1.0", "local/fake_task:test", "1.0"] in rows
    only = tao(site, "plugins", TAO_LAUNCHER_PLUGINS="fake_task")
    names = [line.split()[0] for line in only.stdout.splitlines()[1:] if not line.startswith("IMPORTED=")]
    assert names == ["fake_task"]
    assert "IMPORTED=\n" in only.stdout  # the other plugins were never imported


def test_a_throw_away_plugin_runs_without_importing_the_model_package(site):
    out = tao(site, "--local", "model", "fake_task", "hello", TAO_LAUNCHER_PLUGINS="fake_task")
    assert out.returncode == 7 and "IMPORTED=\n" in out.stdout


def test_without_a_docker_engine_the_error_points_to_local_mode(site, tmp_path):
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no.sock", "LAUNCHER_MOUNTS": ""}
    code = "import sys; from tao_launcher.cli import main; main(sys.argv[1:])"
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
    code = "import sys; from tao_launcher.cli import main; main(sys.argv[1:])"
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
