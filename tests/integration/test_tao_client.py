"""NVIDIA's unmodified TAO Client (its own virtual environment, `TAO_CLIENT_VENV`) drives `tao serve`: base
experiments, schema, a workspace and datasets, a train job and an evaluate job chained by --parent-job-id with
no file paths, status with KPIs, logs, files; tokens: login with the right key, 401 with a wrong one; AutoML
searches (docs/automl.md)."""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import cli

pytestmark = pytest.mark.slow
CLIENT = Path(os.environ.get("TAO_CLIENT_VENV", Path.home() / ".cache" / "tao-client-6.26.3")) / "bin" / "tao"
KEY = "factory-key-1"


class Server:
    """``tao serve`` in a process of its own, stopped and started again on the same state for restart tests."""

    def __init__(self, root: Path):
        self.root = root
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = None

    def start(self) -> None:
        command = [cli("tao"), "serve", "--data-root", str(self.root / "data"), "--state-dir",
                   str(self.root / "state"), "--port", str(self.port)]  # fmt: skip
        env = {**os.environ, "TAO_SERVICE_API_KEY": KEY}
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/health", timeout=1)
                return
            except OSError:
                time.sleep(0.3)
        pytest.fail("tao serve did not answer")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    if not CLIENT.exists():
        pytest.skip(f"no TAO Client at {CLIENT}; .ci/run installs nvidia-tao-client==6.26.3 there (TAO_CLIENT_VENV)")
    pytest.importorskip("fastapi", reason="the job service needs tao-launcher[service]")
    from tao_siamese_oi.data.sample import make_sample_dataset

    root = tmp_path_factory.mktemp("service")
    make_sample_dataset(root / "data" / "acme" / "sample", size=16, seed=1)
    server = Server(root)
    server.start()
    yield {"base": f"http://127.0.0.1:{server.port}/api/v2", "root": root, "server": server}
    server.stop()


def tao(service, *args, home=None, expect=0) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAO_")}
    env.update(TAO_BASE_URL=service["base"], HOME=str(home or service["root"] / "home"))
    done = subprocess.run([str(CLIENT), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == expect, (done.stdout[:1500], done.stderr[:1500])
    return done.stdout


def as_json(text: str):
    return json.loads(text)


def test_a_wrong_key_is_refused_and_nothing_is_served_without_a_token(service, tmp_path):
    tao(service, "login", "--ngc-key", "wrong", "--ngc-org-name", "acme", home=tmp_path, expect=1)
    assert not (tmp_path / ".tao" / "config").exists()  # no token saved
    request = urllib.request.Request(f"{service['base']}/orgs/acme/workspaces")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401


def test_the_seed_flow_through_the_real_client(service):
    tao(service, "login", "--ngc-key", KEY, "--ngc-org-name", "acme")
    oi = ["optical_inspection"]
    bases = as_json(tao(service, *oi, "list-base-experiments", "--output", "json"))
    base = next(b["id"] for b in bases if b["name"] == "Siamese_Grid")
    spec = as_json(tao(service, *oi, "get-job-schema", "--action", "train", "--base-experiment-id", base,
                       "--output", "json"))["default"]  # fmt: skip
    spec["train"]["num_epochs"] = 2
    spec["dataset"].update(image_width=16, image_height=16, workers=0)
    workspace = as_json(tao(service, *oi, "create-workspace-self_hosted", "--name", "line7", "--output", "json"))["id"]

    def dataset(path):
        out = tao(service, *oi, "create-dataset", "--dataset-type", "optical_inspection", "--dataset-format",
                  "default", "--workspace-id", workspace, "--cloud-file-path", path, "--output", "json")  # fmt: skip
        return as_json(out)["id"]

    train_set, val_set, test_set = dataset("sample/train.csv"), dataset("sample/val.csv"), dataset("sample/test.csv")
    # Inline JSON longer than a file name crashes the client (it first tries the text as a path): use @file.
    specs = service["root"] / "train_specs.json"
    specs.write_text(json.dumps(spec))
    train = as_json(tao(service, *oi, "create-job", "--kind", "experiment", "--name", "oi_train", "--action", "train",
                        "--workspace-id", workspace, "--specs", f"@{specs}", "--train-dataset", train_set,
                        "--eval-dataset", val_set, "--base-experiment-id", base, "--encryption-key", "k",
                        "--output", "json"))["id"]  # fmt: skip
    status = wait(service, train)
    assert status["status"] == "Done" and status["job_details"]["status"] == "SUCCESS"
    assert status["job_details"]["epoch"] == 1 and "val_auroc" in status["job_details"]["kpi"]
    assert "Trained 2 epochs" in tao(service, *oi, "get-job-logs", "--job-id", train)

    evaluate_spec = as_json(tao(service, *oi, "get-job-schema", "--action", "evaluate", "--output", "json"))["default"]
    evaluate_spec["dataset"].update(image_width=16, image_height=16, workers=0)
    specs.write_text(json.dumps(evaluate_spec))
    evaluate = as_json(tao(service, *oi, "create-job", "--kind", "experiment", "--name", "oi_eval", "--action",
                           "evaluate", "--workspace-id", workspace, "--specs", f"@{specs}",
                           "--eval-dataset", test_set, "--parent-job-id", train, "--encryption-key", "k",
                           "--output", "json"))["id"]  # fmt: skip
    status = wait(service, evaluate)
    assert status["status"] == "Done" and 0.0 <= status["job_details"]["kpi"]["auroc"] <= 1.0
    files = as_json(tao(service, *oi, "list-job-files", "--job-id", evaluate, "--output", "json"))
    assert {"evaluate/metrics.json", "evaluate/evaluate.csv", "evaluate/roc.png"} <= set(files)

    for action, extra in (("inference", ["--inference-dataset", test_set]), ("export", [])):
        child_spec = as_json(tao(service, *oi, "get-job-schema", "--action", action, "--output", "json"))["default"]
        child_spec["dataset"].update(image_width=16, image_height=16, workers=0)
        specs.write_text(json.dumps(child_spec))
        args = ["create-job", "--kind", "experiment", "--name", f"oi_{action}", "--action", action,
                "--workspace-id", workspace, "--specs", f"@{specs}", "--parent-job-id", train,
                "--encryption-key", "k", *extra, "--output", "json"]  # fmt: skip
        child = as_json(tao(service, *oi, *args))["id"]
        assert wait(service, child)["status"] == "Done", tao(service, *oi, "get-job-logs", "--job-id", child)
    job_folder = service["root"] / "state" / "acme" / train / "results" / "train"
    assert (job_folder / "oi_model_latest.pth").read_bytes().startswith(b"TAO-OI-AESGCM-1\n")  # encrypted at rest
    service["train_job"] = train

    tao(service, *oi, "publish-model", "--job-id", train, "--display-name", "line7-v1", "--description", "first",
        "--team", "inspection")  # fmt: skip
    bases = as_json(tao(service, *oi, "list-base-experiments", "--output", "json"))
    assert any(b["name"] == "line7-v1" and b["base_experiment_metadata"]["published_from_job"] == train for b in bases)


def test_an_inference_microservice_keeps_the_model_and_goldens_warm(service):
    if "train_job" not in service:
        pytest.skip("runs after the seed flow")
    import base64

    import pandas as pd

    oi = ["optical_inspection"]
    started = as_json(tao(service, *oi, "start-inference-microservice", "--docker-image", "unused", "--num-gpus", "0",
                          "--model-path", service["train_job"], "--output", "json"))  # fmt: skip
    microservice = started["id"]
    deadline = time.time() + 120
    while time.time() < deadline:
        status = as_json(tao(service, *oi, "get-inference-microservice-status", "--microservice-job-id", microservice,
                             "--output", "json"))  # fmt: skip
        if status["status"] != "Starting":
            break
        time.sleep(1)
    assert status["status"] == "Ready", status
    sample = service["root"] / "data" / "acme" / "sample"
    rows = pd.read_csv(sample / "test.csv", dtype=str)
    lights = ["LowAngleLight", "SolderLight", "UniformLight", "WhiteLight"]

    def images(row) -> str:
        paths = [sample / "images" / row[side] / f"{row['object_name']}_{light}.jpg"
                 for side in ("input_path", "golden_path") for light in lights]  # fmt: skip
        return json.dumps(["data:image/jpeg;base64," + base64.b64encode(p.read_bytes()).decode() for p in paths])

    answers = []
    for row in (rows.iloc[0], rows.iloc[0], rows.iloc[1]):  # the first golden twice: the second time, cached
        out = tao(service, *oi, "inference-request", "--microservice-job-id", microservice, "--input", images(row),
                  "--output", "json")  # fmt: skip
        answers.append(as_json(out))
    assert all(a["decision"] in ("PASS", "FAIL") and a["score"] >= 0 for a in answers)
    assert [a["golden_cached"] for a in answers[:2]] == [False, True]
    assert answers[0]["score"] == pytest.approx(answers[1]["score"], abs=1e-6)
    bad = tao(service, *oi, "inference-request", "--microservice-job-id", microservice, "--input", "[1, 2]", expect=1)
    assert "input must list 8 images" in bad or bad == ""
    stopped = as_json(tao(service, *oi, "stop-inference-microservice", "--microservice-job-id", microservice,
                          "--output", "json"))  # fmt: skip
    assert stopped["status"] == "Stopped"


def test_pause_resume_and_cancel_through_the_client(service):
    job = long_training(service)
    oi = ["optical_inspection"]
    specs = service["root"] / "long_train.json"
    status_file = service["root"] / "state" / "acme" / job / "results" / "train" / "status.json"
    tao(service, *oi, "pause-job", "--job-id", job)
    assert wait(service, job)["status"] == "Paused"
    tao(service, *oi, "resume-job", "--job-id", job, "--specs", f"@{specs}")
    status = as_json(tao(service, *oi, "get-job-status", "--job-id", job))
    assert status["status"] == "Running"
    deadline = time.time() + 120  # the resumed task is under way (a busy machine takes longer to start it)
    while "Resuming training from checkpoint" not in status_file.read_text() and time.time() < deadline:
        time.sleep(0.5)
    tao(service, *oi, "cancel-job", "--job-id", job)
    assert wait(service, job)["status"] == "Canceled"
    lines = status_file.read_text()
    assert "Resuming training from checkpoint" in lines and lines.count("Interrupted by SIGTERM.") == 2


def test_another_org_cannot_see_the_first_orgs_jobs(service, tmp_path):
    if "train_job" not in service:
        pytest.skip("runs after the seed flow")
    tao(service, "login", "--ngc-key", KEY, "--ngc-org-name", "rival", home=tmp_path)
    out = tao(
        service, "optical_inspection", "get-job-status", "--job-id", service["train_job"], home=tmp_path, expect=1
    )
    assert "Resource not found" in out or out == ""


def wait(service, job_id, timeout=300) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = as_json(tao(service, "optical_inspection", "get-job-status", "--job-id", job_id))
        if status["status"] not in ("Pending", "Running"):
            return status
        time.sleep(1)
    pytest.fail(f"job {job_id} still running after {timeout} s")


def long_training(service, *backend) -> str:
    """A 500-epoch training job (through the client), once it has finished an epoch."""
    tao(service, "login", "--ngc-key", KEY, "--ngc-org-name", "acme")
    oi = ["optical_inspection"]
    spec = as_json(tao(service, *oi, "get-job-schema", "--action", "train", "--output", "json"))["default"]
    spec["train"]["num_epochs"] = 500
    spec["dataset"].update(image_width=16, image_height=16, workers=0)
    specs = service["root"] / "long_train.json"
    specs.write_text(json.dumps(spec))
    workspace = as_json(tao(service, *oi, "create-workspace-self_hosted", "--name", "w", "--output", "json"))["id"]
    data = as_json(tao(service, *oi, "create-dataset", "--dataset-type", "optical_inspection", "--dataset-format",
                       "default", "--workspace-id", workspace, "--cloud-file-path", "sample/train.csv",
                       "--output", "json"))["id"]  # fmt: skip
    job = as_json(tao(service, *oi, "create-job", "--kind", "experiment", "--name", "long", "--action", "train",
                      "--workspace-id", workspace, "--specs", f"@{specs}", "--train-dataset", data, *backend,
                      "--output", "json"))["id"]  # fmt: skip
    status_file = service["root"] / "state" / "acme" / job / "results" / "train" / "status.json"
    deadline = time.time() + 180
    while not (status_file.exists() and '"epoch"' in status_file.read_text()) and time.time() < deadline:
        time.sleep(0.5)
    assert status_file.exists(), tao(service, *oi, "get-job-logs", "--job-id", job)
    return job


def test_a_restarted_service_finds_a_running_job_and_can_still_cancel_it(service):
    job = long_training(service)
    service["server"].stop()  # the job keeps running without the service
    service["server"].start()
    assert as_json(tao(service, "optical_inspection", "get-job-status", "--job-id", job))["status"] == "Running"
    tao(service, "optical_inspection", "cancel-job", "--job-id", job)
    assert wait(service, job)["status"] == "Canceled"


@pytest.mark.slurm
def test_a_training_job_on_the_slurm_cluster(service):
    import shutil

    if not (os.environ.get("SLURM_CONF") and shutil.which("sbatch")):
        pytest.skip("no SLURM cluster (SLURM_CONF, sbatch); .ci/run starts ../shared/tools/slurm-cluster")
    job = long_training(service, "--backend-type", "slurm", "--partition", "main")
    slurm_id = (service["root"] / "state" / "acme" / job / "slurm_job.sh").exists()
    assert slurm_id  # submitted as a batch job
    queue = subprocess.run(["squeue", "-h", "-n", f"tao-{job}", "-o", "%T"], capture_output=True, text=True).stdout
    assert queue.strip() == "RUNNING"
    tao(service, "optical_inspection", "cancel-job", "--job-id", job)
    assert wait(service, job)["status"] == "Canceled"


# AutoML as a TAO Client user runs it (docs/automl.md): get-automl-defaults written to a file and passed back as
# --automl-settings @file, the search's status with its experiments, a service restart in the middle of the
# search, each experiment's log by index (the client's SDK: its CLI has no option for it), the best model
# evaluated by --parent-job-id and published, pause, resume and cancel of a whole search, a refused algorithm.
OI = ["optical_inspection"]


def automl_lab(service, name: str, epochs: int) -> dict:
    """Login, a workspace, train and validation datasets, and a small spec file for the searches."""
    tao(service, "login", "--ngc-key", "factory-key-1", "--ngc-org-name", "acme")
    spec = as_json(tao(service, *OI, "get-job-schema", "--action", "train", "--output", "json"))["default"]
    spec["train"]["num_epochs"] = epochs
    spec["dataset"].update(image_width=16, image_height=16, workers=0)
    specs = service["root"] / f"{name}_specs.json"
    specs.write_text(json.dumps(spec))
    workspace = as_json(tao(service, *OI, "create-workspace-self_hosted", "--name", name, "--output", "json"))["id"]

    def dataset(path):
        return as_json(tao(service, *OI, "create-dataset", "--dataset-type", "optical_inspection", "--dataset-format",
                           "default", "--workspace-id", workspace, "--cloud-file-path", path, "--output",
                           "json"))["id"]  # fmt: skip

    train, val = dataset("sample/train.csv"), dataset("sample/val.csv")
    return {"specs": specs, "workspace": workspace, "train": train, "val": val}


def create_search(service, lab: dict, *settings: str, expect: int = 0) -> str:
    out = tao(service, *OI, "create-job", "--kind", "experiment", "--name", "search", "--action", "train",
              "--workspace-id", lab["workspace"], "--specs", f"@{lab['specs']}", "--train-dataset", lab["train"],
              "--eval-dataset", lab["val"], *(f"--automl-settings={s}" for s in settings), "--output", "json",
              expect=expect)  # fmt: skip
    return as_json(out)["id"] if expect == 0 else out


def sdk_logs(service, job_id: str, index: int) -> str:
    """``TaoClient().get_job_logs(job, automl_experiment_index=N)``, in the client's own environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAO_")}
    env.update(TAO_BASE_URL=service["base"], HOME=str(service["root"] / "home"))
    code = (
        "import sys; from tao_sdk.client import TaoClient; "
        "print(TaoClient().get_job_logs(sys.argv[1], int(sys.argv[2])))"
    )
    done = subprocess.run([str(CLIENT.parent / "python"), "-c", code, job_id, str(index)], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    return done.stdout + done.stderr


def test_a_search_through_the_client_survives_a_restart_and_its_best_model_is_a_parent(service):
    lab = automl_lab(service, "automl", epochs=1)
    defaults_file = service["root"] / "automl_defaults.json"
    tao(service, *OI, "get-automl-defaults", "--output", f"@{defaults_file}")
    defaults = json.loads(defaults_file.read_text())
    assert "train.optim.lr" in defaults["automl_hyperparameters"] and defaults["metric"] == "val_auroc"
    defaults.update(automl_max_recommendations=3, automl_hyperparameters=["train.optim.lr", "model.margin"])
    defaults_file.write_text(json.dumps(defaults))
    search = create_search(service, lab, f"@{defaults_file}")

    search_log = service["root"] / "state" / "acme" / search / "job.log"
    deadline = time.time() + 120
    while "experiment 0: started" not in search_log.read_text() and time.time() < deadline:
        time.sleep(0.5)
    service["server"].stop()  # the experiment keeps running; the search waits in the database
    service["server"].start()
    status = wait(service, search, timeout=600)
    assert status["status"] == "Done", status
    rows = status["job_details"]["automl_experiments"]
    assert [r["state"] for r in rows] == ["done"] * 3 and all(set(r["specs"]) == {"train.optim.lr", "model.margin"}
                                                              for r in rows)  # fmt: skip
    brain = {item["metric"]: item["value"] for item in status["job_details"]["automl_brain_info"]}
    best = rows[int(brain["Best experiment id"])]
    assert best["metric"] == max(r["metric"] for r in rows)

    assert "Trained 1 epochs" in sdk_logs(service, search, 1)
    assert "AutoML search done" in sdk_logs(service, search, -1)
    assert "does not exist. Available experiment indices: 0, 1, 2" in sdk_logs(service, search, 5)

    evaluate_spec = as_json(tao(service, *OI, "get-job-schema", "--action", "evaluate", "--output", "json"))["default"]
    evaluate_spec["dataset"].update(workers=0)
    evaluate_file = service["root"] / "automl_evaluate.json"
    evaluate_file.write_text(json.dumps(evaluate_spec))
    evaluate = as_json(tao(service, *OI, "create-job", "--kind", "experiment", "--name", "eval_best", "--action",
                           "evaluate", "--workspace-id", lab["workspace"], "--specs", f"@{evaluate_file}",
                           "--eval-dataset", lab["val"], "--parent-job-id", search,
                           "--output", "json"))["id"]  # fmt: skip
    assert wait(service, evaluate)["status"] == "Done"
    tao(service, *OI, "publish-model", "--job-id", search, "--display-name", "tuned", "--description",
        "AutoML's best", "--team", "line7")  # fmt: skip
    bases = as_json(tao(service, *OI, "list-base-experiments", "--output", "json"))
    assert any(b["name"] == "tuned" and b["base_experiment_metadata"]["published_from_job"] == search for b in bases)


def test_pause_resume_and_cancel_of_a_search_and_a_refused_algorithm(service):
    lab = automl_lab(service, "automl_long", epochs=500)
    refused = create_search(service, lab, "automl_enabled=true", "automl_algorithm=pbt", expect=1)
    assert "automl_algorithm 'pbt' is not served" in refused or refused == ""
    search = create_search(service, lab, "automl_enabled=true", "automl_max_recommendations=2")
    experiment = as_json(tao(service, *OI, "get-job-status", "--job-id", search))["job_details"]["automl_experiments"]
    assert [r["status"] for r in experiment] == ["Running"]
    tao(service, *OI, "pause-job", "--job-id", search)
    assert as_json(tao(service, *OI, "get-job-status", "--job-id", search))["status"] == "Paused"
    assert wait(service, experiment[0]["job_id"])["status"] == "Paused"
    tao(service, *OI, "resume-job", "--job-id", search, "--specs", "{}")
    assert as_json(tao(service, *OI, "get-job-status", "--job-id", experiment[0]["job_id"]))["status"] == "Running"
    tao(service, *OI, "cancel-job", "--job-id", search)
    status = as_json(tao(service, *OI, "get-job-status", "--job-id", search))
    assert status["status"] == "Canceled" and [r["state"] for r in status["job_details"]["automl_experiments"]] == [
        "canceled"
    ]
    assert wait(service, experiment[0]["job_id"])["status"] == "Canceled"
