"""Run word_counter.py (a plugin written from the docs alone) through everything docs/plugin_protocol.md promises:
discovery, a local run, a dry run with a mounts file, and the job service (a keyed job, a child by parent, the
inference microservice, typed bodies). Every step says what it expected when it fails.

    python launcher/examples/from_the_docs/check.py        # exit 0: every promise kept

Needs tao-launcher[service]; the plugin is installed for the run only, as a distribution in a temporary folder.
"""

import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
API = "/api/v2/orgs/lab"


def install(site: Path, entry_point: str, dist: str) -> None:
    """What ``pip install`` leaves: the module and a dist-info naming the entry point."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "word_counter.py").write_text((HERE / "word_counter.py").read_text())
    info = site / f"{dist}-1.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text(f"[tao_launcher.plugins]\n{entry_point} = word_counter:PLUGIN\n")


def tao(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tao_launcher.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def expect(condition, what: str) -> None:
    if not condition:
        raise SystemExit(f"check failed: {what}")


def command_line(root: Path, env: dict) -> None:
    listed = tao("plugins", cwd=root, env=env)
    expect(listed.returncode == 0 and "word_counter" in listed.stdout and "1.0.0" in listed.stdout,
           f"`tao plugins` lists word_counter 1.0.0: {listed.stdout}{listed.stderr}")  # fmt: skip

    (root / "data").mkdir()
    (root / "data" / "book.txt").write_text("the cat sat on the mat the end")
    spec = {"results_dir": str(root / "data" / "results"), "text": str(root / "data" / "book.txt")}
    (root / "spec.json").write_text(json.dumps(spec))
    ran = tao("--local", "model", "word_counter", "fit", "--config", "spec.json", cwd=root, env=env)
    expect(ran.returncode == 0, f"a local fit exits 0: {ran.stderr}")
    status = json.loads((root / "data" / "results" / "fit" / "status.json").read_text())
    expect(status["kpi"]["words"] == 6, f"the local fit learned 6 words: {status}")

    mounts = root / "mounts.json"
    mounts.write_text(json.dumps({"Mounts": [{"source": str(root / "data"), "destination": "/data"}]}))
    dry = tao("--dry-run", "model", "word_counter", "fit", "--config", str(root / "spec.json"), cwd=root,
              env={**env, "LAUNCHER_MOUNTS": str(mounts), "XDG_CACHE_HOME": str(root / "cache")})  # fmt: skip
    expect(dry.returncode == 0, f"a dry run exits 0: {dry.stderr}")
    words = shlex.split(dry.stdout)
    expect(
        words[-4:-1] == ["word_counter", "fit", "--config"], f"the container runs argv_prefix, action, option: {words}"
    )
    kept = next((root / "cache" / "tao_launcher" / "dry_run").iterdir())
    translated = json.loads((kept / Path(words[-1]).name).read_text())  # the plugin reads its spec as JSON
    expect(translated["text"] == "/data/book.txt", f"the spec's paths are the container's: {translated}")


def job_service(root: Path) -> None:
    from fastapi.testclient import TestClient
    from tao_launcher.service.app import ServiceSettings, create_app

    (root / "svc" / "lab").mkdir(parents=True)
    (root / "svc" / "lab" / "book.txt").write_text("a b c d")
    (root / "svc" / "lab" / "page.txt").write_text("a b x y")
    client = TestClient(create_app(ServiceSettings(root / "svc", root / "state", api_keys={"*": "k"})))
    token = client.post("/api/v2/login", json={"ngc_key": "k", "ngc_org_name": "lab"}).json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    workspace = client.post(f"{API}/workspaces", json={"name": "w", "cloud_type": "self_hosted"}).json()["id"]
    datasets = {
        name: client.post(
            f"{API}/datasets",
            json={"type": "text", "format": "text", "workspace": workspace, "cloud_file_path": f"{name}.txt"},
        ).json()["id"]  # fmt: skip
        for name in ("book", "page")
    }

    def finished(job_id: str) -> dict:
        deadline = time.time() + 60
        while (job := client.get(f"{API}/jobs/{job_id}").json())["status"] in ("Pending", "Running"):
            expect(time.time() < deadline, f"job {job_id} finishes within a minute: {job}")
            time.sleep(0.2)
        expect(job["status"] == "Done", f"job {job_id} is Done: {client.get(f'{API}/jobs/{job_id}:logs').text}")
        return job

    fit = client.post(f"{API}/jobs", json={"kind": "experiment", "network_arch": "word_counter", "action": "fit",
                                           "specs": {}, "train_datasets": [datasets["book"]],
                                           "encryption_key": "tok-1"})  # fmt: skip
    expect(fit.status_code == 201, f"a fit job is created: {fit.text}")
    fit_id = fit.json()["id"]
    digest = hashlib.sha256(b"tok-1").hexdigest()[:8]
    expect(finished(fit_id)["job_details"]["kpi"] == {"words": 4, "token_digest": digest},
           "the job's kpi comes from status.json, and the key reached the task from its environment")  # fmt: skip
    written = (root / "state" / "lab" / fit_id / "spec.json").read_text()
    expect("token" not in json.loads(written) and "tok-1" not in written,
           f"the JSON spec holds no secret and no reference to one (secret_spec_value ''): {written}")  # fmt: skip

    child = {"kind": "experiment", "network_arch": "word_counter", "action": "check", "specs": {},
             "eval_dataset": datasets["page"]}  # fmt: skip
    wrong = client.post(f"{API}/jobs", json={**child, "parent_id": fit_id})
    expect(wrong.status_code == 422 and "parent_job_id" in wrong.json()["error_desc"],
           f"an unknown field is a 422 naming the field meant: {wrong.text}")  # fmt: skip
    check = client.post(f"{API}/jobs", json={**child, "parent_job_id": fit_id}).json()["id"]
    kpi = finished(check)["job_details"]["kpi"]
    expect(kpi == {"unknown_share": 0.5, "token_digest": digest}, f"the child read its parent's model and key: {kpi}")

    ms = client.post(f"{API}/inference_microservices:start", json={"model_path": fit_id}).json()["id"]
    deadline = time.time() + 60
    while client.get(f"{API}/inference_microservices/{ms}:status").json()["status"] != "Ready":
        expect(time.time() < deadline, "the microservice is Ready within a minute")
        time.sleep(0.2)
    answer = client.post(f"{API}/inference_microservices/{ms}:inference", json={"input": "a b z"}).json()
    expect(answer == {"unknown_share": 1 / 3}, f"the microservice answers with the plugin's predictor: {answer}")
    refused = client.post(f"{API}/inference_microservices/{ms}:inference", json={"input": 3})
    expect(refused.status_code == 400 and refused.json()["error_desc"] == "input must be a text",
           f"the predictor's ValueError is a 400 in TAO's shape: {refused.text}")  # fmt: skip
    client.delete(f"{API}/inference_microservices/{ms}:stop")


def misnamed(root: Path, env: dict) -> None:
    site = root / "misnamed"
    install(site, "words", "word-counter-misnamed")
    listed = tao("plugins", cwd=root, env={**env, "PYTHONPATH": str(site), "TAO_LAUNCHER_PLUGINS": "words"})
    expect("word_counter" not in listed.stdout and "words" in listed.stderr and "word_counter" in listed.stderr,
           f"an entry point whose name is not the plugin's is skipped in one line: {listed.stderr}")  # fmt: skip


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        install(root / "site", "word_counter", "word-counter")
        env = {**os.environ, "PYTHONPATH": str(root / "site"), "TAO_LAUNCHER_PLUGINS": "word_counter"}
        command_line(root, env)
        misnamed(root, env)
        sys.path.insert(0, str(root / "site"))  # the service runs in this process; its jobs get PYTHONPATH
        os.environ.update(PYTHONPATH=env["PYTHONPATH"], TAO_LAUNCHER_PLUGINS="word_counter")
        job_service(root)
    print("word_counter: every promise of docs/plugin_protocol.md checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
