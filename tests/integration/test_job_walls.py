"""The job service's walls with this plugin: the cases of the tenant-walls report (acme naming evil's folders in
train.results_dir, dataset.test_dataset.csv_path and export.onnx_file), each refused or bound, evil's folder
untouched. The generic battery is launcher/tests/test_tenant_walls.py."""

import shutil
import time

import pytest
import yaml

from tests.conftest import tiny_spec_dict

pytest.importorskip("fastapi", reason="the job service needs tao-launcher[service]")


def snapshot(root):
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture
def service(tmp_path, tiny_data, monkeypatch):
    from fastapi.testclient import TestClient
    from tao_launcher.service.app import ServiceSettings, create_app

    monkeypatch.setenv("TAO_LAUNCHER_PLUGINS", "optical_inspection")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for org in ("acme", "evil"):
        shutil.copytree(tiny_data, tmp_path / "data" / org / "tiny")
    settings = ServiceSettings(data_root=tmp_path / "data", state_dir=tmp_path / "state", api_keys={"*": "k"})
    client = TestClient(create_app(settings))
    token = client.post("/api/v2/login", json={"ngc_key": "k", "ngc_org_name": "acme"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    workspace = client.post("/api/v2/orgs/acme/workspaces", headers=headers,
                            json={"name": "w", "cloud_type": "self_hosted"}).json()["id"]  # fmt: skip
    dataset = client.post("/api/v2/orgs/acme/datasets", headers=headers,
                          json={"workspace": workspace, "cloud_file_path": "tiny/train.csv"}).json()["id"]  # fmt: skip
    tiny = tiny_spec_dict(tiny_data, tmp_path / "unused")
    specs = {"model": tiny["model"], "train": {**tiny["train"], "num_epochs": 1},
             "dataset": {k: v for k, v in tiny["dataset"].items() if not k.endswith("_dataset")}}  # fmt: skip
    evil = tmp_path / "data" / "evil"
    return {"client": client, "headers": headers, "dataset": dataset, "specs": specs, "evil": evil,
            "state": tmp_path / "state"}  # fmt: skip


def post_job(service, action, specs, **extra):
    body = {"kind": "experiment", "network_arch": "optical_inspection", "action": action, "specs": specs, **extra}
    return service["client"].post("/api/v2/orgs/acme/jobs", headers=service["headers"], json=body)


@pytest.mark.parametrize(
    "action, key, value",
    [
        ("train", "dataset.validation_dataset.csv_path", "tiny/val.csv"),
        ("evaluate", "dataset.test_dataset.csv_path", "tiny/test.csv"),
        ("inference", "dataset.infer_dataset.images_dir", "tiny/images"),
        ("train", "train.pretrained_model_path", "tiny/model.pth"),
        ("evaluate", "evaluate.checkpoint", "../../state/evil/x/results/train/oi_model_latest.pth"),
    ],
)
def test_a_path_into_another_orgs_folder_is_a_400_naming_the_key(service, action, key, value):
    before = snapshot(service["evil"])
    specs = yaml.safe_load(yaml.safe_dump(service["specs"]))
    section, *middle, last = key.split(".")
    node = specs.setdefault(section, {})
    for part in middle:
        node = node.setdefault(part, {})
    node[last] = str(service["evil"] / value)
    refused = post_job(service, action, specs)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error_desc"].startswith(f"specs key '{key}': ")
    assert snapshot(service["evil"]) == before
    assert not service["state"].joinpath("acme").exists() or not list(service["state"].joinpath("acme").iterdir())


def test_a_shipped_model_is_a_name_not_a_path(service):
    specs = {**service["specs"], "train": {**service["specs"]["train"], "pretrained_model_path": "builtin:nowhere"}}
    created = post_job(service, "train", specs, train_datasets=[service["dataset"]])
    assert created.status_code == 201, created.text  # the task itself says whether the name is known


@pytest.mark.slow
def test_outputs_named_in_another_orgs_folder_are_bound_to_the_job(service):
    """train.results_dir, results_dir and export.onnx_file naming evil's folder: the jobs are accepted and write
    only inside their own folders."""
    evil_out = str(service["evil"] / "stolen")
    before = snapshot(service["evil"])
    specs = {
        **service["specs"],
        "results_dir": evil_out,
        "train": {**service["specs"]["train"], "results_dir": evil_out},
    }
    trained = post_job(service, "train", specs, train_datasets=[service["dataset"]]).json()["id"]
    exported = None
    for job_id in [trained, "export"]:
        if job_id == "export":  # a child of the training, asked to write its ONNX file into evil's folder
            export_specs = {"model": specs["model"], "dataset": specs["dataset"], "export": {"onnx_file": evil_out}}
            job_id = exported = post_job(service, "export", export_specs, parent_job_id=trained).json()["id"]
        deadline = time.time() + 300
        while time.time() < deadline:
            job = service["client"].get(f"/api/v2/orgs/acme/jobs/{job_id}", headers=service["headers"]).json()
            if job["status"] not in ("Pending", "Running"):
                break
            time.sleep(0.5)
        log = service["client"].get(f"/api/v2/orgs/acme/jobs/{job_id}:logs", headers=service["headers"]).text
        assert job["status"] == "Done", log[-3000:]
    assert snapshot(service["evil"]) == before
    own = service["state"] / "acme"
    assert (own / trained / "results" / "train" / "oi_model_latest.pth").is_file()
    assert (own / exported / "results" / "export" / "oi_model.onnx").is_file()
    spec = yaml.safe_load((own / exported / "spec.yaml").read_text())
    assert "onnx_file" not in spec["export"]
