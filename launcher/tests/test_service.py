"""The job service over HTTP with a throw-away plugin: auth, org isolation, paths, schemas, jobs run by the local
executor (finish, cancel, parents), and a restart that finds running jobs again."""

import hashlib
import io
import json
import tarfile
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the job service needs tao-launcher[service]")
from fastapi.testclient import TestClient  # noqa: E402
from tao_launcher.service.app import ServiceSettings, create_app  # noqa: E402

API = "/api/v2"
KEY = "correct horse battery staple"

FAKE_PLUGIN = """
import json, sys, time
from pathlib import Path
import yaml

PLUGIN = {"protocol": "1.1", "name": "fake_task", "version": "1.0", "summary": "a throw-away plugin",
          "argv_prefix": ["fake_task"], "image": "local/fake:1", "handler": "fakesvc:handle",
          "actions": [{"name": "train", "help": "train"}, {"name": "evaluate", "help": "evaluate"}],
          "schema": "fakesvc:schema", "job_specs": "fakesvc:job_specs",
          "base_experiments": [{"name": "small", "overrides": {"model": {"size": 1}}}],
          "secret_keys": ["encryption_key"], "path_keys": ["results_dir", "*.results_dir", "data.*", "*.model"],
          "output_keys": ["results_dir", "*.results_dir", "*.out"], "named_models": ["builtin:"],
          "job_env": ["FAKE_MODE"], "inference_server": "fakesvc:predictor", "path_options": ["-e"]}

def schema(action):
    return {"results_dir": "results", "model": {"size": 8}, action: {"sleep": 0.0, "epochs": 2}}

def job_specs(action, specs, datasets, ancestors, results_dir):
    return {**specs, "results_dir": results_dir, "datasets": datasets, "ancestors": ancestors}

def predictor(model_dir):
    def predict(request):
        time.sleep(float(request.get("sleep", 0)))
        return {"score": len(request.get("input", "")), "model_dir": str(model_dir)}
    return predict

def handle(argv):
    action, spec = argv[0], yaml.safe_load(Path(argv[argv.index("-e") + 1]).read_text())
    out = Path(spec["results_dir"]) / action
    out.mkdir(parents=True, exist_ok=True)
    status = out / "status.json"
    def write(**line):
        with status.open("a") as f:
            f.write(json.dumps(line) + "\\n")
    write(status="STARTED", message="started")
    print("fake", action, "spec", json.dumps(spec, sort_keys=True), flush=True)
    import hashlib, os
    key = os.environ.get("TAO_JOB_ENCRYPTION_KEY")
    print("key sha256", hashlib.sha256(key.encode()).hexdigest() if key else None, flush=True)
    if spec.get("print_env"):
        print("env " + spec["print_env"] + "=" + os.environ.get(spec["print_env"], ""), flush=True)
    try:  # what code in the job could learn from its wrapper's environment (same user: /proc is readable)
        environ = Path(f"/proc/{os.getppid()}/environ").read_text().split("\\0")
        parent = dict(v.split("=", 1) for v in environ if "=" in v)
        print("wrapper secret file", parent.get("TAO_JOB_SECRET_FILE"), flush=True)
    except OSError:
        pass
    for probe in filter(None, os.environ.get("JOB_VAR_PROBES", "").split(",")):  # code a tenant got to run
        try:
            print("probe", probe, "read", len(Path(probe).read_bytes()), "bytes", flush=True)
        except OSError as exc:
            print("probe", probe, "denied", type(exc).__name__, flush=True)
    for epoch in range(spec[action]["epochs"]):
        time.sleep(spec[action]["sleep"])
        last = spec[action]["epochs"] - 1
        write(status="RUNNING", message="epoch", epoch=epoch, max_epoch=last, kpi={"loss": 1.0 / (epoch + 1)})
    (out / "model.pth").write_text("weights")
    for name, path in (spec.get("data") or {}).items():  # what a task reads: the job's walls must allow it
        print("read", name, Path(path).read_text()[:20], flush=True)
    write(status="SUCCESS", message="done", kpi={"loss": 0.5})
    return 0
"""


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "fakesvc.py").write_text(FAKE_PLUGIN)
    info = site / "fakesvc-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakesvc\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tao_launcher.plugins]\nfake_task = fakesvc:PLUGIN\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))  # the jobs' processes find the plugin too
    monkeypatch.setenv("TAO_LAUNCHER_PLUGINS", "fake_task")
    return site


@pytest.fixture
def settings(tmp_path, site) -> ServiceSettings:
    data = tmp_path / "data"
    for org in ("factory_a", "factory_b"):
        (data / org / "boards").mkdir(parents=True)
        (data / org / "boards" / "pairs.csv").write_text("input_path,golden_path,object_name,label\n")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "pairs.csv").write_text("not yours\n")
    return ServiceSettings(data_root=data, state_dir=tmp_path / "state", api_keys={"*": KEY})


@pytest.fixture
def client(settings) -> TestClient:
    return TestClient(create_app(settings))


def login(client, org: str) -> dict:
    response = client.post(f"{API}/login", json={"ngc_key": KEY, "ngc_org_name": org})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def wait_for(client, org, headers, job_id, states, timeout=60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"{API}/orgs/{org}/jobs/{job_id}", headers=headers).json()
        if job["status"] in states:
            return job
        time.sleep(0.2)
    pytest.fail(f"job {job_id} never reached {states}: {job}")


def test_tokens_are_needed_and_bound_to_their_org(client, settings):
    assert client.post(f"{API}/login", json={"ngc_key": "wrong", "ngc_org_name": "factory_a"}).status_code == 401
    assert client.get(f"{API}/orgs/factory_a/workspaces").status_code == 401
    headers_a = login(client, "factory_a")
    assert client.get(f"{API}/orgs/factory_a/workspaces", headers=headers_a).status_code == 200
    refused = client.get(f"{API}/orgs/factory_b/workspaces", headers=headers_a)
    assert refused.status_code == 401 and refused.json() == {
        "error_desc": "missing or invalid token for this org; log in with tao login",
        "error_code": 401,
    }


def test_orgs_never_see_each_others_workspaces_datasets_or_jobs(client):
    a, b = login(client, "factory_a"), login(client, "factory_b")
    workspace = client.post(
        f"{API}/orgs/factory_a/workspaces", headers=a, json={"name": "w", "cloud_type": "self_hosted"}
    )
    dataset = client.post(f"{API}/orgs/factory_a/datasets", headers=a,
                          json={"type": "numbers", "format": "default", "workspace": workspace.json()["id"],
                                "cloud_file_path": "boards/pairs.csv"})  # fmt: skip
    assert dataset.status_code == 201, dataset.text
    assert client.get(f"{API}/orgs/factory_b/datasets/{dataset.json()['id']}", headers=b).status_code == 404
    assert client.get(f"{API}/orgs/factory_b/datasets", headers=b).json() == {"datasets": []}
    assert client.get(f"{API}/orgs/factory_b/workspaces", headers=b).json() == {"workspaces": []}
    reuse = client.post(f"{API}/orgs/factory_b/datasets", headers=b,
                        json={"workspace": workspace.json()["id"], "cloud_file_path": "boards/pairs.csv"})  # fmt: skip
    assert reuse.status_code == 404  # org b cannot use org a's workspace


@pytest.mark.parametrize(
    "path, message",
    [
        ("../../secret/pairs.csv", "leaves the workspace's folder"),
        ("/etc/passwd", "not found in the workspace's folder"),
        ("boards/missing.csv", "not found in the workspace's folder"),
        ("escape/pairs.csv", "leaves the workspace's folder"),
    ],
)
def test_dataset_paths_stay_inside_the_workspace(client, settings, tmp_path, path, message):
    (settings.data_root / "factory_a" / "escape").symlink_to(tmp_path / "secret")
    a = login(client, "factory_a")
    workspace = client.post(
        f"{API}/orgs/factory_a/workspaces", headers=a, json={"name": "w", "cloud_type": "self_hosted"}
    )
    refused = client.post(f"{API}/orgs/factory_a/datasets", headers=a,
                          json={"workspace": workspace.json()["id"], "cloud_file_path": path})  # fmt: skip
    assert refused.status_code == 400 and message in refused.json()["error_desc"]


@pytest.mark.parametrize("org", ["..", ".", "a b", "x" * 129])
def test_org_names_cannot_leave_the_data_root(client, settings, org):
    settings.api_keys["*"] = KEY
    refused = client.post(f"{API}/login", json={"ngc_key": KEY, "ngc_org_name": org})
    assert refused.status_code == 400 and "is not allowed" in refused.json()["error_desc"]
    raw = client.get(f"{API}/orgs/%2E%2E/workspaces")  # a literal '..' in the path
    assert raw.status_code in (400, 404)


def test_only_local_workspaces_are_served(client):
    a = login(client, "factory_a")
    refused = client.post(f"{API}/orgs/factory_a/workspaces", headers=a, json={"name": "w", "cloud_type": "aws"})
    assert refused.status_code == 400 and "cloud_type 'aws' is not served here; use self_hosted" in refused.text


def test_base_experiments_and_schemas_come_from_the_plugins(client):
    a = login(client, "factory_a")
    (base,) = client.get(f"{API}/orgs/factory_a/jobs:list_base_experiments", headers=a).json()["experiments"]
    assert base["name"] == "small" and base["network_arch"] == "fake_task"
    plain = client.get(
        f"{API}/orgs/factory_a/jobs:schema", headers=a, params={"action": "train", "network_arch": "fake_task"}
    )
    assert plain.json()["default"]["model"] == {"size": 8}
    based = client.get(
        f"{API}/orgs/factory_a/jobs:schema", headers=a, params={"action": "train", "base_experiment_id": base["id"]}
    )
    assert based.json()["default"]["model"] == {"size": 1} and based.json()["default"]["train"]["epochs"] == 2
    wrong = client.get(
        f"{API}/orgs/factory_a/jobs:schema", headers=a, params={"action": "fly", "network_arch": "fake_task"}
    )
    assert wrong.status_code == 400 and "choose one of train, evaluate" in wrong.json()["error_desc"]


def create_job(client, headers, org="factory_a", **body) -> str:
    body = {"kind": "experiment", "name": "n", "network_arch": "fake_task", "action": "train",
            "specs": {"results_dir": "ignored", "train": {"sleep": 0.0, "epochs": 2}}, **body}  # fmt: skip
    response = client.post(f"{API}/orgs/{org}/jobs", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_job_runs_reports_its_epochs_logs_and_files(client):
    a = login(client, "factory_a")
    job_id = create_job(client, a)
    job = wait_for(client, "factory_a", a, job_id, ("Done", "Error"))
    assert job["status"] == "Done" and job["exit_code"] == 0
    assert job["job_details"]["status"] == "SUCCESS" and job["job_details"]["epoch"] == 1
    assert job["job_details"]["kpi"] == {"loss": 0.5}
    assert "fake train spec" in client.get(f"{API}/orgs/factory_a/jobs/{job_id}:logs", headers=a).text
    files = client.get(f"{API}/orgs/factory_a/jobs/{job_id}:list_files", headers=a).json()
    assert files == ["train/model.pth", "train/status.json"]
    assert client.get(f"{API}/orgs/factory_b/jobs/{job_id}", headers=login(client, "factory_b")).status_code == 404


def test_a_child_job_gets_its_parents_and_datasets_without_paths(client):
    a = login(client, "factory_a")
    workspace = client.post(
        f"{API}/orgs/factory_a/workspaces", headers=a, json={"name": "w", "cloud_type": "self_hosted"}
    )
    body = {"workspace": workspace.json()["id"], "cloud_file_path": "boards/pairs.csv"}
    dataset = client.post(f"{API}/orgs/factory_a/datasets", headers=a, json=body).json()["id"]
    parent = create_job(client, a, train_datasets=[dataset])
    wait_for(client, "factory_a", a, parent, ("Done",))
    child = create_job(client, a, action="evaluate", parent_job_id=parent, eval_dataset=dataset,
                       specs={"evaluate": {"sleep": 0.0, "epochs": 1}})  # fmt: skip
    wait_for(client, "factory_a", a, child, ("Done",))
    log = client.get(f"{API}/orgs/factory_a/jobs/{child}:logs", headers=a).text
    assert '"ancestors": [{"action": "train", "results_dir": ' in log and f"/{parent}/results" in log
    assert '"datasets": {"eval": [' in log and "boards/pairs.csv" in log


def test_cancel_stops_the_process_and_says_so(client, settings):
    a = login(client, "factory_a")
    job_id = create_job(client, a, specs={"train": {"sleep": 30.0, "epochs": 3}})
    wait_for(client, "factory_a", a, job_id, ("Running",))
    time.sleep(1.0)
    assert client.post(f"{API}/orgs/factory_a/jobs/{job_id}:cancel", headers=a).status_code == 200
    assert wait_for(client, "factory_a", a, job_id, ("Canceled",))["status"] == "Canceled"
    exit_file = settings.state_dir / "factory_a" / job_id / "exit_code"
    deadline = time.time() + 30
    while not exit_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert exit_file.read_text().strip() == "143"  # the process got SIGTERM and ended (not left sleeping)


def test_a_restarted_service_finds_its_jobs_again(settings):
    first = TestClient(create_app(settings))
    a = login(first, "factory_a")
    job_id = create_job(first, a, specs={"train": {"sleep": 1.0, "epochs": 2}})
    second = TestClient(create_app(settings))  # a new process would read the same database and state folder
    job = wait_for(second, "factory_a", a, job_id, ("Done", "Error"))
    assert job["status"] == "Done" and job["job_details"]["epoch"] == 1


def test_airgapped_needs_no_token(settings):
    settings.airgapped = True
    client = TestClient(create_app(settings))
    assert client.get(f"{API}/orgs/anyone/workspaces").status_code == 200


def test_serve_refuses_unsafe_settings(tmp_path, monkeypatch):
    from tao_launcher import LauncherError
    from tao_launcher.service.serve import parse, settings_from

    monkeypatch.delenv("TAO_SERVICE_API_KEY", raising=False)
    with pytest.raises(LauncherError, match="no login key: set TAO_SERVICE_API_KEY or --keys-file"):
        settings_from(parse(["--data-root", str(tmp_path)]))
    with pytest.raises(LauncherError, match="--airgapped has no authentication: it listens on loopback only"):
        settings_from(parse(["--data-root", str(tmp_path), "--airgapped", "--host", "0.0.0.0"]))
    assert settings_from(parse(["--data-root", str(tmp_path), "--airgapped"])).airgapped
    missing = tmp_path / "pcb"
    with pytest.raises(LauncherError, match=f"create it \\(mkdir -p {missing}\\) and put each org's datasets in"):
        settings_from(parse(["--data-root", str(missing), "--airgapped"]))


def test_pause_stops_a_job_and_resume_runs_it_again_in_its_folder(client, settings):
    a = login(client, "factory_a")
    job_id = create_job(client, a, specs={"train": {"sleep": 30.0, "epochs": 2}})
    wait_for(client, "factory_a", a, job_id, ("Running",))
    time.sleep(1.0)
    assert (
        client.post(f"{API}/orgs/factory_a/jobs/{job_id}:pause", headers=a, json={"graceful": False}).status_code == 200
    )
    assert wait_for(client, "factory_a", a, job_id, ("Paused",))["status"] == "Paused"
    specs = {"train": {"sleep": 0.0, "epochs": 2}, "results_dir": "/elsewhere"}
    again = client.post(f"{API}/orgs/factory_a/jobs/{job_id}:resume", headers=a, json={"specs": specs})
    assert again.status_code == 200, again.text
    job = wait_for(client, "factory_a", a, job_id, ("Done", "Error"))
    assert job["status"] == "Done"
    status = (settings.state_dir / "factory_a" / job_id / "results" / "train" / "status.json").read_text()
    assert status.count('"STARTED"') == 2  # the same folder, run again (results_dir cannot be moved)
    refused = client.post(f"{API}/orgs/factory_a/jobs/{job_id}:resume", headers=a, json={})
    assert refused.status_code == 409 and "only a paused job resumes" in refused.json()["error_desc"]


def members(archive: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return tar.getnames()


def test_job_files_download_as_tar_and_stay_inside_the_job(client):
    a = login(client, "factory_a")
    job_id = create_job(client, a)
    wait_for(client, "factory_a", a, job_id, ("Done",))
    whole = client.get(f"{API}/orgs/factory_a/jobs/{job_id}:download", headers=a)
    assert sorted(members(whole.content)) == ["train/model.pth", "train/status.json"]
    one = client.get(f"{API}/orgs/factory_a/jobs/{job_id}:download_selective_files", headers=a,
                     params={"file_lists": ["train/model.pth"]})  # fmt: skip
    assert members(one.content) == ["train/model.pth"]
    escape = client.get(f"{API}/orgs/factory_a/jobs/{job_id}:download_selective_files", headers=a,
                        params={"file_lists": ["../spec.yaml"]})  # fmt: skip
    assert escape.status_code == 404 and "is not among the job's files" in escape.json()["error_desc"]


def test_the_encryption_key_reaches_jobs_and_their_children_but_is_never_stored_in_clear(client, settings):
    a = login(client, "factory_a")
    secret = "a-key-nobody-may-read-9731"
    parent = create_job(client, a, encryption_key=secret)
    wait_for(client, "factory_a", a, parent, ("Done",))
    child = create_job(
        client, a, action="evaluate", parent_job_id=parent, specs={"evaluate": {"sleep": 0.0, "epochs": 1}}
    )
    wait_for(client, "factory_a", a, child, ("Done",))
    again = create_job(client, a, action="evaluate", parent_job_id=parent, encryption_key=secret,
                       specs={"evaluate": {"sleep": 0.0, "epochs": 1}})  # fmt: skip  # the same key, given again
    wait_for(client, "factory_a", a, again, ("Done",))
    jobs_before = sorted(p.name for p in (settings.state_dir / "factory_a").iterdir())
    other = client.post(f"{API}/orgs/factory_a/jobs", headers=a, json={
        "kind": "experiment", "network_arch": "fake_task", "action": "evaluate", "parent_job_id": parent,
        "encryption_key": "nvidia_tlt"})  # fmt: skip  # the client's seed key: the parent's model won't open with it
    assert other.status_code == 400 and other.json()["error_desc"] == (
        "encryption_key is not the key of the model this job builds on (its parent's); give the parent's key, or "
        "none: a child inherits it"
    )
    assert sorted(p.name for p in (settings.state_dir / "factory_a").iterdir()) == jobs_before  # nothing made
    digest = hashlib.sha256(secret.encode()).hexdigest()
    for job_id in (parent, child, again):
        log = client.get(f"{API}/orgs/factory_a/jobs/{job_id}:logs", headers=a).text
        assert f"key sha256 {digest}" in log and secret not in log
    stored = [p for p in settings.state_dir.rglob("*") if p.is_file() and p.name != "service.secret"]
    assert stored and not [p for p in stored if secret.encode() in p.read_bytes()]  # database, specs, logs
    assert (settings.state_dir / "service.secret").stat().st_mode & 0o777 == 0o600


def test_a_key_inside_a_jobs_specs_is_sealed_like_encryption_key(client, settings):
    """A plugin's secret_keys: a literal value in the specs is taken out (never stored) and sealed; a second,
    different key is refused; a ${...} reference is the client's spec text and stays."""
    a = login(client, "factory_a")
    secret = "a-key-inside-the-specs-5120"
    job = create_job(client, a, specs={"train": {"sleep": 0.0, "epochs": 1}, "encryption_key": secret})
    wait_for(client, "factory_a", a, job, ("Done",))
    log = client.get(f"{API}/orgs/factory_a/jobs/{job}:logs", headers=a).text
    assert f"key sha256 {hashlib.sha256(secret.encode()).hexdigest()}" in log and secret not in log
    stored = [p for p in settings.state_dir.rglob("*") if p.is_file() and p.name != "service.secret"]
    assert stored and not [p for p in stored if secret.encode() in p.read_bytes()]
    two = client.post(f"{API}/orgs/factory_a/jobs", headers=a, json={
        "network_arch": "fake_task", "action": "train", "specs": {"encryption_key": secret},
        "encryption_key": "another-key-entirely"})  # fmt: skip
    assert two.status_code == 400 and two.json()["error_desc"] == (
        "specs and encryption_key give two different keys; give the key once"
    )


@pytest.fixture
def slurm():
    import os
    import shutil

    if not (os.environ.get("SLURM_CONF") and shutil.which("sbatch")):
        pytest.skip("no SLURM cluster (SLURM_CONF, sbatch); .ci/run starts ../shared/tools/slurm-cluster")
    return {"backend_type": "slurm", "partition": "main"}


@pytest.mark.slurm
def test_a_job_runs_under_slurm_and_a_restarted_service_re_attaches(settings, slurm):
    first = TestClient(create_app(settings))
    a = login(first, "factory_a")
    job_id = create_job(first, a, backend_details=slurm, specs={"train": {"sleep": 1.0, "epochs": 2}})
    handle = (settings.state_dir / "factory_a" / job_id / "slurm_job.sh").read_text()
    assert "run_and_record" in handle  # the job script sbatch received
    second = TestClient(create_app(settings))
    job = wait_for(second, "factory_a", a, job_id, ("Done", "Error"), timeout=120)
    assert job["status"] == "Done" and job["job_details"]["epoch"] == 1
    assert "fake train spec" in second.get(f"{API}/orgs/factory_a/jobs/{job_id}:logs", headers=a).text


@pytest.mark.slurm
def test_a_slurm_job_is_canceled_with_scancel(client, settings, slurm):
    a = login(client, "factory_a")
    job_id = create_job(client, a, backend_details=slurm, specs={"train": {"sleep": 60.0, "epochs": 2}})
    wait_for_file(settings.state_dir / "factory_a" / job_id / "results" / "train" / "status.json")
    assert client.post(f"{API}/orgs/factory_a/jobs/{job_id}:cancel", headers=a).status_code == 200
    exit_file = settings.state_dir / "factory_a" / job_id / "exit_code"
    wait_for_file(exit_file)
    assert exit_file.read_text().strip() == "143"


def wait_for_file(path: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists() and time.time() < deadline:
        time.sleep(0.5)
    assert path.exists(), path


def test_the_state_can_live_in_postgresql(settings):
    import os

    url = os.environ.get("PG_URL")
    if not url:
        pytest.skip("no PostgreSQL server (PG_URL); .ci/run starts ../shared/tools/postgres")
    settings.database_url = url  # as users write it: postgresql://user@host:port/db
    from sqlalchemy import create_engine
    from tao_launcher.service.store import Base

    Base.metadata.drop_all(create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1)))  # a clean start
    client = TestClient(create_app(settings))
    a = login(client, "factory_a")
    job_id = create_job(client, a)
    assert wait_for(client, "factory_a", a, job_id, ("Done", "Error"))["status"] == "Done"
    b = login(client, "factory_b")
    assert client.get(f"{API}/orgs/factory_b/jobs/{job_id}", headers=b).status_code == 404


def test_the_api_is_described_and_healthy(client):
    assert client.get(f"{API}/health").json() == {"status": "ok", "plugins": ["fake_task"]}
    paths = client.get("/openapi.json").json()["paths"]
    assert {f"{API}/login", f"{API}/orgs/{{org}}/jobs", f"{API}/orgs/{{org}}/jobs/{{job_id}}:cancel"} <= set(paths)


def test_what_is_not_served_answers_in_the_tao_error_shape(client):
    a = login(client, "factory_a")
    missing = client.get(f"{API}/orgs/factory_a/jobs:gpu_types", headers=a)
    assert missing.status_code == 404
    assert missing.json()["error_code"] == 404 and "is not served by tao serve" in missing.json()["error_desc"]


def test_a_published_model_is_a_base_experiment_new_jobs_start_from(client):
    a = login(client, "factory_a")
    running = create_job(client, a, specs={"train": {"sleep": 30.0, "epochs": 2}})
    refused = client.post(f"{API}/orgs/factory_a/jobs/{running}:publish_model", headers=a, json={"display_name": "x"})
    assert refused.status_code == 409 and "publish a finished train job" in refused.json()["error_desc"]
    client.post(f"{API}/orgs/factory_a/jobs/{running}:cancel", headers=a)
    job_id = create_job(client, a)
    wait_for(client, "factory_a", a, job_id, ("Done",))
    published = client.post(f"{API}/orgs/factory_a/jobs/{job_id}:publish_model", headers=a,
                            json={"display_name": "line7 v1", "description": "d", "team_name": "t"})  # fmt: skip
    assert published.status_code == 200, published.text
    bases = client.get(f"{API}/orgs/factory_a/jobs:list_base_experiments", headers=a).json()["experiments"]
    mine = next(b for b in bases if b["name"] == "line7 v1")
    assert mine["base_experiment_metadata"]["published_from_job"] == job_id
    other = client.get(f"{API}/orgs/factory_b/jobs:list_base_experiments", headers=login(client, "factory_b"))
    assert "line7 v1" not in {b["name"] for b in other.json()["experiments"]}  # published within its org only
    child = create_job(client, a, base_experiment_ids=[mine["id"]])
    wait_for(client, "factory_a", a, child, ("Done",))
    log = client.get(f"{API}/orgs/factory_a/jobs/{child}:logs", headers=a).text
    assert '"ancestors": [{"action": "train", "results_dir": ' in log and f"/{job_id}/results" in log


def test_a_dataset_job_gets_its_dataset_in_every_role(client):
    """kind dataset (validate, dataset_convert for plugins whose client config offers them): no network_arch needed
    when one plugin is installed; the dataset is bound under the role "dataset"."""
    a = login(client, "factory_a")
    workspace = client.post(
        f"{API}/orgs/factory_a/workspaces", headers=a, json={"name": "w", "cloud_type": "self_hosted"}
    )
    body = {"workspace": workspace.json()["id"], "cloud_file_path": "boards/pairs.csv"}
    dataset = client.post(f"{API}/orgs/factory_a/datasets", headers=a, json=body).json()["id"]
    job = client.post(f"{API}/orgs/factory_a/jobs", headers=a, json={"kind": "dataset", "action": "train",
                      "dataset_id": dataset, "specs": {"train": {"sleep": 0.0, "epochs": 1}}})  # fmt: skip
    assert job.status_code == 201, job.text
    done = wait_for(client, "factory_a", a, job.json()["id"], ("Done",))
    assert done["kind"] == "dataset" and done["network_arch"] == "fake_task"
    log = client.get(f"{API}/orgs/factory_a/jobs/{done['id']}:logs", headers=a).text
    assert '"datasets": {"dataset": [' in log and "boards/pairs.csv" in log


def test_a_job_whose_process_vanished_is_marked_at_start_up_not_forgotten(settings, caplog):
    import os
    import signal as signals

    first = TestClient(create_app(settings))
    a = login(first, "factory_a")
    job_id = create_job(first, a, specs={"train": {"sleep": 30.0, "epochs": 2}})
    wait_for(first, "factory_a", a, job_id, ("Running",))
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{settings.state_dir / 'service.db'}")
    with engine.connect() as connection:
        pid = json.loads(connection.execute(text("select handle from jobs where id = :i"), {"i": job_id}).scalar())[
            "pid"
        ]
    os.killpg(pid, signals.SIGKILL)  # no exit code is written
    time.sleep(0.5)
    with caplog.at_level("INFO", logger="tao_launcher.service"):
        second = TestClient(create_app(settings))
    assert f"job {job_id} (fake_task train): Error after the restart" in caplog.text
    assert second.get(f"{API}/orgs/factory_a/jobs/{job_id}", headers=a).json()["status"] == "Error"


def test_service_logs_are_json_lines():
    import logging

    from tao_launcher.service.serve import JsonLines

    record = logging.LogRecord("tao_launcher.service", logging.INFO, __file__, 1, "job %s started", ("j1",), None)
    line = json.loads(JsonLines().format(record))
    assert line["level"] == "INFO" and line["logger"] == "tao_launcher.service" and line["message"] == "job j1 started"


def test_client_env_reaches_the_job(client):
    a = login(client, "factory_a")
    job_id = create_job(client, a, docker_env_vars={"JOB_VAR_GREETING": "hello", "FAKE_MODE": "x"},
                        specs={"train": {"sleep": 0.0, "epochs": 1}, "print_env": "JOB_VAR_GREETING"})  # fmt: skip
    wait_for(client, "factory_a", a, job_id, ("Done",))
    assert "env JOB_VAR_GREETING=hello" in client.get(f"{API}/orgs/factory_a/jobs/{job_id}:logs", headers=a).text
