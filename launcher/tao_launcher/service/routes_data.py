"""Login, health, workspaces and datasets. Workspaces are ``self_hosted``: a dataset is a folder or file under
``<data_root>/<org>/``, its path resolved and kept inside it."""

import hmac
import secrets
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends
from sqlalchemy import select

from tao_launcher.service.context import Org, Service, ServiceDep, body, check_org, digest, found, inside
from tao_launcher.service.errors import RequestError
from tao_launcher.service.requests import DatasetRequest, LoginRequest, WorkspaceRequest
from tao_launcher.service.store import Dataset, Token, Workspace

LOCAL_CLOUD_TYPES = ("self_hosted",)
router = APIRouter()


@router.get("/health")
def health(svc: ServiceDep):
    return {"status": "ok", "plugins": sorted(svc.plugins)}


@router.post("/login")
def login(request: Annotated[LoginRequest, Depends(body(LoginRequest))], svc: ServiceDep):
    org, key = request.ngc_org_name, request.ngc_key
    check_org(org)
    expected = svc.settings.api_keys.get(org) or svc.settings.api_keys.get("*")
    if not org or not expected or not hmac.compare_digest(key.encode(), expected.encode()):
        raise RequestError(401, "login refused: wrong key for this org")
    token = secrets.token_urlsafe(32)
    with svc.store.session() as session, session.begin():
        session.add(Token(digest=digest(token), org=org))
    return {"token": token, "user_id": org, "org_name": org}


@router.post("/orgs/{org}/workspaces", status_code=201)
def create_workspace(
    request: Annotated[WorkspaceRequest, Depends(body(WorkspaceRequest))],
    org: Org,
    svc: ServiceDep,
):
    if request.cloud_type not in LOCAL_CLOUD_TYPES:
        raise RequestError(400, f"cloud_type '{request.cloud_type}' is not served here; use self_hosted (folders "
                           "under the service's data root)")  # fmt: skip
    root = (svc.settings.data_root / org).resolve()
    root.mkdir(parents=True, exist_ok=True)
    with svc.store.session() as session, session.begin():
        row = Workspace(org=org, name=request.name, cloud_type=request.cloud_type, root=str(root))
        session.add(row)
    return {"id": row.id}


@router.get("/orgs/{org}/workspaces")
def list_workspaces(org: Org, svc: ServiceDep):
    return {"workspaces": _listed(svc, Workspace, org)}


@router.get("/orgs/{org}/workspaces/{workspace_id}")
def get_workspace(workspace_id: str, org: Org, svc: ServiceDep):
    return _shown(svc, Workspace, org, workspace_id, "workspace")


@router.post("/orgs/{org}/datasets", status_code=201)
def create_dataset(
    request: Annotated[DatasetRequest, Depends(body(DatasetRequest))],
    org: Org,
    svc: ServiceDep,
):
    with svc.store.session() as session, session.begin():
        workspace = found(svc.store.owned(session, Workspace, org, request.workspace), "workspace")
        path = inside(Path(workspace.root), request.cloud_file_path)
        row = Dataset(org=org, workspace_id=workspace.id, type=request.type, format=request.format, path=str(path))
        session.add(row)
    return {"id": row.id}


@router.get("/orgs/{org}/datasets")
def list_datasets(org: Org, svc: ServiceDep):
    return {"datasets": _listed(svc, Dataset, org)}


@router.get("/orgs/{org}/datasets/{dataset_id}")
def get_dataset(dataset_id: str, org: Org, svc: ServiceDep):
    return _shown(svc, Dataset, org, dataset_id, "dataset")


Owned = TypeVar("Owned", Workspace, Dataset)


def _listed(svc: Service, table: type[Owned], org: str) -> list[dict]:
    with svc.store.session() as session:
        return [row.to_api() for row in session.scalars(select(table).where(table.org == org))]


def _shown(svc: Service, table: type[Owned], org: str, row_id: str, what: str) -> dict:
    with svc.store.session() as session:
        return found(svc.store.owned(session, table, org, row_id), what).to_api()
