"""End to end through a real Docker engine: `tao model optical_inspection ...` in a one-shot container.

The engine is the private dockerd of ../shared/tools/docker-engine (started by .ci/run). The image is built here
from its Debian python3.11 image: the test's own Python environment and checkout are bind-mounted read-only, so
the container runs exactly the code under test. The job service's container jobs run in the image as the
Dockerfile builds it (tests/image_build.py), nothing of this machine in it. Skipped, with the reason, where no
engine answers.
"""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import LIBSTDCXX, cli, tiny_spec_dict

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
IMAGE = "local/tao-siamese-oi:test"
WRAPPER = """#!/bin/sh
exec python3 -c 'import os, runpy, site, sys; site.addsitedir(os.environ["OI_SITE"]); module = sys.argv[2]; \
sys.argv = [module, *sys.argv[3:]]; runpy.run_module(module, run_name="__main__", alter_sys=True)' "$@"
"""
WRAPPER = """#!/bin/sh
exec python3 -c 'import os, site, sys; site.addsitedir(os.environ["OI_SITE"]); sys.argv[0] = "optical_inspection"; \
from tao_siamese_oi.entry_points.optical_inspection import main; main()' "$@"
"""


@pytest.fixture(scope="module")
def client(docker_engine):
    return docker_engine


@pytest.fixture(scope="module")
def image(client, py_base_image):
    base = py_base_image
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = (
            f"FROM {base}\nCOPY libstdc++.so.6 {LIBSTDCXX}\nCOPY optical_inspection /usr/local/bin/optical_inspection\n"
        ).encode()
        for name, data, mode in [
            ("Dockerfile", dockerfile, 0o644),
            ("optical_inspection", WRAPPER.encode(), 0o755),
            ("libstdc++.so.6", LIBSTDCXX.resolve().read_bytes(), 0o644),
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=IMAGE, rm=True)
    return IMAGE


@pytest.fixture
def setup(tmp_path, tiny_data, image):
    results = tmp_path / "results"
    results.mkdir()
    mounts = [
        {"source": str(ROOT), "destination": str(ROOT), "read_only": True},
        {"source": str(tiny_data), "destination": "/data", "read_only": True},
        {"source": str(results), "destination": "/results"},
    ]
    if ROOT not in Path(sys.prefix).parents:
        mounts.append({"source": sys.prefix, "destination": sys.prefix, "read_only": True})
    mounts_file = tmp_path / "mounts.json"
    mounts_file.write_text(
        json.dumps(
            {
                "Mounts": mounts,
                "Envs": [
                    {"variable": "OI_SITE", "value": sysconfig.get_paths()["purelib"]},
                    {"variable": "OI_RESULTS", "value": "/results/run"},
                ],
                "DockerOptions": {"gpus": "none", "network": "none"},
            }
        )
    )
    spec = tiny_spec_dict(tiny_data, results)
    spec["results_dir"] = "${oc.env:OI_RESULTS}"  # resolved in the container: proves Envs reach the task
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "LAUNCHER_MOUNTS": str(mounts_file), "TAO_OPTICAL_INSPECTION_IMAGE": image}
    return {"spec": spec_file, "results": results, "env": env, "mounts": mounts_file}


def tao(setup, *args, **kwargs):
    return subprocess.run(
        [cli("tao"), "model", "optical_inspection", *args],
        capture_output=True,
        text=True,
        env=setup["env"],
        timeout=600,
        **kwargs,
    )


def leftover_containers(client) -> list:
    return client.containers.list(all=True, filters={"label": "tao_launcher.run"})


def test_train_in_a_container_writes_caller_owned_files_on_the_host(setup, client):
    out = tao(setup, "train", "-e", str(setup["spec"]), "train.num_epochs=1")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    latest = setup["results"] / "run" / "train" / "oi_model_latest.pth"  # ${oc.env:OI_RESULTS} = /results/run
    assert latest.is_file()
    assert latest.stat().st_uid == os.getuid() and latest.stat().st_gid == os.getgid()
    status = [json.loads(line) for line in (latest.parent / "status.json").read_text().splitlines()]
    assert status[-1]["status"] == "SUCCESS"
    assert "Trained 1 epochs" in out.stdout + out.stderr  # the task's log, streamed through the launcher
    # ... naming host paths: the container wrote to /results/run/train, the user knows it as their folder
    assert f"latest checkpoint {latest}" in out.stdout + out.stderr and " /results/" not in out.stdout + out.stderr
    assert leftover_containers(client) == []


def test_a_failing_spec_gives_the_tasks_exit_code(setup, client):
    out = tao(setup, "train", "-e", str(setup["spec"]), "train.num_epoch=1")
    assert out.returncode == 2
    assert "unknown key train.num_epoch; did you mean train.num_epochs?" in out.stdout + out.stderr
    assert leftover_containers(client) == []


@pytest.mark.parametrize(
    "signum, code, said", [(signal.SIGINT, 130, "SIGINT (Ctrl-C)"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_a_signal_reaches_the_task_its_code_comes_back_and_the_container_goes(setup, client, signum, code, said):
    name = signal.Signals(signum).name
    proc = subprocess.Popen(
        [
            cli("tao"),
            "model",
            "optical_inspection",
            "train",
            "-e",
            str(setup["spec"]),
            "train.num_epochs=500",
            f"results_dir={setup['results']}/{name}",
        ],
        env=setup["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    status = setup["results"] / name / "train" / "status.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (status.exists() and '"epoch"' in status.read_text()):
        time.sleep(0.5)
    if not status.exists():
        proc.kill()
        pytest.fail("training never started in the container: " + proc.communicate()[0][-2000:])
    proc.send_signal(signum)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == code, output[-2000:]
    assert f"forwarding {name} to the task" in output and f"error: Interrupted by {said}" in output
    last = json.loads(status.read_text().splitlines()[-1])
    assert last["status"] == "FAILURE" and last["message"] == f"Interrupted by {said}."
    assert leftover_containers(client) == []


def test_no_gpu_runtime_is_a_one_line_error_with_the_cpu_hint(setup, client):
    mounts = json.loads(setup["mounts"].read_text())
    mounts["DockerOptions"]["gpus"] = "all"
    setup["mounts"].write_text(json.dumps(mounts))
    out = tao(setup, "train", "-e", str(setup["spec"]))
    assert out.returncode == 2
    assert "Docker has no GPU runtime here" in out.stderr and '"gpus": "none"' in out.stderr
    assert leftover_containers(client) == []


def test_missing_image_and_dry_run(setup):
    env = {**setup["env"], "TAO_OPTICAL_INSPECTION_IMAGE": "local/not-built:nope"}
    out = subprocess.run(
        [cli("tao"), "model", "optical_inspection", "train", "-e", str(setup["spec"])],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 2 and "image local/not-built:nope is not on this machine; build it" in out.stderr
    dry = subprocess.run(
        [cli("tao"), "--dry-run", "model", "optical_inspection", "evaluate", "-e", str(setup["spec"])],
        capture_output=True,
        text=True,
        env=setup["env"],
    )
    assert dry.returncode == 0
    assert dry.stdout.startswith("docker run --rm --init --user ")
    assert f"--volume {setup['results']}:/results:rw" in dry.stdout


def test_a_dry_run_command_works_when_pasted(setup, client, tmp_path):
    """The printed command is run by a shell with the docker CLI, as a user would paste it."""
    if not shutil.which("docker"):
        pytest.skip("no docker command-line client on this machine")
    env = {**setup["env"], "XDG_CACHE_HOME": str(tmp_path / "cache")}
    dry = subprocess.run(
        [cli("tao"), "--dry-run", "model", "optical_inspection", "validate", "-e", str(setup["spec"])],
        capture_output=True,
        text=True,
        env=env,
    )
    assert dry.returncode == 0, dry.stderr
    assert "the translated spec is kept in" in dry.stderr
    pasted = subprocess.run(["bash", "-c", dry.stdout.strip()], capture_output=True, text=True, env=env, timeout=300)
    assert pasted.returncode == 0, pasted.stdout[-2000:] + pasted.stderr[-2000:]
    assert '"train": {"pairs": 36' in pasted.stdout


def test_the_job_service_runs_a_job_in_the_plugins_container_and_cancels_one(oi_image, client, tiny_data, tmp_path):
    """``--backend-type local-docker``: the job runs in the image as the Dockerfile builds it (nothing of this
    machine mounted but the job's folders), the container goes once its code is read."""
    import shutil

    pytest.importorskip("fastapi", reason="the job service needs tao-launcher[service]")
    from fastapi.testclient import TestClient
    from tao_launcher.service.app import ServiceSettings, create_app

    shutil.copytree(tiny_data, tmp_path / "data" / "acme" / "tiny")
    docker = {"image": oi_image}
    settings = ServiceSettings(tmp_path / "data", tmp_path / "state", api_keys={"*": "k"}, docker=docker)
    service = TestClient(create_app(settings))
    token = service.post("/api/v2/login", json={"ngc_key": "k", "ngc_org_name": "acme"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    api = "/api/v2/orgs/acme"
    workspace = service.post(f"{api}/workspaces", headers=headers, json={"name": "w", "cloud_type": "self_hosted"})
    body = {"workspace": workspace.json()["id"], "cloud_file_path": "tiny/train.csv"}
    dataset = service.post(f"{api}/datasets", headers=headers, json=body).json()["id"]
    spec = tiny_spec_dict(tiny_data, tmp_path / "ignored")
    spec.pop("encryption_key")
    for split in ("validation_dataset", "test_dataset", "infer_dataset"):  # the job's datasets are bound by id
        spec["dataset"].pop(split)

    def job(epochs: int, **extra) -> str:
        spec["train"]["num_epochs"] = epochs
        body = {"kind": "experiment", "name": "n", "network_arch": "optical_inspection", "action": "train",
                "specs": spec, "train_datasets": [dataset], **extra}  # fmt: skip
        body["backend_details"] = {"backend_type": "local-docker"}
        created = service.post(f"{api}/jobs", headers=headers, json=body)
        assert created.status_code == 201, created.text
        return created.json()["id"]

    def status(job_id: str, states, timeout=300) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            current = service.get(f"{api}/jobs/{job_id}", headers=headers).json()
            if current["status"] in states:
                return current
            time.sleep(1)
        pytest.fail(f"{job_id}: {current}")

    before = {c.id for c in leftover_jobs(client)}  # a test run killed earlier may have left some
    done = status(job(1), ("Done", "Error"))
    assert done["status"] == "Done", service.get(f"{api}/jobs/{done['id']}:logs", headers=headers).text[-2000:]
    assert done["job_details"]["status"] == "SUCCESS"

    secret = "container-key-5521"
    sealed = job(1, encryption_key=secret)
    container = next(c for c in leftover_jobs(client) if c.id not in before)  # running, or exited and not collected
    assert not [v for v in container.attrs["Config"]["Env"] if secret in v]  # docker inspect shows it sealed only
    encrypted = status(sealed, ("Done", "Error"))
    assert encrypted["status"] == "Done", service.get(f"{api}/jobs/{sealed}:logs", headers=headers).text[-2000:]
    checkpoint = tmp_path / "state" / "acme" / sealed / "results" / "train" / "oi_model_latest.pth"
    assert checkpoint.read_bytes().startswith(b"TAO-OI-AESGCM-1\n")
    long = job(500)
    status_file = tmp_path / "state" / "acme" / long / "results" / "train" / "status.json"
    deadline = time.time() + 120
    while not (status_file.exists() and '"epoch"' in status_file.read_text()) and time.time() < deadline:
        time.sleep(0.5)
    assert service.post(f"{api}/jobs/{long}:cancel", headers=headers).status_code == 200
    deadline = time.time() + 60
    while {c.id for c in leftover_jobs(client)} - before and time.time() < deadline:
        service.get(f"{api}/jobs/{long}", headers=headers)
        time.sleep(1)
    assert json.loads(status_file.read_text().splitlines()[-1])["message"] == "Interrupted by SIGTERM."
    assert {c.id for c in leftover_jobs(client)} - before == set()  # the service removed its containers


def leftover_jobs(client) -> list:
    from tests.image_build import IMAGE as BUILT

    return [c for c in client.containers.list(all=True) if c.attrs["Config"]["Image"].startswith(BUILT)]


def tao_cmd(setup, *args, env=None):
    return subprocess.run([cli("tao"), *args], capture_output=True, text=True, env=env or setup["env"], timeout=120)


def test_tao_list_and_stop_see_only_the_launchers_containers(setup, client, tiny_data):
    stranger = client.containers.run(os.environ.get("TEST_IMAGE", "local/busybox:test"), "sleep 300", detach=True)
    try:
        (setup["results"] / "extra").mkdir()  # --volume, NVIDIA's per-command mount, carries the results here
        proc = subprocess.Popen(
            [cli("tao"), "model", "optical_inspection", "train", "-e", str(setup["spec"]), "train.num_epochs=500",
             "--volume", f"{setup['results'] / 'extra'}:/extra", "results_dir=/extra/run"],
            env=setup["env"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        status = setup["results"] / "extra" / "run" / "train" / "status.json"
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not status.exists():
            time.sleep(0.5)
        assert status.exists(), proc.communicate()[0][-2000:] if proc.poll() is not None else "no status.json"
        listed = tao_cmd(setup, "list")
        assert listed.returncode == 0, listed.stderr
        rows = [line.split() for line in listed.stdout.splitlines()[1:]]
        assert len(rows) == 1 and rows[0][1:3] == ["optical_inspection", "train"]
        assert stranger.short_id not in listed.stdout  # not ours: neither listed
        refused = tao_cmd(setup, "stop", "--container_id", stranger.id[:12])
        assert refused.returncode != 0 and "matches none of the running tao containers" in refused.stderr
        stopped = tao_cmd(setup, "stop", "--container_id", rows[0][0])
        assert stopped.returncode == 0, stopped.stderr
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 143, output[-2000:]  # the task saw SIGTERM: status.json says so
        assert json.loads(status.read_text().splitlines()[-1])["message"] == "Interrupted by SIGTERM."
        assert (
            leftover_containers(client) == [] and tao_cmd(setup, "list").stdout.strip() == "no running tao containers"
        )
        stranger.reload()
        assert stranger.status == "running"  # never touched
    finally:
        stranger.remove(force=True)


def test_tao_info_names_each_plugins_image_and_whether_it_is_here(setup, image):
    info = tao_cmd(setup, "info", "--verbose")
    assert info.returncode == 0, info.stderr
    assert info.stdout.startswith("tao launcher ")
    line = next(line for line in info.stdout.splitlines() if line.strip().startswith("optical_inspection "))
    from tao_siamese_oi.plugin import IMAGE

    assert f"image {IMAGE} " in line and line.endswith(("present", "missing"))
    assert (IMAGE in {t for i in docker_images() for t in i.tags}) == line.endswith("present")
    mounts = len(json.loads(setup["mounts"].read_text())["Mounts"])
    assert f"mounts file {setup['mounts']}: {mounts} mounts, 2 env variables" in info.stdout
    assert f"    {setup['results']} -> /results" in info.stdout  # --verbose: each mount


def docker_images():
    import docker

    return docker.from_env().images.list()


def test_the_plugins_missing_image_names_the_command_that_builds_it(setup):
    from tao_siamese_oi.plugin import IMAGE

    if IMAGE in {t for i in docker_images() for t in i.tags}:
        pytest.skip(f"{IMAGE} is built on this engine")
    env = {k: v for k, v in setup["env"].items() if k != "TAO_OPTICAL_INSPECTION_IMAGE"}
    out = tao_cmd(setup, "model", "optical_inspection", "validate", "-e", str(setup["spec"]), env=env)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert f"image {IMAGE} is not on this machine; build it (docker build -t {IMAGE} . in a checkout" in out.stderr
    assert "--build-arg BASE_IMAGE=python:3.11-slim" in out.stderr
