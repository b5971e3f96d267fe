"""The service's side of the plugin contract: typed request bodies (every field NVIDIA's client sends passes, an
unknown one is a 422 naming it, one it cannot honour a 400 saying so), and a plugin's spec option, spec format and
secret form taken from its declaration rather than assumed."""

import json

import pytest
import yaml
from test_service import API, KEY, client, create_job, login, settings, site, wait_for  # noqa: F401 - fixtures

pytest.importorskip("fastapi", reason="the job service needs tao-launcher[service]")

JOBS = f"{API}/orgs/factory_a/jobs"


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"parent_id": "x"}, 422, "request field 'parent_id' is not known; did you mean parent_job_id?"),
        ({"specs": [1, 2]}, 422, "request field 'specs': Input should be a valid dictionary"),
        ({"train_datasets": "d1"}, 422, "request field 'train_datasets': Input should be a valid list"),
        (
            {"eval_dataset_uri": "s3://b/x"},
            400,
            "request field 'eval_dataset_uri' is not served by tao serve; "
            "create a dataset (create-dataset) and pass its id",
        ),
        ({"automl_settings": {"automl_enabled": True}}, 400, "fake_task declares no AutoML parameters"),
    ],
    ids=["unknown", "specs-type", "list-type", "uri", "automl-undeclared"],
)
def test_a_job_body_is_checked_field_by_field(client, body, status, message):  # noqa: F811
    a = login(client, "factory_a")
    answer = client.post(JOBS, headers=a, json={"kind": "experiment", "network_arch": "fake_task", "action": "train",
                                                **body})  # fmt: skip
    assert answer.status_code == status and answer.json()["error_code"] == status
    assert answer.json()["error_desc"].startswith(message)
    assert client.get(JOBS, headers=a).json()["jobs"] == []  # nothing was created


def test_every_field_of_the_tao_clients_requests_is_accepted(client, settings):  # noqa: F811
    """The fields of tao_sdk 6.26's ExperimentJobReq, DatasetReq, WorkspaceReq and LoginReq that carry no meaning
    here are taken, not refused (the client fills some in by itself)."""
    headers = login(client, "factory_a")
    answer = client.post(f"{API}/login", json={"ngc_key": KEY, "ngc_org_name": "factory_a", "enable_telemetry": False})
    assert answer.status_code == 200
    workspace = client.post(f"{API}/orgs/factory_a/workspaces", headers=headers, json={
        "name": "w", "cloud_type": "self_hosted", "cloud_specific_details": {}, "shared": False, "version": "1",
        "force_create": True}).json()["id"]  # fmt: skip
    dataset = client.post(f"{API}/orgs/factory_a/datasets", headers=headers, json={
        "type": "t", "format": "f", "workspace": workspace, "cloud_file_path": "boards", "name": "n", "shared": False,
        "description": "d", "version": "1", "use_for": ["training"], "force_create": False}).json()["id"]  # fmt: skip
    job = create_job(client, headers, description="d", tags=["a"], workspace=workspace, train_datasets=[dataset],
                     docker_env_vars={}, force_create=True, skip_dataset_validation=True, dataset_format="f",
                     automl_settings={"automl_enabled": False})  # fmt: skip
    assert wait_for(client, "factory_a", headers, job, ("Done", "Error"))["status"] == "Done"
    refused = client.post(f"{JOBS}/{job}:resume", headers=headers, json={"specs": {}, "parent_id": "x"})
    assert refused.status_code == 422 and "did you mean parent_job_id?" in refused.json()["error_desc"]


DECLARED = """
import json, os, sys
from pathlib import Path

PLUGIN = {"protocol": "1.4", "name": "json_task", "version": "1.0", "summary": "takes a JSON spec",
          "argv_prefix": ["json_task"], "image": "local/json:1", "handler": "jsonsvc:handle",
          "actions": [{"name": "run", "help": "run"}], "path_options": ["--spec"], "path_keys": ["results_dir"],
          "output_keys": ["results_dir"], "secret_keys": ["key"], "spec_format": "json", "secret_spec_value": ""}

def handle(argv):
    spec = json.loads(Path(argv[argv.index("--spec") + 1]).read_text())
    out = Path(spec["results_dir"]) / "run"
    out.mkdir(parents=True)
    (out / "seen.json").write_text(json.dumps({"argv": argv, "spec": spec,
                                               "key": os.environ.get("TAO_JOB_ENCRYPTION_KEY")}))
    (out / "status.json").write_text(json.dumps({"status": "SUCCESS"}) + "\\n")
    return 0
"""


def test_the_spec_option_format_and_secret_form_are_the_plugins(client, site, settings, monkeypatch):  # noqa: F811
    (site / "jsonsvc.py").write_text(DECLARED)
    info = site / "jsonsvc-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: jsonsvc\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tao_launcher.plugins]\njson_task = jsonsvc:PLUGIN\n")
    monkeypatch.setenv("TAO_LAUNCHER_PLUGINS", "fake_task,json_task")
    from fastapi.testclient import TestClient
    from tao_launcher.service.app import create_app

    service = TestClient(create_app(settings))
    headers = login(service, "factory_a")
    created = service.post(
        JOBS,
        headers=headers,
        json={
            "kind": "experiment",
            "network_arch": "json_task",
            "action": "run",
            "specs": {"n": 1},
            "encryption_key": "K9",
        },
    )
    assert created.status_code == 201, created.text
    job = created.json()["id"]
    assert wait_for(service, "factory_a", headers, job, ("Done", "Error"))["status"] == "Done"
    job_dir = settings.state_dir / "factory_a" / job
    seen = json.loads((job_dir / "results" / "run" / "seen.json").read_text())
    assert seen["argv"] == ["run", "--spec", str(job_dir / "spec.json")]  # its option, its format
    assert seen["spec"] == {"n": 1, "results_dir": str(job_dir / "results")}  # no key written into the spec
    assert seen["key"] == "K9"  # it reads the key from its environment, as it declared
    assert not (job_dir / "spec.yaml").exists() and yaml.safe_load((job_dir / "spec.json").read_text())["n"] == 1


def test_a_plugin_named_unlike_its_entry_point_is_skipped_in_one_line(site, monkeypatch):  # noqa: F811
    (site / "misnamed.py").write_text(DECLARED.replace('"json_task"', '"other_name"').replace("jsonsvc", "misnamed"))
    info = site / "misnamed-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: misnamed\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tao_launcher.plugins]\njson_task = misnamed:PLUGIN\n")
    monkeypatch.setenv("TAO_LAUNCHER_PLUGINS", "json_task")
    from tao_launcher.plugins import discover

    warnings: list[str] = []
    assert discover(warn=warnings.append) == {}
    assert warnings == [
        "plugin 'json_task' from misnamed 1.0 declares the name 'other_name'; skipped (the entry point's name and "
        "PluginSpec.name must be the same)"
    ]
