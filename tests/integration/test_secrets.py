"""No secret on disk or on screen: a key given on the command line, in the spec, through the environment or to the
job service (``--encryption-key``, or in a job's specs) is found in no file a run, a failed run, an interrupted
run, a dry-run or a service job leaves, and in nothing they print."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_spec_dict
from tests.integration.hardening_helpers import cli_env, oi_command
from tests.integration.service_helpers import OrgClient, service, tiny_job_specs


def files_holding(root: Path, secret: str, exclude=()) -> list[str]:
    """Every file under ``root`` (hidden ones and binary ones too) whose bytes hold ``secret``."""
    return [
        str(p)
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and p not in exclude and secret.encode() in p.read_bytes()
    ]


def run_cli(*argv, env=None, code=0) -> str:
    out = subprocess.run(oi_command(*argv), capture_output=True, text=True, env=env or cli_env())
    assert out.returncode == code, out.stderr[-3000:]
    return out.stdout + out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("given", ["command line", "spec", "environment"])
def test_no_task_run_leaves_or_prints_the_key(tmp_path, tiny_data, given):
    key = f"key-given-on-the-{given.replace(' ', '-')}-8852"
    results = tmp_path / "results"
    spec_data = tiny_spec_dict(tiny_data, results)
    spec_data["train"]["num_epochs"] = 1
    spec_data.pop("encryption_key")
    extra, env = [], cli_env()
    if given == "command line":
        extra = [f"encryption_key={key}"]
    elif given == "spec":
        spec_data["encryption_key"] = key
    else:
        spec_data["encryption_key"] = "${oc.env:OI_TEST_KEY}"
        env = {**env, "OI_TEST_KEY": key}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_data))
    checkpoint = results / "train" / "oi_model_latest.pth"

    printed = run_cli("train", "-e", spec, *extra, env=env)
    assert "this project's format, which TAO's tools cannot read" in printed  # the one line about TAO
    printed += run_cli("evaluate", "-e", spec, *extra, f"evaluate.checkpoint={checkpoint}", env=env)
    printed += run_cli("export", "-e", spec, *extra, f"export.checkpoint={checkpoint}", env=env)
    # a failed run whose error line would quote the key (a path that holds it)
    failed = run_cli("validate", "-e", spec, *extra, f"dataset.train_dataset.csv_path={tmp_path}/{key}.csv",
                     env=env, code=3)  # fmt: skip
    assert "error: " in failed and "*****" in failed
    printed += failed

    assert key not in printed
    assert files_holding(tmp_path, key, exclude={spec}) == []
    saved = yaml.safe_load((results / "train" / "experiment.yaml").read_text())
    assert saved["encryption_key"] == "*****"
    assert (
        (results / "train" / "train.log")
        .read_text()
        .splitlines()[0]
        .endswith("train -e " + str(spec) + (" encryption_key=*****" if extra else ""))
    )


@pytest.mark.slow
def test_an_interrupted_training_leaves_no_key(tmp_path, tiny_data):
    """The first report: the command line, key included, was the first line of train.log."""
    key = "interrupted-run-key-4410"
    spec_data = tiny_spec_dict(tiny_data, tmp_path / "results")
    spec_data.pop("encryption_key")
    spec_data["train"]["num_epochs"] = 5000
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_data))
    status = tmp_path / "results" / "train" / "status.json"
    first = subprocess.Popen(
        oi_command("train", "-e", spec, f"encryption_key={key}"), stderr=subprocess.PIPE, text=True, env=cli_env()
    )
    deadline = time.time() + 120
    while not (status.exists() and '"epoch"' in status.read_text()) and time.time() < deadline:
        assert first.poll() is None, first.communicate()[1]
        time.sleep(0.2)
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 143 and key not in err
    assert "Interrupted by SIGTERM" in status.read_text()
    assert files_holding(tmp_path, key) == []


def test_a_dry_run_prints_and_keeps_no_secret(capsys, tmp_path, monkeypatch):
    """The printed command hides the key of an override and of the spec, and a secret-looking variable of the
    mounts file is printed as --env NAME (docker reads its value from the caller's environment); the translated
    spec it leaves behind holds no key either."""
    key, spec_key, env_key = "override-key-3390", "spec-key-5521", "env-key-7716"
    data = tmp_path / "data"
    data.mkdir()
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"results_dir": str(data / "r"), "encryption_key": spec_key}))
    mounts = {
        "Mounts": [{"source": str(data), "destination": "/d"}],
        "Envs": [{"variable": "OI_KEY", "value": env_key}],
    }
    (tmp_path / "mounts.json").write_text(json.dumps(mounts))
    monkeypatch.setenv("LAUNCHER_MOUNTS", str(tmp_path / "mounts.json"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from tao_launcher.cli import main

    for spec_option in (["-e", str(spec)], [f"-e={spec}"], [f"--experiment_spec_file={spec}"]):
        with pytest.raises(SystemExit) as done:
            main(["--dry-run", "model", "optical_inspection", "train", *spec_option, f"encryption_key={key}"])
        printed = capsys.readouterr()
        assert done.value.code == 0, printed.err
        for secret in (key, spec_key, env_key):
            assert secret not in printed.out + printed.err
        words = shlex.split(printed.out)
        assert words[-4:-1] == ["train", spec_option[0].split("=")[0], "/tao_launcher/spec/spec.yaml"]
        assert words[-1] == "encryption_key=*****" and "OI_KEY" in words and f"OI_KEY={env_key}" not in words
        assert "secrets are shown as *****" in printed.err
    assert files_holding(tmp_path / "cache", spec_key) == []
    kept = list((tmp_path / "cache").rglob("spec.yaml"))
    assert len(kept) == 3 and all(yaml.safe_load(p.read_text())["encryption_key"] == "*****" for p in kept)


@pytest.mark.slow
def test_service_jobs_leave_no_key_in_their_folders_logs_or_database(tmp_path, tiny_data, monkeypatch):
    """Keys given as --encryption-key and inside a job's specs are sealed; job.log (the task's console), the
    database, spec.yaml and every result hold neither, and a child job inherits the key."""
    pytest.importorskip("fastapi", reason="the job service needs tao-launcher[service]")
    body_key, spec_key = "given-as-encryption-key-6671", "given-in-the-specs-2291"
    client = service(tmp_path, monkeypatch)
    shutil.copytree(tiny_data, tmp_path / "data" / "acme" / "tiny")
    acme = OrgClient(client, "acme")
    specs = tiny_job_specs(tiny_spec_dict(tiny_data, Path("unused")))
    trained = {"train_datasets": [acme.dataset("tiny/train.csv")], "eval_dataset": acme.dataset("tiny/val.csv")}
    by_body = acme.create("train", specs, encryption_key=body_key, **trained).json()["id"]
    by_spec = acme.create("train", {**specs, "encryption_key": spec_key}, **trained).json()["id"]
    refused = acme.create("train", {"encryption_key": spec_key}, encryption_key=body_key, **trained)
    assert refused.status_code == 400 and "two different keys" in refused.json()["error_desc"]
    assert spec_key not in refused.text and body_key not in refused.text
    for job_id in (by_body, by_spec):
        assert acme.finished(job_id)["status"] == "Done", acme.get(f"/jobs/{job_id}:logs").text
    # the training's network, as the client's; the key comes from the parent
    child = acme.run("evaluate", specs, parent_job_id=by_spec, eval_dataset=acme.dataset("tiny/test.csv"))

    logs = "".join(acme.get(f"/jobs/{j}:logs").text for j in (by_body, by_spec, child))
    assert "Trained 1 epochs" in logs and "Decision threshold" in logs
    secret_file = tmp_path / "state" / "service.secret"
    for key in (body_key, spec_key):
        assert key not in logs
        assert files_holding(tmp_path, key, exclude={secret_file}) == []
    saved = yaml.safe_load((tmp_path / "state" / "acme" / by_spec / "spec.yaml").read_text())
    assert saved["encryption_key"] == "${oc.env:TAO_JOB_ENCRYPTION_KEY}"  # the sealed key, opened in the job
    assert os.stat(secret_file).st_mode & 0o777 == 0o600
