"""The HTTP API, as NVIDIA's TAO Client (v2) calls it: ``/api/v2/login`` and ``/api/v2/orgs/<org>/...``.

Every org route needs a bearer token issued by login for that org (airgapped mode, only when enabled, needs
none). The routes live in routes_data.py (login, workspaces, datasets), routes_jobs.py and
routes_microservices.py; request bodies are typed (requests.py). Every error has the TAO API's shape,
``{"error_desc": "...", "error_code": <status>}``, translated here once: a RequestError from a route or the job
runner, a route this service does not serve (cloud workspaces, GPU types, NGC models: 404 with a line
saying so), and a bug (500, its traceback in the service's log only).
"""

import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException

from tao_launcher.plugins import discover
from tao_launcher.service import automl, routes_data, routes_jobs, routes_microservices
from tao_launcher.service import jobs as job_runner
from tao_launcher.service.context import Service, ServiceSettings
from tao_launcher.service.errors import RequestError
from tao_launcher.service.requests import MAX_BODY
from tao_launcher.service.secret import Sealer
from tao_launcher.service.store import Job, Store

__all__ = ["MAX_BODY", "ServiceSettings", "create_app"]
API = "/api/v2"
log = logging.getLogger("tao_launcher.service")


def create_app(settings: ServiceSettings) -> FastAPI:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_url or f"sqlite:///{settings.state_dir / 'service.db'}")
    reattach(store)
    svc = Service(settings, store, discover(), Sealer(settings.state_dir / "service.secret"), dict(settings.docker))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        """While the service serves, its AutoML searches go on (also those a restart found running)."""
        driver = automl.Driver(svc, settings.automl_step_s)
        driver.start()
        yield
        driver.stopped.set()

    app = FastAPI(title="tao-launcher job service", version="2", lifespan=lifespan)
    app.state.service = svc
    for routes in (routes_data, routes_jobs, routes_microservices):
        app.include_router(routes.router, prefix=API)

    @app.exception_handler(RequestError)
    async def refused(request: Request, exc: RequestError):
        return _tao_error(exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):  # a path or query parameter
        error = exc.errors()[0]
        return _tao_error(422, f"request field '{'.'.join(map(str, error['loc']))}': {error['msg']}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":  # no route: a client feature this service lacks
            detail = (f"{request.method} {request.url.path} is not served by tao serve (a local job service: no "
                      "cloud workspaces, GPU types or NGC models); see docs/job_service.md")  # fmt: skip
        return _tao_error(exc.status_code, str(detail))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        """A bug: its traceback in the service's log (with the request it came from), one line to the client."""
        log.error("500 on %s %s", request.method, request.url.path, exc_info=exc)
        return _tao_error(500, f"internal error ({type(exc).__name__}); the service's log has the cause")

    return app


def _tao_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error_desc": message, "error_code": status}, status_code=status)


def reattach(store: Store) -> None:
    """At start-up, every job the database says is running is looked up through its executor: still running
    (re-attached), finished meanwhile (its exit code recorded), or gone (marked Error, and logged): none is
    silently forgotten."""
    with store.session() as session, session.begin():
        for job in session.scalars(select(Job).where(Job.status.in_(job_runner.RUNNING_STATES))):
            job_runner.refresh(job)
            level = logging.WARNING if job.status == "Error" else logging.INFO
            log.log(level, "job %s (%s %s): %s after the restart", job.id, job.network_arch, job.action, job.status)
