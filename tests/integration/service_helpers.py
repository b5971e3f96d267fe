"""The job service with this plugin, in process, as the tests drive it: an org's token, its datasets, its jobs."""

import time
from pathlib import Path

import pytest


class OrgClient:
    """One org's view of a service made for a test (``TAO_LAUNCHER_PLUGINS=optical_inspection``)."""

    def __init__(self, client, org: str, key: str = "k"):
        self.client, self.org = client, org
        token = client.post("/api/v2/login", json={"ngc_key": key, "ngc_org_name": org}).json()["token"]
        self.headers = {"Authorization": f"Bearer {token}"}
        self.api = f"/api/v2/orgs/{org}"
        self._workspace = None

    def get(self, route: str, **kwargs):
        return self.client.get(self.api + route, headers=self.headers, **kwargs)

    def post(self, route: str, body: dict):
        return self.client.post(self.api + route, headers=self.headers, json=body)

    def dataset(self, path: str) -> str:
        """A dataset of the org: ``path`` under its data folder."""
        if self._workspace is None:
            self._workspace = self.post("/workspaces", {"name": "w", "cloud_type": "self_hosted"}).json()["id"]
        return self.post("/datasets", {"workspace": self._workspace, "cloud_file_path": path}).json()["id"]

    def create(self, action: str, specs: dict, **body):
        return self.post("/jobs", {"kind": "experiment", "network_arch": "optical_inspection", "action": action,
                                   "specs": specs, **body})  # fmt: skip

    def finished(self, job_id: str, timeout: float = 300) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.get(f"/jobs/{job_id}").json()
            if job["status"] not in ("Pending", "Running"):
                return job
            time.sleep(0.5)
        pytest.fail(f"job {job_id} did not finish in {timeout} s")

    def run(self, action: str, specs: dict, **body) -> str:
        """Create a job, wait for it, and return its id; a job that does not end Done fails with its log."""
        created = self.create(action, specs, **body)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        assert self.finished(job_id)["status"] == "Done", self.get(f"/jobs/{job_id}:logs").text[-3000:]
        return job_id


def service(tmp_path: Path, monkeypatch, **settings):
    """A TestClient of ``tao serve`` with this plugin, data under ``tmp_path/data``, state under ``tmp_path/state``,
    login key ``k`` for every org."""
    from fastapi.testclient import TestClient
    from tao_launcher.service.app import ServiceSettings, create_app

    monkeypatch.setenv("TAO_LAUNCHER_PLUGINS", "optical_inspection")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    (tmp_path / "data").mkdir(exist_ok=True)
    return TestClient(
        create_app(ServiceSettings(tmp_path / "data", tmp_path / "state", api_keys={"*": "k"}, **settings))
    )


def tiny_job_specs(tiny: dict, epochs: int = 1) -> dict:
    """The tiny spec's network and data layout as a client sends them (datasets are bound by id)."""
    return {
        "model": tiny["model"],
        "train": {**tiny["train"], "num_epochs": epochs},
        "dataset": {k: v for k, v in tiny["dataset"].items() if not k.endswith("_dataset")},
    }
