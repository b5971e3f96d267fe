"""What every route shares: the service's state (settings, database, plugins, sealer), the org a request acts
for (its bearer token checked), a request's body read within its limit and parsed into its typed model, and the
small lookups that answer 404 in one line."""

import datetime
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from tao_launcher.service.errors import RequestError
from tao_launcher.service.requests import MAX_BODY, Body, parse
from tao_launcher.service.store import Store, Token

ORG_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")


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
    automl_step_s: float = 2.0  # how often the running AutoML searches are stepped (automl.Driver)

    def run_as(self, org: str) -> dict:
        """How an org's local jobs run: {user, python} (empty values: as the service, with its interpreter)."""
        return {"user": self.job_users.get(org) or self.job_users.get("*", ""), "python": self.job_python}


@dataclass
class Service:
    settings: ServiceSettings
    store: Store
    plugins: dict
    sealer: object
    docker: dict  # a container job mounts its org's data and its jobs' folders (jobs.py)


def service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(service)]


def org_access(org: str, request: Request, svc: ServiceDep) -> str:
    """The org of the route, once the request's bearer token is one login issued for it (airgapped: none)."""
    check_org(org)
    if svc.settings.airgapped:
        return org
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    with svc.store.session() as session, session.begin():
        row = session.get(Token, digest(token)) if token else None
        if row is not None and age(row.created) > svc.settings.token_ttl_s:
            session.delete(row)
            raise RequestError(401, "token expired; log in again with tao login")
    if row is None or row.org != org:
        raise RequestError(401, "missing or invalid token for this org; log in with tao login")
    return org


Org = Annotated[str, Depends(org_access)]


def body(model: type[Body], limit: int = MAX_BODY):
    """A dependency: the request's JSON body as ``model``, read up to ``limit`` bytes (a larger one is a 413
    before it is all read)."""

    async def read(request: Request) -> Body:
        return parse(model, await read_limited(request, limit))

    return read


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the request body is over {limit} bytes")
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise RequestError(413, f"the request body is over {limit} bytes")
    return bytes(received)


def found(row, what: str):
    if row is None:
        raise RequestError(404, f"{what} not found")
    return row


def check_org(org: str) -> None:
    """Org names become folder names (data and job folders): letters, digits, '_', '-', '.', never '.' or '..'."""
    if not ORG_NAME.fullmatch(org) or set(org) == {"."}:
        shown = org if len(org) <= 64 else org[:64] + "..."  # a hostile name is not echoed whole
        raise RequestError(
            400, f"org name '{shown}' is not allowed; use letters, digits, '_', '-' and '.' (at most 128)"
        )


def age(created: datetime.datetime) -> float:
    """Seconds since ``created`` (SQLite gives naive UTC times back)."""
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.timezone.utc)
    return (datetime.datetime.now(datetime.timezone.utc) - created).total_seconds()


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def inside(root: Path, relative: str) -> Path:
    """``root/relative`` with symlinks resolved, refused when it leaves root or does not exist."""
    path = (root / relative.lstrip("/")).resolve()
    if not path.is_relative_to(root):
        raise RequestError(400, f"cloud_file_path '{relative}' leaves the workspace's folder")
    if not path.exists():
        raise RequestError(400, f"cloud_file_path '{relative}' not found in the workspace's folder")
    return path
