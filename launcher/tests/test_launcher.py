"""Launcher pieces without Docker: mounts file, path translation, container spec, local routing."""

import json
import os
from pathlib import Path

import pytest
import yaml
from tao_launcher import LauncherError
from tao_launcher.docker_runner import LABEL, container_spec, docker_command_line
from tao_launcher.launch import SPEC_MOUNT, container_argv
from tao_launcher.mounts import Mount, MountsConfig, load_mounts
from tao_launcher.paths import PathMapper, translate_override, translate_spec
from tao_launcher.plugins import Plugin
from tao_launcher.protocol import Action, PluginSpec

PATH_KEYS = ("results_dir", "dataset.*.csv_path", "*.results_dir", "*.checkpoint")
PLUGIN = PluginSpec(
    name="stand_in",
    version="1.0",
    summary="a stand-in with the real plugin's path rules",
    image="img:1",
    argv_prefix=("stand_in",),
    handler="x:y",
    actions=(Action("train", "train"),),
    path_options=("-e", "--experiment_spec"),
    path_keys=PATH_KEYS,
)


def write(tmp_path, data, name="mounts.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_a_full_mounts_file_parses(tmp_path):
    (tmp_path / "data").mkdir()
    path = write(
        tmp_path,
        {
            "Mounts": [{"source": str(tmp_path / "data"), "destination": "/data/", "read_only": True}],
            "Envs": [{"variable": "WANDB_MODE", "value": "offline"}],
            "DockerOptions": {"shm_size": "16G", "gpus": [0, 2], "user": "1000:1000"},
        },
    )
    config = load_mounts(path)
    assert config.mounts == (Mount(tmp_path / "data", "/data", True),)
    assert config.envs == {"WANDB_MODE": "offline"}
    assert config.options["gpus"] == [0, 2]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"Env": []}, "unknown key 'Env'; did you mean Envs?"),
        ({"Mounts": [{"source": "/nonexistent/x", "destination": "/d"}]}, "source /nonexistent/x does not exist"),
        ({"Mounts": [{"src": "/", "destination": "/d"}]}, "Mounts\\[0\\]: unknown key 'src'; did you mean source?"),
        ({"Envs": [{"variable": "A"}]}, "Envs\\[0\\] lacks value"),
        ({"DockerOptions": {"shmsize": "1G"}}, "unknown key 'shmsize'; did you mean shm_size?"),
        ({"DockerOptions": {"gpus": "some"}}, 'gpus must be "all", "none" or a list'),
        ({"DockerOptions": {"privileged": "yes"}}, "DockerOptions.privileged has the wrong type"),
        ('{"Mounts": [\n  {"source": "/x" "destination": "/y"}]}', "line 2, column 19: invalid JSON"),
    ],
)
def test_bad_mounts_files_say_what_to_fix(tmp_path, data, message):
    with pytest.raises(LauncherError, match=message):
        load_mounts(write(tmp_path, data))


def test_mounts_files_nvidias_launcher_accepts_work_with_a_warning_for_each_oddity(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    warnings = []
    data = {
        "Mounts": [{"source": str(tmp_path / "data"), "destination": "workspace", "type": "bind"}],
        "Envs": [{"variable": "A", "value": "1", "comment": "x"}],
        "DockerOptions": {"user": 1000},
    }
    config = load_mounts(write(tmp_path, data), warn=warnings.append)
    assert config.mounts == (Mount(tmp_path / "data", f"{tmp_path}/workspace"),)  # as NVIDIA's launcher makes it
    assert config.options["user"] == "1000" and config.envs == {"A": "1"}
    relative, extra_mount_key, extra_env_key = sorted(warnings, key=lambda w: ("relative" not in w, "Envs" in w))
    assert len(warnings) == 3
    assert f"destination 'workspace' is relative; it is {tmp_path}/workspace in the container" in relative
    assert "Mounts[0]: unknown key 'type'" in extra_mount_key and extra_mount_key.endswith("(ignored)")
    assert "Envs[0]: unknown key 'comment'" in extra_env_key


def test_mounts_file_location(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("LAUNCHER_MOUNTS", raising=False)
    assert load_mounts() == MountsConfig()  # no ~/.tao_mounts.json: no mounts
    monkeypatch.setenv("LAUNCHER_MOUNTS", str(tmp_path / "missing.json"))
    with pytest.raises(LauncherError, match="missing.json not found"):
        load_mounts()
    monkeypatch.setenv("LAUNCHER_MOUNTS", str(write(tmp_path, {"Envs": [{"variable": "A", "value": 1}]})))
    assert load_mounts().envs == {"A": "1"}


@pytest.fixture
def mapper(tmp_path):
    for name in ("data", "data/deep", "results"):
        (tmp_path / name).mkdir(exist_ok=True)
    return PathMapper(
        (
            Mount(tmp_path / "data", "/data"),
            Mount(tmp_path / "data" / "deep", "/deep"),
            Mount(tmp_path / "results", "/results"),
        )
    )


def test_paths_map_through_the_longest_mount(mapper, tmp_path):
    assert mapper.to_container(str(tmp_path / "data" / "a.csv"), "x") == "/data/a.csv"
    assert mapper.to_container(str(tmp_path / "data" / "deep" / "b"), "x") == "/deep/b"
    assert mapper.to_container(str(tmp_path / "results"), "x") == "/results"


def test_a_path_outside_every_mount_names_the_nearest(mapper, tmp_path):
    with pytest.raises(
        LauncherError,
        match=f"override x {tmp_path}/datasets/c.csv is neither under a mount's source .a host path. nor under "
        f"its destination .a container path.; the nearest mount is {tmp_path}/data -> /data",
    ):
        mapper.to_container(str(tmp_path / "datasets" / "c.csv"), "override x")


def test_a_container_path_under_a_mount_destination_is_kept_as_it_is(mapper, tmp_path):
    # TAO notebooks pass container paths: results_dir=/results/run1, -e /data/specs/train.yaml
    assert mapper.to_container("/results/run1", "x") == "/results/run1"
    assert mapper.to_container("/deep/b/../c.csv", "x") == "/deep/c.csv"
    assert mapper.to_host("/deep/c.csv") == tmp_path / "data" / "deep" / "c.csv"  # the nested mount wins
    assert mapper.to_host("/resultsX/a") is None and mapper.container_mount("relative/a") is None


def test_relative_paths_are_relative_to_the_current_directory(mapper, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "data")
    assert mapper.to_container("sub/x.csv", "x") == "/data/sub/x.csv"


def test_spec_and_override_paths_are_translated_only_for_path_keys(mapper, tmp_path):
    spec = {
        "results_dir": str(tmp_path / "results"),
        "model": {"margin": 2.0},
        "dataset": {"train_dataset": {"csv_path": str(tmp_path / "data" / "t.csv")}, "image_ext": ".jpg"},
        "train": {"results_dir": "${results_dir}/train"},
    }
    out = translate_spec(spec, mapper, PATH_KEYS)
    assert out["results_dir"] == "/results"
    assert out["dataset"]["train_dataset"]["csv_path"] == "/data/t.csv"
    assert out["train"]["results_dir"] == "${results_dir}/train"  # interpolation resolved in the container
    assert out["model"] == {"margin": 2.0} and out["dataset"]["image_ext"] == ".jpg"
    ckpt = f"evaluate.checkpoint={tmp_path}/results/train/oi_model_latest.pth"
    assert translate_override(ckpt, mapper, PATH_KEYS) == ("evaluate.checkpoint=/results/train/oi_model_latest.pth")
    assert translate_override("train.num_epochs=3", mapper, PATH_KEYS) == "train.num_epochs=3"


def test_container_argv_writes_a_translated_spec(mapper, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "results")}))
    plugin = Plugin("stand_in", "stand-in 1.0", PLUGIN)
    workdir = tmp_path / "work"
    workdir.mkdir()
    argv, extra = container_argv(
        plugin, ["train", "-e", str(spec), "train.num_epochs=1"], MountsConfig(mounts=tuple(mapper.mounts)), workdir
    )
    assert argv == ["stand_in", "train", "-e", f"{SPEC_MOUNT}/spec.yaml", "train.num_epochs=1"]
    assert extra == [Mount(workdir, SPEC_MOUNT, True)]
    assert yaml.safe_load((workdir / "spec.yaml").read_text()) == {"results_dir": "/results"}


def test_container_spec_defaults(tmp_path):
    config = MountsConfig(mounts=(Mount(tmp_path, "/data", True),), envs={"A": "1"})
    spec = container_spec(
        "img:1",
        ["stand_in", "train", "-e", "/s.yaml"],
        config,
        uid=1000,
        gid=50,
        plugin_options={"shm_size": "16G", "ipc_mode": "host"},
    )
    assert spec["command"] == ["stand_in", "train", "-e", "/s.yaml"]  # a list, never a shell string
    assert spec["init"] is True
    assert spec["user"] == "1000:50" and spec["environment"] == {"A": "1", "HOME": "/tmp"}
    assert spec["volumes"] == [f"{tmp_path}:/data:ro"]
    assert spec["device_requests"] == [{"count": -1, "capabilities": [["gpu"]]}]
    assert spec["shm_size"] == "16G" and spec["ipc_mode"] == "host"
    assert spec["labels"][LABEL] != container_spec("img:1", [], config)["labels"][LABEL]


def test_container_spec_options_win(tmp_path):
    config = MountsConfig(options={"user": "root", "gpus": [1, 3], "shm_size": "2G", "ulimits": {"nofile": 4096}})
    spec = container_spec("img:1", ["x"], config, uid=1000, gid=50, plugin_options={"shm_size": "16G"})
    assert spec["user"] == "root" and "HOME" not in spec["environment"]
    assert spec["device_requests"] == [{"device_ids": ["1", "3"], "capabilities": [["gpu"]]}]
    assert spec["shm_size"] == "2G" and spec["ulimits"] == {"nofile": 4096}
    assert container_spec("img", ["x"], MountsConfig(options={"gpus": "none"}))["device_requests"] == []
    line = docker_command_line(spec)
    assert line.startswith("docker run --rm --init --user root ")
    assert "--gpus '\"device=1,3\"'" in line and "--shm-size 2G" in line and "--ulimit=nofile=4096" in line
    assert line.endswith(" img:1 x")


def test_default_user_is_the_caller():
    spec = container_spec("img", ["x"], MountsConfig())
    assert spec["user"] == f"{os.getuid()}:{os.getgid()}"


def test_permission_denied_on_the_socket_is_explained(monkeypatch):
    docker = pytest.importorskip("docker")
    from tao_launcher import docker_runner

    def refuse(**kwargs):
        raise docker.errors.DockerException(
            "Error while fetching server API version: ('Connection aborted.', PermissionError(13, 'Permission denied'))"
        )

    monkeypatch.setattr(docker, "from_env", refuse)
    with pytest.raises(
        LauncherError,
        match="permission denied on the Docker socket .*add your user to the 'docker' group .*tao --local",
    ):
        docker_runner.docker_client()


def test_volume_options_are_taken_out_of_the_action_arguments_and_checked(tmp_path):
    from tao_launcher.launch import split_volumes, with_volumes

    argv = ["train", "-e", "s.yaml", "--volume", f"{tmp_path}:/extra:ro", f"--volume={tmp_path}:/more", "k=v"]
    rest, volumes = split_volumes(argv)
    assert rest == ["train", "-e", "s.yaml", "k=v"] and volumes == [f"{tmp_path}:/extra:ro", f"{tmp_path}:/more"]
    config = with_volumes(MountsConfig(), volumes)
    assert config.mounts == (Mount(tmp_path, "/extra", True), Mount(tmp_path, "/more", False))
    for bad, message in [
        ("/only-one-part", "write SOURCE:DESTINATION"),
        (f"{tmp_path}:/x:rwx", "write SOURCE:DESTINATION"),
        (f"{tmp_path}:relative", "the destination must be an absolute path"),
        ("/does/not/exist:/x", "source /does/not/exist does not exist"),
    ]:
        with pytest.raises(LauncherError, match=message):
            with_volumes(MountsConfig(), [bad])
    with pytest.raises(LauncherError, match="are both mounted at /extra"):
        with_volumes(config, [f"{tmp_path}:/extra"])


def test_a_value_with_a_scheme_is_not_a_host_path_and_is_passed_on(mapper):
    spec = {"evaluate": {"checkpoint": "builtin:siamese_grid_deeppcb"}}  # a path key
    assert translate_spec(spec, mapper, PATH_KEYS) == spec
    override = "evaluate.checkpoint=builtin:siamese_grid_deeppcb"
    assert translate_override(override, mapper, PATH_KEYS) == override
    with pytest.raises(LauncherError, match="neither under a mount"):  # a plain path is still checked
        translate_override("evaluate.checkpoint=/elsewhere/x.pth", mapper, PATH_KEYS)


def test_a_volume_that_hands_the_container_this_machine_is_warned_about_as_in_the_mounts_file(tmp_path):
    from tao_launcher.mounts import volume_mount

    warnings = []
    assert volume_mount("/:/host", warn=warnings.append) == Mount(Path("/"), "/host", False)
    assert warnings == ["--volume /:/host: the whole file system (/) is mounted at /host"]
    warnings.clear()
    volume_mount(f"{tmp_path}:/data", warn=warnings.append)
    assert warnings == []
