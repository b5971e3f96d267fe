"""The example plugin (launcher/examples/example_plugin), installed as a plugin author would install theirs, runs
through every way the launcher offers: the command line and the job service (train, a base experiment, evaluate by
parent, the inference microservice). No model plugin is needed."""

import io
import json
import subprocess
import sys
import tarfile
import time

import pytest
import yaml

pytestmark = pytest.mark.slow  # subprocesses and jobs

API = "/api/v2/orgs/lab"


def test_the_command_line_runs_it_locally(tmp_path):
    (tmp_path / "nums.txt").write_text("1\n2\n3\n4\n")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({"results_dir": "r", "data": "nums.txt"}))
    tao = [sys.executable, "-m", "tao_launcher.cli", "--local", "model", "example_task"]
    done = subprocess.run([*tao, "train", "-e", "spec.yaml", "epochs=3"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in (tmp_path / "r" / "train" / "status.json").read_text().splitlines()]
    assert [line.get("epoch") for line in lines] == [0, 1, 2, None] and lines[-1]["kpi"] == {"samples": 4}
    assert json.loads((tmp_path / "r" / "train" / "model.json").read_text())["mean"] == 2.5


@pytest.fixture
def lab(tmp_path, monkeypatch):
    pytest.importorskip("fastapi", reason="the job service needs tao-launcher[service]")
    from fastapi.testclient import TestClient
    from tao_launcher.service.app import ServiceSettings, create_app

    monkeypatch.setenv("TAO_LAUNCHER_PLUGINS", "example_task")
    (tmp_path / "data" / "lab").mkdir(parents=True)
    (tmp_path / "data" / "lab" / "train.txt").write_text("10\n20\n30\n")
    (tmp_path / "data" / "lab" / "eval.txt").write_text("20\n50\n")
    client = TestClient(create_app(ServiceSettings(tmp_path / "data", tmp_path / "state", api_keys={"*": "k"})))
    token = client.post("/api/v2/login", json={"ngc_key": "k", "ngc_org_name": "lab"}).json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def finished(client, job_id: str) -> dict:
    deadline = time.time() + 60
    while (job := client.get(f"{API}/jobs/{job_id}").json())["status"] in ("Pending", "Running"):
        assert time.time() < deadline, job
        time.sleep(0.2)
    return job


def test_the_job_service_runs_it_by_its_declaration(lab, tmp_path):
    workspace = lab.post(f"{API}/workspaces", json={"name": "w", "cloud_type": "self_hosted"}).json()["id"]
    dataset = {
        name: lab.post(
            f"{API}/datasets",
            json={"type": "numbers", "format": "text", "workspace": workspace, "cloud_file_path": f"{name}.txt"},
        ).json()["id"]  # fmt: skip
        for name in ("train", "eval")
    }
    (longer,) = [e["id"] for e in lab.get(f"{API}/jobs:list_base_experiments").json()["experiments"]]
    schema = lab.get(f"{API}/jobs:schema", params={"action": "train", "base_experiment_id": longer}).json()
    assert schema["default"]["epochs"] == 5  # the plugin's defaults under the base experiment's overrides

    job = {"kind": "experiment", "network_arch": "example_task", "action": "train", "specs": {"data": "x"},
           "train_datasets": [dataset["train"]], "base_experiment_ids": [longer]}  # fmt: skip
    train = lab.post(f"{API}/jobs", json=job).json()["id"]
    status = finished(lab, train)
    assert status["status"] == "Done" and status["job_details"]["max_epoch"] == 4  # the overrides reached the task
    assert status["job_details"]["kpi"] == {"samples": 3}
    latest = lab.get(f"{API}/jobs/{train}:download_selective_files", params={"latest_model": True})
    with tarfile.open(fileobj=io.BytesIO(latest.content)) as tar:  # the plugin's model_files: its model only
        assert tar.getnames() == ["train/model.json"]
    one = lab.get(f"{API}/jobs/{train}:download_selective_files",
                  params={"file_lists": ["train/model.json"], "tar_files": False})  # fmt: skip
    assert json.loads(one.content)["mean"] == 20.0  # the file itself, as the client saves it
    model = tmp_path / "state" / "lab" / train / "results" / "train" / "model.json"
    kept = model.read_bytes()
    (tmp_path / "outside.json").write_text('{"secret": "not the job\'s"}')
    model.unlink()
    model.symlink_to(tmp_path / "outside.json")  # the job's own code can swap its files for links
    leaked = lab.get(f"{API}/jobs/{train}:download_selective_files", params={"latest_model": True})
    assert leaked.status_code == 404 and b"not the job" not in leaked.content  # a link out is no model of the job
    model.unlink()
    model.write_bytes(kept)
    best = lab.get(f"{API}/jobs/{train}:download_selective_files", params={"best_model": True})
    assert best.status_code == 404 and best.json()["error_desc"] == (
        "example_task keeps no best model apart (it names: latest_model)"
    )
    spec = yaml.safe_load((tmp_path / "state" / "lab" / train / "spec.yaml").read_text())
    assert spec["data"] == str(tmp_path / "data" / "lab" / "train.txt")  # bound by the hook, the client's dropped

    evaluate = lab.post(
        f"{API}/jobs",
        json={
            "kind": "experiment",
            "network_arch": "example_task",
            "action": "evaluate",
            "specs": {},
            "eval_dataset": dataset["eval"],
            "parent_job_id": train,
        },
    )
    assert finished(lab, evaluate.json()["id"])["job_details"]["kpi"] == {
        "max_score": pytest.approx(30 / 8.16496580927726)
    }

    ms = lab.post(f"{API}/inference_microservices:start", json={"model_path": train}).json()["id"]
    deadline = time.time() + 60
    while lab.get(f"{API}/inference_microservices/{ms}:status").json()["status"] != "Ready":
        assert time.time() < deadline
        time.sleep(0.2)
    assert lab.post(f"{API}/inference_microservices/{ms}:inference", json={"input": 20}).json() == {"score": 0.0}
    refused = lab.post(f"{API}/inference_microservices/{ms}:inference", json={"input": "x"})
    assert refused.status_code == 400 and refused.json()["error_desc"] == "input must be a number"
    lab.delete(f"{API}/inference_microservices/{ms}:stop")
