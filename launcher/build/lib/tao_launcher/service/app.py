"""The HTTP API, as NVIDIA's TAO Client (v2) calls it: ``/api/v2/login`` and ``/api/v2/orgs/<org>/...``.

Every org route needs a bearer token issued by login for that org (airgapped mode, only when enabled, needs
none). Workspaces are ``self_hosted``: datasets are folders under ``<data_root>/<org>/``, paths resolved and kept
inside it. Errors have the TAO API's shape, ``{"error_desc": "...", "error_code": <status>}``, also for routes
this service does not serve (cloud workspaces, GPU types, NGC models): 404 with a line saying so.
"""

import datetime
import hashlib
import hmac
import json
import logging
import re
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tao_launcher.plugins import discover
from tao_launcher.service import jobs as job_runner
from tao_launcher.service.microservice import MAX_REQUEST_BYTES as MAX_INFERENCE_BODY
from tao_launcher.service.secret import Sealer
from tao_launcher.service.store import Dataset, Job, Published, Store, Token, Workspace

API = "/api/v2"
MAX_BODY = 2**20  # a request's JSON body: specs and names, never data
log = logging.getLogger("tao_launcher.service")
LOCAL_CLOUD_TYPES = ("self_hosted",)
SELECTED_FILES = Query(default=[])
ORG_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")  # a repeated query parameter (the client's file_lists)


@dataclass
class ServiceSettings:
    data_root: Path  # datasets: <data_root>/<org>/<path>
    state_dir: Path  # job folders: <state_dir>/<org>/<job id>
    database_url: str = ""  # default: sqlite:///<state_dir>/service.db
    api_keys: dict[str, str] = field(default_factory=dict)  # org (or "*") -> key that login accepts
    airgapped: bool = False  # no authentication at all (loopback only unless explicitly overridden)
    docker: dict = field(default_factory=dict)  # local-docker jobs: {image (else the plugin's), mounts, env}
    job_users: dict[str, str] = field(default_factory=dict)  # org (or "*") -> system user its jobs run as (root)
    job_python: str = ""  # the interpreter local jobs run with (default: the service's)
    token_ttl_s: float = 24 * 3600  # a login token's life

    def run_as(self, org: str) -> dict:
        """How an org's local jobs run: {user, python} (empty values: as the service, with its interpreter)."""
        return {"user": self.job_users.get(org) or self.job_users.get("*", ""), "python": self.job_python}


class ApiError(HTTPException):
    pass


def create_app(settings: ServiceSettings) -> FastAPI:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_url or f"sqlite:///{settings.state_dir / 'service.db'}")
    plugins = discover()
    sealer = Sealer(settings.state_dir / "service.secret")
    reattach(store)
    docker = dict(settings.docker)  # a container job mounts its org's data and its jobs' folders (jobs.py)
    app = FastAPI(title="tao-launcher job service", version="2")

    @app.exception_handler(StarletteHTTPException)
    async def errors(request: Request, exc: StarletteHTTPException):
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":  # no route: a client feature this service lacks
            detail = (f"{request.method} {request.url.path} is not served by tao serve (a local job service: no "
                      "cloud workspaces, GPU types, NGC models or AutoML); see docs/job_service.md")  # fmt: skip
        return JSONResponse({"error_desc": detail, "error_code": exc.status_code}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        """A bug: its traceback in the service's log (with the request it came from), one line to the client."""
        log.error("500 on %s %s", request.method, request.url.path, exc_info=exc)
        detail = f"internal error ({type(exc).__name__}); the service's log has the cause"
        return JSONResponse({"error_desc": detail, "error_code": 500}, status_code=500)

    def org_access(org: str, request: Request) -> str:
        _check_org(org)
        if settings.airgapped:
            return org
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        with store.session() as session, session.begin():
            row = session.get(Token, _digest(token)) if token else None
            if row is not None and _age(row.created) > settings.token_ttl_s:
                session.delete(row)
                raise ApiError(401, "token expired; log in again with tao login")
        if row is None or row.org != org:
            raise ApiError(401, "missing or invalid token for this org; log in with tao login")
        return org

    @app.get(f"{API}/health")
    def health():
        return {"status": "ok", "plugins": sorted(plugins)}

    @app.post(f"{API}/login")
    async def login(request: Request):
        body = await _json(request)
        org, key = str(body.get("ngc_org_name") or ""), str(body.get("ngc_key") or "")
        _check_org(org)
        expected = settings.api_keys.get(org) or settings.api_keys.get("*")
        if not org or not expected or not hmac.compare_digest(key.encode(), expected.encode()):
            raise ApiError(401, "login refused: wrong key for this org")
        token = secrets.token_urlsafe(32)
        with store.session() as session, session.begin():
            session.add(Token(digest=_digest(token), org=org))
        return {"token": token, "user_id": org, "org_name": org}

    @app.post(API + "/orgs/{org}/workspaces", status_code=201)
    async def create_workspace(request: Request, org: str = Depends(org_access)):
        body = await _json(request)
        cloud_type = body.get("cloud_type")
        if cloud_type not in LOCAL_CLOUD_TYPES:
            raise ApiError(400, f"cloud_type '{cloud_type}' is not served here; use self_hosted (folders under the "
                           "service's data root)")  # fmt: skip
        root = (settings.data_root / org).resolve()
        root.mkdir(parents=True, exist_ok=True)
        with store.session() as session, session.begin():
            row = Workspace(org=org, name=str(body.get("name") or "workspace"), cloud_type=cloud_type, root=str(root))
            session.add(row)
        return {"id": row.id}

    @app.get(API + "/orgs/{org}/workspaces")
    def list_workspaces(org: str = Depends(org_access)):
        with store.session() as session:
            return {"workspaces": [w.to_api() for w in session.scalars(select(Workspace).where(Workspace.org == org))]}

    @app.get(API + "/orgs/{org}/workspaces/{workspace_id}")
    def get_workspace(workspace_id: str, org: str = Depends(org_access)):
        with store.session() as session:
            return _found(store.owned(session, Workspace, org, workspace_id), "workspace").to_api()

    @app.post(API + "/orgs/{org}/datasets", status_code=201)
    async def create_dataset(request: Request, org: str = Depends(org_access)):
        body = await _json(request)
        with store.session() as session, session.begin():
            workspace = _found(store.owned(session, Workspace, org, str(body.get("workspace"))), "workspace")
            path = _inside(Path(workspace.root), str(body.get("cloud_file_path") or ""))
            row = Dataset(
                org=org,
                workspace_id=workspace.id,
                type=str(body.get("type") or body.get("dataset_type") or ""),
                format=str(body.get("format") or body.get("dataset_format") or ""),
                path=str(path),
            )
            session.add(row)
        return {"id": row.id}

    @app.get(API + "/orgs/{org}/datasets")
    def list_datasets(org: str = Depends(org_access)):
        with store.session() as session:
            return {"datasets": [d.to_api() for d in session.scalars(select(Dataset).where(Dataset.org == org))]}

    @app.get(API + "/orgs/{org}/datasets/{dataset_id}")
    def get_dataset(dataset_id: str, org: str = Depends(org_access)):
        with store.session() as session:
            return _found(store.owned(session, Dataset, org, dataset_id), "dataset").to_api()

    @app.get(API + "/orgs/{org}/jobs:list_base_experiments")
    def list_base_experiments(org: str = Depends(org_access)):
        with store.session() as session:
            published = [p.to_api() for p in session.scalars(select(Published).where(Published.org == org))]
        return {"experiments": job_runner.base_experiments(plugins) + published}

    @app.post(API + "/orgs/{org}/jobs/{job_id}:publish_model")
    async def publish_model(job_id: str, request: Request, org: str = Depends(org_access)):
        body = await _json(request)
        with store.session() as session, session.begin():
            job = job_runner.refresh(_found(store.owned(session, Job, org, job_id), "job"))
            try:
                published = job_runner.publish(session, store, org, job, body)
            except job_runner.RequestError as exc:
                raise ApiError(exc.status, str(exc)) from None
            return {"id": published.id, "message": f"published as base experiment {published.id}"}

    @app.get(API + "/orgs/{org}/jobs:schema")
    def job_schema(
        action: str = "",
        base_experiment_id: str = "",
        network_arch: str = "",
        job_id: str = "",
        org: str = Depends(org_access),
    ):
        with store.session() as session:
            if job_id:
                job = _found(store.owned(session, Job, org, job_id), "job")
                network_arch, action = network_arch or job.network_arch, action or job.action
            published = store.owned(session, Published, org, base_experiment_id) if base_experiment_id else None
            if published is not None:  # the published job is bound when a job is created from it
                network_arch, base_experiment_id = published.network_arch, ""
        try:
            return job_runner.schema(plugins, action, network_arch, base_experiment_id)
        except job_runner.RequestError as exc:
            raise ApiError(exc.status, str(exc)) from None

    @app.post(API + "/orgs/{org}/jobs", status_code=201)
    async def create_job(request: Request, org: str = Depends(org_access)):
        body = await _json(request)
        with store.session() as session, session.begin():
            try:
                job = job_runner.create(session, store, settings.state_dir, org, body, plugins, sealer, docker,
                                        settings.data_root, settings.run_as(org))  # fmt: skip
            except job_runner.RequestError as exc:
                raise ApiError(exc.status, str(exc)) from None
        return {"id": job.id}

    @app.get(API + "/orgs/{org}/jobs")
    def list_jobs(org: str = Depends(org_access)):
        with store.session() as session, session.begin():
            rows = session.scalars(select(Job).where(Job.org == org)).all()
            return {"jobs": [job_runner.to_api(job_runner.refresh(job)) for job in rows]}

    @app.get(API + "/orgs/{org}/jobs/{job_id}:logs")
    def job_logs(job_id: str, org: str = Depends(org_access)):
        with store.session() as session:
            job = _found(store.owned(session, Job, org, job_id), "job")
        return PlainTextResponse(job_runner.logs(job))

    @app.post(API + "/orgs/{org}/jobs/{job_id}:cancel")
    def cancel_job(job_id: str, org: str = Depends(org_access)):
        return _stop(job_id, org, paused=False)

    @app.post(API + "/orgs/{org}/jobs/{job_id}:pause")
    def pause_job(job_id: str, org: str = Depends(org_access)):
        return _stop(job_id, org, paused=True)

    def _stop(job_id: str, org: str, paused: bool) -> dict:
        with store.session() as session, session.begin():
            job = job_runner.refresh(_found(store.owned(session, Job, org, job_id), "job"))
            try:
                job_runner.cancel(job, paused=paused)
            except job_runner.RequestError as exc:
                raise ApiError(exc.status, str(exc)) from None
        return {"message": f"job {job_id} {'paused' if paused else 'canceled'}"}

    @app.post(API + "/orgs/{org}/jobs/{job_id}:resume")
    async def resume_job(job_id: str, request: Request, org: str = Depends(org_access)):
        body = await _json(request)
        with store.session() as session, session.begin():
            job = _found(store.owned(session, Job, org, job_id), "job")
            try:
                job_runner.resume(job, plugins, sealer, body.get("specs"))
            except job_runner.RequestError as exc:
                raise ApiError(exc.status, str(exc)) from None
        return {"message": f"job {job_id} resumed"}

    @app.get(API + "/orgs/{org}/jobs/{job_id}:download")
    def download(job_id: str, org: str = Depends(org_access)):
        with store.session() as session:
            job = _found(store.owned(session, Job, org, job_id), "job")
        return Response(job_runner.archive(job), media_type="application/gzip")

    @app.get(API + "/orgs/{org}/jobs/{job_id}:download_selective_files")
    def download_selected(job_id: str, file_lists: list[str] = SELECTED_FILES, org: str = Depends(org_access)):
        with store.session() as session:
            job = _found(store.owned(session, Job, org, job_id), "job")
        try:
            return Response(job_runner.archive(job, file_lists or None), media_type="application/gzip")
        except job_runner.RequestError as exc:
            raise ApiError(exc.status, str(exc)) from None

    @app.get(API + "/orgs/{org}/jobs/{job_id}:list_files")
    def list_files(job_id: str, org: str = Depends(org_access)):
        with store.session() as session:
            job = _found(store.owned(session, Job, org, job_id), "job")
        return job_runner.files(job)

    @app.post(API + "/orgs/{org}/inference_microservices:start", status_code=201)
    async def start_microservice(request: Request, org: str = Depends(org_access)):
        body = await _json(request)
        with store.session() as session, session.begin():
            try:
                job = job_runner.start_microservice(session, store, settings.state_dir, org, body, plugins, sealer,
                                                    settings.run_as(org))  # fmt: skip
            except job_runner.RequestError as exc:
                raise ApiError(exc.status, str(exc)) from None
        return {"id": job.id, "status": "Starting"}

    @app.get(API + "/orgs/{org}/inference_microservices/{ms_id}:status")
    def microservice_status(ms_id: str, org: str = Depends(org_access)):
        with store.session() as session, session.begin():
            job = job_runner.refresh(_microservice(session, org, ms_id))
            port = job_runner.microservice_port(job)
            status = "Ready" if port else "Starting" if job.status == "Running" else job.status
        return {"id": ms_id, "status": status, "model_job_id": job.parent_id}

    @app.post(API + "/orgs/{org}/inference_microservices/{ms_id}:inference")
    async def microservice_inference(ms_id: str, request: Request, org: str = Depends(org_access)):
        body = await _json(request, MAX_INFERENCE_BODY)
        with store.session() as session, session.begin():
            job = job_runner.refresh(_microservice(session, org, ms_id))
            port = job_runner.microservice_port(job)
        if port is None:
            raise ApiError(409, f"microservice {ms_id} is not ready ({job.status}); ask its status first")
        return await run_in_threadpool(_forward, port, body)  # a slow model never holds up other requests

    @app.delete(API + "/orgs/{org}/inference_microservices/{ms_id}:stop")
    def stop_microservice(ms_id: str, org: str = Depends(org_access)):
        with store.session() as session, session.begin():
            job = job_runner.refresh(_microservice(session, org, ms_id))
            if job.status == "Running":
                job_runner.cancel(job)
            job.status = "Stopped"
        return {"id": ms_id, "status": "Stopped"}

    def _microservice(session, org: str, ms_id: str):
        job = store.owned(session, Job, org, ms_id)
        if job is None or job.kind != "microservice":
            raise ApiError(404, "inference microservice not found")
        return job

    # after the :verb routes: {job_id} would also match 'id:logs'
    @app.get(API + "/orgs/{org}/jobs/{job_id}")
    def get_job(job_id: str, org: str = Depends(org_access)):
        with store.session() as session, session.begin():
            job = _found(store.owned(session, Job, org, job_id), "job")
            return job_runner.to_api(job_runner.refresh(job))

    return app


def reattach(store: Store) -> None:
    """At start-up, every job the database says is running is looked up through its executor: still running
    (re-attached), finished meanwhile (its exit code recorded), or gone (marked Error, and logged): none is
    silently forgotten."""
    with store.session() as session, session.begin():
        for job in session.scalars(select(Job).where(Job.status.in_(job_runner.RUNNING_STATES))):
            job_runner.refresh(job)
            level = logging.WARNING if job.status == "Error" else logging.INFO
            log.log(level, "job %s (%s %s): %s after the restart", job.id, job.network_arch, job.action, job.status)


async def _json(request: Request, limit: int = MAX_BODY) -> dict:
    """The request's JSON object, read up to ``limit`` bytes: a larger body is a 413 before it is all read."""
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is over {limit} bytes")
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise ApiError(413, f"the request body is over {limit} bytes")
    try:
        body = json.loads(received)
    except ValueError:
        raise ApiError(400, "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _forward(port: int, body: dict) -> JSONResponse:
    """Hand a request to a microservice on loopback; its answer (or its one-line error) comes back as it is."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/infer", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return JSONResponse(json.loads(response.read()), status_code=response.status)
    except urllib.error.HTTPError as exc:
        return JSONResponse(json.loads(exc.read() or b"{}"), status_code=exc.code)
    except OSError as exc:
        raise ApiError(503, f"the microservice did not answer ({exc})") from None


def _check_org(org: str) -> None:
    """Org names become folder names (data and job folders): letters, digits, '_', '-', '.', never '.' or '..'."""
    if not ORG_NAME.fullmatch(org) or set(org) == {"."}:
        shown = org if len(org) <= 64 else org[:64] + "..."  # a hostile name is not echoed whole
        raise ApiError(400, f"org name '{shown}' is not allowed; use letters, digits, '_', '-' and '.' (at most 128)")


def _age(created: datetime.datetime) -> float:
    """Seconds since ``created`` (SQLite gives naive UTC times back)."""
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.timezone.utc)
    return (datetime.datetime.now(datetime.timezone.utc) - created).total_seconds()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _found(row, what: str):
    if row is None:
        raise ApiError(404, f"{what} not found")
    return row


def _inside(root: Path, relative: str) -> Path:
    """``root/relative`` with symlinks resolved, refused when it leaves root or does not exist."""
    path = (root / relative.lstrip("/")).resolve()
    if path != root and root not in path.parents:
        raise ApiError(400, f"cloud_file_path '{relative}' leaves the workspace's folder")
    if not path.exists():
        raise ApiError(400, f"cloud_file_path '{relative}' not found in the workspace's folder")
    return path
