"""AutoML searches of the job service (service/automl.py) with the example plugin, whose metric ``fit`` is best at
rate 0.3: experiments as ordinary jobs, the best model as a parent, failures, pruning, refusals, cancel, pause and
resume, a restart in the middle, PostgreSQL storage and parallel experiments on the SLURM cluster."""

import json
import os
import shutil
import time

import pytest

pytest.importorskip("optuna", reason="AutoML needs tao-launcher[service] (Optuna)")
from fastapi.testclient import TestClient  # noqa: E402
from tao_launcher.service.app import ServiceSettings, create_app  # noqa: E402

API = "/api/v2/orgs/lab"


@pytest.fixture
def settings(tmp_path, monkeypatch) -> ServiceSettings:
    monkeypatch.setenv("TAO_LAUNCHER_PLUGINS", "example_task")
    for org in ("lab", "rival"):
        (tmp_path / "data" / org).mkdir(parents=True)
        (tmp_path / "data" / org / "train.txt").write_text("10\n20\n30\n")
        (tmp_path / "data" / org / "eval.txt").write_text("20\n50\n")
    return ServiceSettings(tmp_path / "data", tmp_path / "state", api_keys={"*": "k"})


def connect(settings, org: str = "lab") -> TestClient:
    client = TestClient(create_app(settings))
    token = client.post("/api/v2/login", json={"ngc_key": "k", "ngc_org_name": org}).json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


@pytest.fixture
def lab(settings):
    client = connect(settings)
    workspace = client.post(f"{API}/workspaces", json={"name": "w", "cloud_type": "self_hosted"}).json()["id"]
    client.datasets = {
        name: client.post(f"{API}/datasets", json={"type": "numbers", "format": "text", "workspace": workspace,
                                                   "cloud_file_path": f"{name}.txt"}).json()["id"]
        for name in ("train", "eval")
    }  # fmt: skip
    return client


def search(client, specs=None, expect=201, **settings) -> str:
    """A search as the TAO Client sends --automl-settings key=value: every value as text."""
    body = {"kind": "experiment", "network_arch": "example_task", "action": "train", "specs": specs or {},
            "train_datasets": [client.datasets["train"]],
            "automl_settings": {"automl_enabled": "true", **{k: str(v) for k, v in settings.items()}}}  # fmt: skip
    response = client.post(f"{API}/jobs", json=body)
    assert response.status_code == expect, response.text
    return response.json()["id"] if expect == 201 else response.json()["error_desc"]


def until(client, job_id: str, states=("Done", "Error", "Canceled"), timeout: float = 90) -> dict:
    deadline = time.time() + timeout
    while (job := client.get(f"{API}/jobs/{job_id}").json())["status"] not in states:
        assert time.time() < deadline, job
        time.sleep(0.2)
    return job


def experiments(job: dict) -> list[dict]:
    return job["job_details"]["automl_experiments"]


def test_a_search_runs_its_experiments_as_jobs_and_its_best_model_is_the_searchs(lab, settings):
    search_id = search(lab, {"epochs": 2}, automl_algorithm="bayesian", automl_max_recommendations=3)
    job = until(lab, search_id)
    assert job["status"] == "Done", job
    rows = experiments(job)
    assert [r["experiment_index"] for r in rows] == [0, 1, 2] and {r["state"] for r in rows} == {"done"}
    best = max(rows, key=lambda r: r["metric"])
    for row in rows:  # an ordinary job of the org, in its own folder, trained with its experiment's rate
        trial = lab.get(f"{API}/jobs/{row['job_id']}").json()
        assert trial["status"] == "Done" and trial["action"] == "train"
        assert row["metric"] == pytest.approx(1 - abs(row["specs"]["rate"] - 0.3))
        assert f"rate: {row['specs']['rate']}" in (settings.state_dir / "lab" / row["job_id"] / "spec.yaml").read_text()
        kept = (settings.state_dir / "lab" / row["job_id"] / "results" / "train" / "model.json").exists()
        assert kept == (row is best)  # automl_delete_intermediate_ckpt (default true): the losers' models go
    brain = {item["metric"]: item["value"] for item in job["job_details"]["automl_brain_info"]}
    assert brain["Best experiment id"] == str(best["experiment_index"]) and brain["Algorithm"] == "bayesian"
    assert job["job_details"]["automl_result"] == [{"metric": "best_fit", "value": best["metric"]}]

    assert "train: {'samples': 3}" in lab.get(f"{API}/jobs/{search_id}:logs?automl_experiment_index=1").text
    own = lab.get(f"{API}/jobs/{search_id}:logs?automl_experiment_index=-1").text
    assert "AutoML search done: best experiment" in own
    missing = lab.get(f"{API}/jobs/{search_id}:logs?automl_experiment_index=7")
    assert missing.status_code == 404 and "Available experiment indices: 0, 1, 2" in missing.json()["error_desc"]

    # the search's id is the best model's: a parent, a download, a published model
    body = {
        "network_arch": "example_task",
        "action": "evaluate",
        "parent_job_id": search_id,
        "eval_dataset": lab.datasets["eval"],
    }
    evaluate = lab.post(f"{API}/jobs", json=body)
    assert until(lab, evaluate.json()["id"])["status"] == "Done"
    model = settings.state_dir / "lab" / search_id / "results" / "train" / "model.json"
    assert json.loads(model.read_text())["mean"] == 20.0
    assert f"rate: {best['specs']['rate']}" in (settings.state_dir / "lab" / search_id / "spec.yaml").read_text()
    published = lab.post(f"{API}/jobs/{search_id}:publish_model", json={"display_name": "tuned"})
    assert published.status_code == 200, published.text


def test_a_failing_experiment_is_recorded_and_the_search_goes_on(lab):
    # rate 0.9 crashes the training (crash_above 0.5); the search tries both values over four experiments
    options = json.dumps([{"parameter": "rate", "valid_options": [0.2, 0.9]}])
    search_id = search(
        lab, {"crash_above": 0.5}, automl_max_recommendations=4, automl_algorithm="asha", automl_range_override=options
    )
    job = until(lab, search_id)
    rows = experiments(job)
    assert len(rows) == 4 and {r["specs"]["rate"] for r in rows} == {0.2, 0.9}
    for row in rows:
        assert row["state"] == ("failed" if row["specs"]["rate"] == 0.9 else "done"), row
    assert next(r for r in rows if r["state"] == "failed")["message"] == "error (exit code 1)"
    assert job["status"] == "Done"

    all_fail = until(lab, search(lab, {"crash_above": -1}, automl_max_recommendations=2))
    assert all_fail["status"] == "Error" and {r["state"] for r in experiments(all_fail)} == {"failed"}


def test_an_experiment_that_cannot_start_is_recorded_and_leaves_no_job(lab, settings):
    # sbatch refuses an unknown partition (or is not installed): every experiment fails to start
    body = {"network_arch": "example_task", "action": "train", "train_datasets": [lab.datasets["train"]],
            "backend_details": {"backend_type": "slurm", "partition": "no_such_partition"},
            "automl_settings": {"automl_enabled": True, "automl_max_recommendations": 2}}  # fmt: skip
    search_id = lab.post(f"{API}/jobs", json=body).json()["id"]
    job = until(lab, search_id)
    assert job["status"] == "Error" and [r["state"] for r in experiments(job)] == ["failed", "failed"]
    assert all(r["message"].startswith("could not start: ") and r["job_id"] == "" for r in experiments(job))
    assert [j["id"] for j in lab.get(f"{API}/jobs").json()["jobs"]] == [search_id]  # no half-made job
    assert sorted(p.name for p in (settings.state_dir / "lab").iterdir()) == [search_id]


@pytest.mark.slow
def test_successive_halving_prunes_weak_experiments_from_their_epoch_metrics(lab):
    # asha: rungs at epochs 1 and 3 (hyperband's brackets depend on the study's name, so which trials may be
    # pruned differs from run to run); an epoch of 1 s leaves every step time to see a trial between rungs
    search_id = search(lab, {"epoch_s": 1.0}, automl_algorithm="asha", automl_max_recommendations=6,
                       automl_max_epochs=3, automl_reduction_factor=3)  # fmt: skip
    job = until(lab, search_id, timeout=180)
    rows = experiments(job)
    pruned = [r for r in rows if r["state"] == "pruned"]
    assert job["status"] == "Done" and pruned, rows
    for row in pruned:  # stopped before the last epoch, its job canceled
        assert row["epoch"] < 3 and lab.get(f"{API}/jobs/{row['job_id']}").json()["status"] == "Canceled"
    assert all(r["epoch"] == 3 for r in rows if r["state"] == "done")


@pytest.mark.parametrize(
    "settings_given, message",
    [
        ({"automl_algorithm": "pbt"}, "automl_algorithm 'pbt' is not served"),
        ({"automl_algorithm": "grid"}, "automl_algorithm 'grid' is not known; choose one of bayesian"),
        (
            {"automl_hyperparameters": "[rat]"},
            "automl_hyperparameters: 'rat' is not a parameter AutoML may change; did you mean rate?",
        ),
        (
            {"automl_range_override": '[{"parameter": "rate", "valid_min": 0.5, "valid_max": 3}]'},
            "rate needs valid_min < valid_max inside the declared [0.0, 1.0]",
        ),
        (
            {"automl_max_recomendations": 3},
            "'automl_max_recomendations' is not a setting; did you mean automl_max_recommendations?",
        ),
        ({"automl_max_recommendations": "many"}, "automl_max_recommendations must be a whole number"),
    ],
    ids=["refused-algorithm", "unknown-algorithm", "unknown-parameter", "range", "unknown-setting", "number"],
)
def test_what_a_search_cannot_be_is_a_one_line_400_and_changes_nothing(lab, settings, settings_given, message):
    assert message in search(lab, expect=400, **settings_given)
    assert lab.get(f"{API}/jobs").json()["jobs"] == []
    assert not (settings.state_dir / "lab").exists() or not any((settings.state_dir / "lab").iterdir())


def test_automl_defaults_round_trip_and_only_train_is_searched(lab):
    defaults = lab.get(f"{API}/jobs:schema?action=train&network_arch=example_task").json()["automl_default_parameters"]
    assert defaults["automl_hyperparameters"] == ["rate"] and defaults["metric"] == "fit"
    assert defaults["automl_range_override"][0] == {"parameter": "rate", "value_type": "float", "default_value": 0.5,
                                                    "valid_min": 0.0, "valid_max": 1.0}  # fmt: skip
    body = {
        "network_arch": "example_task",
        "action": "train",
        "train_datasets": [lab.datasets["train"]],
        "automl_settings": {**defaults, "automl_max_recommendations": 1},
    }  # as get-automl-defaults --output @f
    assert until(lab, lab.post(f"{API}/jobs", json=body).json()["id"])["status"] == "Done"
    body["automl_settings"].update(automl_algorithm="hyperband", automl_max_epochs=3)  # trains to its R epochs
    job = until(lab, lab.post(f"{API}/jobs", json=body).json()["id"])
    assert job["status"] == "Done" and experiments(job)[0]["epoch"] == 3
    details = lab.get(f"{API}/automl:get_param_details?network_arch=example_task&parameters=rate").json()
    assert details == {"parameter_details": [{"param_name": "rate", "param_type": "float", "param_values": [0.0, 1.0],
                                              "default_value": 0.5}]}  # fmt: skip
    evaluate = {**body, "action": "evaluate", "eval_dataset": lab.datasets["eval"]}
    refused = lab.post(f"{API}/jobs", json=evaluate)
    assert refused.status_code == 400 and "AutoML searches train jobs, not evaluate" in refused.json()["error_desc"]


def test_pause_resume_and_cancel_act_on_the_whole_search_and_another_org_sees_none_of_it(lab, settings):
    search_id = search(lab, {"epochs": 50, "epoch_s": 0.5}, automl_max_recommendations=3, automl_max_concurrent=2)
    rows = experiments(lab.get(f"{API}/jobs/{search_id}").json())
    assert [r["status"] for r in rows] == ["Running", "Running"]  # two at once, as asked
    assert lab.post(f"{API}/jobs/{search_id}:pause").status_code == 200
    assert {lab.get(f"{API}/jobs/{r['job_id']}").json()["status"] for r in rows} == {"Paused"}
    assert lab.get(f"{API}/jobs/{search_id}").json()["status"] == "Paused"
    assert lab.post(f"{API}/jobs/{search_id}:resume", json={}).status_code == 200
    assert {lab.get(f"{API}/jobs/{r['job_id']}").json()["status"] for r in rows} == {"Running"}

    rival = connect(settings, "rival")
    assert rival.get(f"/api/v2/orgs/rival/jobs/{search_id}").status_code == 404
    assert rival.get(f"/api/v2/orgs/rival/jobs/{rows[0]['job_id']}").status_code == 404
    assert rival.get(f"/api/v2/orgs/rival/jobs/{search_id}:logs?automl_experiment_index=0").status_code == 404
    assert rival.post(f"/api/v2/orgs/rival/jobs/{search_id}:cancel").status_code == 404
    assert rival.get("/api/v2/orgs/rival/jobs").json()["jobs"] == []

    assert lab.post(f"{API}/jobs/{search_id}:cancel").status_code == 200
    job = lab.get(f"{API}/jobs/{search_id}").json()
    assert job["status"] == "Canceled" and [r["state"] for r in experiments(job)] == ["canceled", "canceled"]
    for row in rows:
        assert until(lab, row["job_id"], ("Canceled",))["status"] == "Canceled"
    time.sleep(1)  # no experiment starts after a cancel
    assert len(experiments(lab.get(f"{API}/jobs/{search_id}").json())) == 2


@pytest.mark.slow
def test_a_restarted_service_goes_on_with_the_search_it_left(lab, settings):
    import optuna

    search_id = search(lab, {"epochs": 3, "epoch_s": 0.5}, automl_max_recommendations=3)
    assert [r["status"] for r in experiments(lab.get(f"{API}/jobs/{search_id}").json())] == ["Running"]
    restarted = connect(settings)  # a new service on the same state: database and folders
    with restarted:  # served as uvicorn serves it: the driver steps the search with no client asking
        deadline = time.time() + 90
        while _status(restarted, search_id) != "Done":
            assert time.time() < deadline, _status(restarted, search_id)
            time.sleep(0.5)
    job = restarted.get(f"{API}/jobs/{search_id}").json()
    assert [r["state"] for r in experiments(job)] == ["done"] * 3
    study = optuna.load_study(
        study_name=f"tao-automl-{search_id}", storage=f"sqlite:///{settings.state_dir}/service.db"
    )
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3


def _status(client, job_id: str) -> str:
    """The search's status as the database has it, without a request stepping it."""
    from tao_launcher.service.store import Job

    with client.app.state.service.store.session() as session:
        return session.get(Job, job_id).status


def test_the_study_lives_in_postgresql_when_the_service_does(settings):
    url = os.environ.get("PG_URL")
    if not url:
        pytest.skip("no PostgreSQL server (PG_URL); .ci/run starts ../shared/tools/postgres")
    import optuna
    from sqlalchemy import create_engine, text
    from tao_launcher.service.store import Base

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    Base.metadata.drop_all(engine)
    settings.database_url = url
    client = connect(settings)
    workspace = client.post(f"{API}/workspaces", json={"name": "w", "cloud_type": "self_hosted"}).json()["id"]
    dataset = {"type": "n", "format": "t", "workspace": workspace, "cloud_file_path": "train.txt"}
    client.datasets = {"train": client.post(f"{API}/datasets", json=dataset).json()["id"]}
    search_id = search(client, automl_max_recommendations=2)
    assert until(client, search_id)["status"] == "Done"
    study = optuna.load_study(study_name=f"tao-automl-{search_id}", storage=str(engine.url.render_as_string(False)))
    assert len(study.trials) == 2
    with engine.connect() as connection:
        assert connection.execute(text("select count(*) from trials")).scalar() >= 2


@pytest.mark.slurm
@pytest.mark.slow
def test_experiments_run_in_parallel_as_separate_slurm_jobs(lab, settings):
    if not (os.environ.get("SLURM_CONF") and shutil.which("sbatch")):
        pytest.skip("no SLURM cluster (SLURM_CONF, sbatch); .ci/run starts ../shared/tools/slurm-cluster")
    body = {"network_arch": "example_task", "action": "train", "train_datasets": [lab.datasets["train"]],
            "specs": {"epochs": 4, "epoch_s": 1.0}, "backend_details": {"backend_type": "slurm", "partition": "main"},
            "automl_settings": {"automl_enabled": True, "automl_max_recommendations": 3,
                                "automl_max_concurrent": 2}}  # fmt: skip
    search_id = lab.post(f"{API}/jobs", json=body).json()["id"]
    rows = experiments(lab.get(f"{API}/jobs/{search_id}").json())
    scripts = [settings.state_dir / "lab" / r["job_id"] / "slurm_job.sh" for r in rows]
    assert len(rows) == 2 and all(script.is_file() for script in scripts)  # both given to sbatch at once
    job = until(lab, search_id, timeout=240)
    assert job["status"] == "Done" and [r["state"] for r in experiments(job)] == ["done"] * 3
