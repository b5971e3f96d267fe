"""Inference microservices: a process per finished model job that keeps the model loaded (the plugin's
``inference_server``); requests are forwarded to it on loopback without holding up the service."""

import json
import urllib.error
import urllib.request
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tao_launcher.service import jobs as job_runner
from tao_launcher.service.context import Org, Service, ServiceDep, body, read_limited
from tao_launcher.service.errors import RequestError
from tao_launcher.service.microservice import MAX_REQUEST_BYTES
from tao_launcher.service.requests import MicroserviceRequest, json_object
from tao_launcher.service.store import Job

router = APIRouter(prefix="/orgs/{org}/inference_microservices")


@router.post(":start", status_code=201)
def start_microservice(
    request: Annotated[MicroserviceRequest, Depends(body(MicroserviceRequest))],
    org: Org,
    svc: ServiceDep,
):
    with svc.store.session() as session, session.begin():
        job = job_runner.start_microservice(session, svc.store, svc.settings.state_dir, org, request.fields(),
                                            svc.plugins, svc.sealer, svc.settings.run_as(org))  # fmt: skip
    return {"id": job.id, "status": "Starting"}


@router.get("/{ms_id}:status")
def microservice_status(ms_id: str, org: Org, svc: ServiceDep):
    with svc.store.session() as session, session.begin():
        job = job_runner.refresh(_microservice(svc, session, org, ms_id))
        port = job_runner.microservice_port(job)
        status = "Ready" if port else "Starting" if job.status == "Running" else job.status
    return {"id": ms_id, "status": status, "model_job_id": job.parent_id}


@router.post("/{ms_id}:inference")
async def microservice_inference(ms_id: str, request: Request, org: Org, svc: ServiceDep):
    # The body is the plugin's to read (its predictor answers a bad one with 400): only its size is checked here.
    payload = json_object(await read_limited(request, MAX_REQUEST_BYTES))
    with svc.store.session() as session, session.begin():
        job = job_runner.refresh(_microservice(svc, session, org, ms_id))
        port = job_runner.microservice_port(job)
    if port is None:
        raise RequestError(409, f"microservice {ms_id} is not ready ({job.status}); ask its status first")
    return await run_in_threadpool(_forward, port, payload)  # a slow model never holds up other requests


@router.delete("/{ms_id}:stop")
def stop_microservice(ms_id: str, org: Org, svc: ServiceDep):
    with svc.store.session() as session, session.begin():
        job = job_runner.refresh(_microservice(svc, session, org, ms_id))
        if job.status == "Running":
            job_runner.cancel(job)
        job.status = "Stopped"
    return {"id": ms_id, "status": "Stopped"}


def _microservice(svc: Service, session, org: str, ms_id: str) -> Job:
    job = svc.store.owned(session, Job, org, ms_id)
    if job is None or job.kind != "microservice":
        raise RequestError(404, "inference microservice not found")
    return job


def _forward(port: int, payload: dict) -> JSONResponse:
    """Hand a request to a microservice on loopback; its answer (or its one-line error) comes back as it is."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/infer", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return JSONResponse(json.loads(response.read()), status_code=response.status)
    except urllib.error.HTTPError as exc:
        return JSONResponse(json.loads(exc.read() or b"{}"), status_code=exc.code)
    except OSError as exc:
        raise RequestError(503, f"the microservice did not answer ({exc})") from None
