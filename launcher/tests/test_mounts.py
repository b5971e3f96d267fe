"""A mounts file cannot smuggle options into Docker; risky choices are allowed but said; dry runs can be pasted."""

import json
import shlex

import pytest
import yaml
from tao_launcher import LauncherError
from tao_launcher.docker_runner import container_spec, docker_command_line
from tao_launcher.mounts import load_mounts


def mounts_file(tmp_path, data) -> str:
    path = tmp_path / "mounts.json"
    path.write_text(json.dumps(data))
    return path


def mount(source, destination, **extra) -> dict:
    return {"source": str(source), "destination": destination, **extra}


@pytest.mark.parametrize(
    "destination, message",
    [
        ("/data:rw,shared", "destination '/data:rw,shared' contains ':' or ','"),
        ("/data,readonly", "destination '/data,readonly' contains ':' or ','"),
        ("/workspace/../etc", "destination '/workspace/../etc' contains '..'"),
        ("/", "destination / would hide the image's own files"),
        ("//", "destination / would hide the image's own files"),
    ],
)
def test_destinations_cannot_carry_options_or_escape(tmp_path, destination, message):
    with pytest.raises(LauncherError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_mounts(mounts_file(tmp_path, {"Mounts": [mount(tmp_path, destination)]}))


def test_destinations_are_normalised_and_unique(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    config = load_mounts(mounts_file(tmp_path, {"Mounts": [mount(tmp_path / "a", "//data/./x/")]}))
    assert config.mounts[0].destination == "/data/x"
    twice = {"Mounts": [mount(tmp_path / "a", "/data"), mount(tmp_path / "b", "/data/")]}
    with pytest.raises(LauncherError, match=f"{tmp_path / 'a'} and {tmp_path / 'b'} are both mounted at /data"):
        load_mounts(mounts_file(tmp_path, twice))


def test_a_source_with_a_docker_separator_is_refused(tmp_path):
    odd = tmp_path / "lot:7"
    odd.mkdir()
    with pytest.raises(LauncherError, match="source .*lot:7 contains ':' or ','"):
        load_mounts(mounts_file(tmp_path, {"Mounts": [mount(odd, "/data")]}))


def test_one_source_read_only_and_read_write_keeps_both_mounts(tmp_path):
    config = load_mounts(
        mounts_file(
            tmp_path,
            {"Mounts": [mount(tmp_path, "/ro", read_only=True), mount(tmp_path, "/rw", read_only=False)]},
        )
    )
    spec = container_spec("img", ["x"], config)
    assert spec["volumes"] == [f"{tmp_path}:/ro:ro", f"{tmp_path}:/rw:rw"]
    words = shlex.split(docker_command_line(spec))
    assert [words[i + 1] for i, w in enumerate(words) if w == "--volume"] == spec["volumes"]


@pytest.mark.parametrize("name", ["A=B", "MY VAR", "A\nB", "", "1ABC", 7])
def test_env_names_must_be_identifiers(tmp_path, name):
    with pytest.raises(LauncherError, match=r"Envs\[0\]: variable .* is not a valid name"):
        load_mounts(mounts_file(tmp_path, {"Envs": [{"variable": name, "value": "x"}]}))


def test_risky_choices_are_allowed_with_one_warning_line_each(tmp_path):
    socket_file = tmp_path / "docker.sock"
    socket_file.write_text("")
    data = {
        "Mounts": [mount("/", "/host", read_only=True)],
        "DockerOptions": {"privileged": True, "network": "host"},
    }
    warnings = []
    config = load_mounts(mounts_file(tmp_path, data), warn=warnings.append)
    assert len(config.mounts) == 1
    assert [w.split(": ", 1)[1] for w in warnings] == [
        "DockerOptions.privileged gives the container full control of this machine",
        "DockerOptions.network host lets the container use every port of this machine",
        "the whole file system (/) is mounted at /host",
    ]


def test_mounting_the_docker_socket_is_warned_about(tmp_path, monkeypatch):
    from tao_launcher import mounts

    socket_file = tmp_path / "docker.sock"
    socket_file.write_text("")
    monkeypatch.setattr(mounts, "DOCKER_SOCKETS", (str(socket_file),))
    warnings = []
    load_mounts(mounts_file(tmp_path, {"Mounts": [mount(socket_file, "/var/run/docker.sock")]}), warn=warnings.append)
    assert warnings == [
        f"mounts file {tmp_path / 'mounts.json'}: the Docker socket {socket_file} is mounted: the container can "
        "control Docker"
    ]


def test_a_dry_run_keeps_the_translated_spec_where_the_printed_command_finds_it(capsys, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "data" / "results")}))
    monkeypatch.setenv("LAUNCHER_MOUNTS", str(mounts_file(tmp_path, {"Mounts": [mount(tmp_path / "data", "/d")]})))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from tao_launcher.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--dry-run", "model", "example_task", "train", "-e", str(spec)])
    printed = capsys.readouterr()
    assert done.value.code == 0, printed.err
    kept = next((tmp_path / "cache" / "tao_launcher" / "dry_run").iterdir())
    assert f"tao: the translated spec is kept in {kept} (mounted at /tao_launcher/spec)" in printed.err
    assert yaml.safe_load((kept / "spec.yaml").read_text()) == {"results_dir": "/d/results"}
    words = shlex.split(printed.out)
    assert f"{kept}:/tao_launcher/spec:ro" in words and words[-3:] == [
        "train",
        "-e",
        "/tao_launcher/spec/spec.yaml",
    ]


def test_a_dry_run_with_an_overridden_results_dir_needs_no_mount_for_the_old_one(capsys, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"results_dir": "/nowhere/mounted/results"}))  # replaced on the command line
    monkeypatch.setenv("LAUNCHER_MOUNTS", str(mounts_file(tmp_path, {"Mounts": [mount(tmp_path / "data", "/d")]})))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from tao_launcher.cli import main

    argv = ["--dry-run", "model", "example_task", "train", "-e", str(spec), f"results_dir={tmp_path}/data/r"]
    with pytest.raises(SystemExit) as done:
        main(argv)
    printed = capsys.readouterr()
    assert done.value.code == 0, printed.err
    assert shlex.split(printed.out)[-1] == "results_dir=/d/r"  # the value used is translated
    with pytest.raises(SystemExit) as done:  # without the override the spec's own value must be mounted
        main(argv[:-1])
    assert (
        done.value.code != 0
        and "results_dir /nowhere/mounted/results is neither under a mount's source" in capsys.readouterr().err
    )


def test_container_paths_in_the_output_are_shown_as_the_host_paths_the_user_gave(tmp_path):
    from tao_launcher.paths import HostPaths

    paths = HostPaths(
        {"/d": str(tmp_path / "data"), "/d/deep": "/mnt/deep", "/tao_launcher/spec/s.yaml": "specs/s.yaml"}
    )
    out = paths.feed(b"error: image /d/images/a.jpg cannot be decoded\nINFO: results in /d/deep/r, spec /tao_l")
    out += paths.feed(b"auncher/spec/s.yaml; /data and /dd stay\n") + paths.flush()
    assert out.decode() == (
        f"error: image {tmp_path}/data/images/a.jpg cannot be decoded\n"
        "INFO: results in /mnt/deep/r, spec specs/s.yaml; /data and /dd stay\n"
    )


def test_a_tao_notebook_command_line_with_container_paths_runs(capsys, tmp_path, monkeypatch):
    """As TAO's notebooks write it: the spec and results_dir given as paths inside the container."""
    experiments = tmp_path / "tao-experiments"
    (experiments / "specs").mkdir(parents=True)
    (experiments / "specs" / "train.yaml").write_text(
        yaml.safe_dump({"data": "/workspace/tao-experiments/data/train.csv"})
    )
    mounts = {"Mounts": [mount(experiments, "/workspace/tao-experiments")]}
    monkeypatch.setenv("LAUNCHER_MOUNTS", str(mounts_file(tmp_path, mounts)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from tao_launcher.cli import main

    argv = ["--dry-run", "model", "example_task", "train"]
    argv += ["-e", "/workspace/tao-experiments/specs/train.yaml", "results_dir=/workspace/tao-experiments/results"]
    with pytest.raises(SystemExit) as done:
        main(argv)
    printed = capsys.readouterr()
    assert done.value.code == 0, printed.err
    words = shlex.split(printed.out)
    assert words[-4:] == [
        "train",
        "-e",
        "/tao_launcher/spec/train.yaml",
        "results_dir=/workspace/tao-experiments/results",
    ]
    kept = next((tmp_path / "cache" / "tao_launcher" / "dry_run").iterdir())
    assert yaml.safe_load((kept / "train.yaml").read_text())["data"] == "/workspace/tao-experiments/data/train.csv"
    with pytest.raises(SystemExit) as done:  # a container path under no mount: the one error line
        main([*argv[:-1], "results_dir=/workspace/elsewhere/results"])
    assert done.value.code != 0
    assert "results_dir /workspace/elsewhere/results is neither under a mount's source" in capsys.readouterr().err
