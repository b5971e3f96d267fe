"""The job service's walls with this plugin: the cases of the tenant-walls report (acme naming evil's folders in
train.results_dir, dataset.test_dataset.csv_path and export.onnx_file), each refused or bound, evil's folder
untouched. The generic battery is launcher/tests/test_tenant_walls.py."""

import shutil

import pytest
import yaml

from tests.conftest import tiny_spec_dict
from tests.integration.hardening_helpers import snapshot
from tests.integration.service_helpers import OrgClient, service, tiny_job_specs

pytest.importorskip("fastapi", reason="the job service needs tao-launcher[service]")


@pytest.fixture
def acme(tmp_path, tiny_data, monkeypatch):
    """acme's client; evil's data beside acme's (tmp_path/data/evil)."""
    client = service(tmp_path, monkeypatch)
    for org in ("acme", "evil"):
        shutil.copytree(tiny_data, tmp_path / "data" / org / "tiny")
    org = OrgClient(client, "acme")
    org.specs = tiny_job_specs(tiny_spec_dict(tiny_data, tmp_path / "unused"))
    org.evil, org.state = tmp_path / "data" / "evil", tmp_path / "state"
    return org


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
def test_a_path_into_another_orgs_folder_is_a_400_naming_the_key(acme, action, key, value):
    before = snapshot(acme.evil)
    specs = yaml.safe_load(yaml.safe_dump(acme.specs))
    section, *middle, last = key.split(".")
    node = specs.setdefault(section, {})
    for part in middle:
        node = node.setdefault(part, {})
    node[last] = str(acme.evil / value)
    refused = acme.create(action, specs)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error_desc"].startswith(f"specs key '{key}': ")
    assert snapshot(acme.evil) == before
    assert not (acme.state / "acme").exists() or not list((acme.state / "acme").iterdir())


def test_a_shipped_model_is_a_name_not_a_path(acme):
    specs = {**acme.specs, "train": {**acme.specs["train"], "pretrained_model_path": "builtin:nowhere"}}
    created = acme.create("train", specs, train_datasets=[acme.dataset("tiny/train.csv")])
    assert created.status_code == 201, created.text  # the task itself says whether the name is known


@pytest.mark.slow
def test_outputs_named_in_another_orgs_folder_are_bound_to_the_job(acme):
    """train.results_dir, results_dir and export.onnx_file naming evil's folder: the jobs are accepted and write
    only inside their own folders."""
    evil_out = str(acme.evil / "stolen")
    before = snapshot(acme.evil)
    specs = {**acme.specs, "results_dir": evil_out, "train": {**acme.specs["train"], "results_dir": evil_out}}
    trained = acme.run("train", specs, train_datasets=[acme.dataset("tiny/train.csv")])
    # a child of the training, asked to write its ONNX file into evil's folder
    exported = acme.run("export", {**acme.specs, "export": {"onnx_file": evil_out}}, parent_job_id=trained)
    assert snapshot(acme.evil) == before
    own = acme.state / "acme"
    assert (own / trained / "results" / "train" / "oi_model_latest.pth").is_file()
    assert (own / exported / "results" / "export" / "oi_model.onnx").is_file()
    spec = yaml.safe_load((own / exported / "spec.yaml").read_text())
    assert "onnx_file" not in spec["export"]


@pytest.mark.slow
def test_image_paths_in_a_csv_stay_inside_the_walls_too(acme):
    """acme's own CSV names evil's images (absolute paths, allowed by dataset.allow_absolute_paths): the job's
    task refuses them, naming the walls, and reads none of evil's images."""
    import os

    import pandas as pd

    frame = pd.read_csv(acme.evil.parent / "acme" / "tiny" / "train.csv", dtype=str)
    frame["input_path"] = [str(acme.evil / "tiny" / "images" / p) for p in frame["input_path"]]
    frame.to_csv(acme.evil.parent / "acme" / "tiny" / "stolen.csv", index=False)
    evil_images = sorted((acme.evil / "tiny" / "images").rglob("*.jpg"))
    for image in evil_images:
        os.utime(image, (1_000_000_000, 1_000_000_000))  # a read moves the access time
    specs = {**acme.specs, "dataset": {**acme.specs["dataset"], "allow_absolute_paths": True}}
    created = acme.create("train", specs, train_datasets=[acme.dataset("tiny/stolen.csv")])
    assert created.status_code == 201, created.text
    job = acme.finished(created.json()["id"])
    log = acme.get(f"/jobs/{job['id']}:logs").text
    assert job["status"] == "Error" and job["exit_code"] == 3, log[-2000:]
    assert "outside this job's folders and its org's data; a job reads only its own org's images" in log
    assert all(image.stat().st_atime == 1_000_000_000 for image in evil_images)
