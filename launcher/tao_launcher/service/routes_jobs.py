"""Jobs: base experiments and schemas, creating, following, stopping, resuming and downloading them, publishing
a finished training. The work is jobs.py's; these routes find the org's rows and hand them over."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import select

from tao_launcher.service import automl, automl_settings
from tao_launcher.service import jobs as job_runner
from tao_launcher.service.context import Org, Service, ServiceDep, body, found
from tao_launcher.service.errors import RequestError
from tao_launcher.service.requests import JobRequest, PublishRequest, ResumeRequest
from tao_launcher.service.store import Job, Published

SELECTED_FILES = Query(default=[])  # a repeated query parameter (the client's file_lists)
router = APIRouter(prefix="/orgs/{org}")


@router.get("/jobs:list_base_experiments")
def list_base_experiments(org: Org, svc: ServiceDep):
    with svc.store.session() as session:
        published = [p.to_api() for p in session.scalars(select(Published).where(Published.org == org))]
    return {"experiments": job_runner.base_experiments(svc.plugins) + published}


@router.get("/jobs:schema")
def job_schema(org: Org, svc: ServiceDep, action: str = "", base_experiment_id: str = "", network_arch: str = "",
               job_id: str = ""):  # fmt: skip
    with svc.store.session() as session:
        if job_id:
            job = found(svc.store.owned(session, Job, org, job_id), "job")
            network_arch, action = network_arch or job.network_arch, action or job.action
        published = svc.store.owned(session, Published, org, base_experiment_id) if base_experiment_id else None
        if published is not None:  # the published job is bound when a job is created from it
            network_arch, base_experiment_id = published.network_arch, ""
    schema = job_runner.schema(svc.plugins, action, network_arch, base_experiment_id)
    plugin = svc.plugins[schema["network_arch"]]
    if action == "train" and plugin.spec.automl:  # the client's get-automl-defaults reads this key
        schema["automl_default_parameters"] = automl_settings.defaults(plugin)
    return schema


@router.get("/automl:get_param_details")
def automl_param_details(org: Org, svc: ServiceDep, network_arch: str = "", parameters: str = ""):
    """What get-automl-param-details shows: each named parameter's type and range, as the plugin declares it."""
    plugin = job_runner.plugin_named(svc.plugins, network_arch)
    declared = {p["parameter"]: p for p in (plugin.spec.automl or {}).get("parameters", [])}
    names = [name.strip() for name in parameters.split(",") if name.strip()] or list(declared)
    details = []
    for name in names:
        if name not in declared:
            raise RequestError(404, f"'{name}' is not a parameter AutoML may change for {network_arch}; "
                               f"choose among {', '.join(declared) or 'none'}")  # fmt: skip
        p = declared[name]
        values = p.get("valid_options") or [p.get("valid_min"), p.get("valid_max")]
        details.append({"param_name": name, "param_type": p["value_type"], "param_values": values,
                        "default_value": p.get("default_value")})  # fmt: skip
    return {"parameter_details": details}


@router.post("/jobs", status_code=201)
def create_job(request: Annotated[JobRequest, Depends(body(JobRequest))], org: Org, svc: ServiceDep):
    settings = svc.settings
    with svc.store.session() as session, session.begin():
        job = job_runner.create(session, svc.store, settings.state_dir, org, request.fields(), svc.plugins, svc.sealer,
                                svc.docker, settings.data_root, settings.run_as(org))  # fmt: skip
    if automl.is_search(job):  # its first experiments start now, not at the driver's next step
        automl.advance(svc, job.id)
    return {"id": job.id}


@router.get("/jobs")
def list_jobs(org: Org, svc: ServiceDep):
    with svc.store.session() as session, session.begin():
        rows = session.scalars(select(Job).where(Job.org == org)).all()
        return {"jobs": [_shown(session, job_runner.refresh(job)) for job in rows]}


@router.get("/jobs/{job_id}:logs")
def job_logs(job_id: str, org: Org, svc: ServiceDep, automl_experiment_index: int | None = None):
    """A job's log; of an AutoML search, an experiment's (its index; -1: the search's own; none: the newest)."""
    with svc.store.session() as session:
        job = found(svc.store.owned(session, Job, org, job_id), "job")
        if automl.is_search(job):
            return PlainTextResponse(automl.experiment_log(session, job, automl_experiment_index))
    return PlainTextResponse(job_runner.logs(job))


@router.post("/jobs/{job_id}:cancel")
def cancel_job(job_id: str, org: Org, svc: ServiceDep):
    return _stop(svc, job_id, org, paused=False)


@router.post("/jobs/{job_id}:pause")
def pause_job(job_id: str, org: Org, svc: ServiceDep):
    return _stop(svc, job_id, org, paused=True)


def _stop(svc: Service, job_id: str, org: str, paused: bool) -> dict:
    with svc.store.session() as session, session.begin():
        job = job_runner.refresh(found(svc.store.owned(session, Job, org, job_id), "job"))
        if automl.is_search(job):
            automl.stop(svc, session, job, paused=paused)
        else:
            job_runner.cancel(job, paused=paused)
    return {"message": f"job {job_id} {'paused' if paused else 'canceled'}"}


@router.post("/jobs/{job_id}:resume")
def resume_job(
    job_id: str,
    request: Annotated[ResumeRequest, Depends(body(ResumeRequest))],
    org: Org,
    svc: ServiceDep,
):
    with svc.store.session() as session, session.begin():
        job = found(svc.store.owned(session, Job, org, job_id), "job")
        if automl.is_search(job):
            if request.specs or request.parent_job_id:
                raise RequestError(400, "a resumed AutoML search keeps its specs and parent; leave them out")
            automl.resume(svc, session, job)
        else:
            job_runner.resume(job, svc.plugins, svc.sealer, request.specs, request.parent_job_id)
    return {"message": f"job {job_id} resumed"}


@router.post("/jobs/{job_id}:publish_model")
def publish_model(
    job_id: str,
    request: Annotated[PublishRequest, Depends(body(PublishRequest))],
    org: Org,
    svc: ServiceDep,
):
    with svc.store.session() as session, session.begin():
        job = job_runner.refresh(found(svc.store.owned(session, Job, org, job_id), "job"))
        published = job_runner.publish(session, svc.store, org, job, request.fields())
        return {"id": published.id, "message": f"published as base experiment {published.id}"}


@router.get("/jobs/{job_id}:download")
def download(job_id: str, org: Org, svc: ServiceDep):
    with svc.store.session() as session:
        job = found(svc.store.owned(session, Job, org, job_id), "job")
    return Response(job_runner.archive(job), media_type="application/gzip")


@router.get("/jobs/{job_id}:download_selective_files")
def download_selected(
    job_id: str,
    org: Org,
    svc: ServiceDep,
    file_lists: list[str] = SELECTED_FILES,
    best_model: bool = False,
    latest_model: bool = False,
    tar_files: bool = True,
):
    """The files asked for, and the job's model when asked (the plugin's model_files say which files): a tar.gz,
    or, with tar_files false and one file, that file itself (the client writes the answer under its name)."""
    with svc.store.session() as session:
        job = found(svc.store.owned(session, Job, org, job_id), "job")
    kinds = [kind for kind, wanted in (("best", best_model), ("latest", latest_model)) if wanted]
    paths = job_runner.selected_files(job, file_lists, kinds, svc.plugins)
    if not tar_files and len(file_lists) == 1 and not kinds:
        return Response(paths[0].read_bytes(), media_type="application/octet-stream")
    return Response(job_runner.archive(job, paths), media_type="application/gzip")


@router.get("/jobs/{job_id}:list_files")
def list_files(job_id: str, org: Org, svc: ServiceDep):
    with svc.store.session() as session:
        job = found(svc.store.owned(session, Job, org, job_id), "job")
    return job_runner.files(job)


# last: {job_id} would also match 'id:logs'
@router.get("/jobs/{job_id}")
def get_job(job_id: str, org: Org, svc: ServiceDep):
    with svc.store.session() as session:
        job = found(svc.store.owned(session, Job, org, job_id), "job")
    if automl.is_search(job):  # brought up to date now, not at the driver's next step
        automl.advance(svc, job.id)
    with svc.store.session() as session, session.begin():
        job = found(svc.store.owned(session, Job, org, job_id), "job")
        return _shown(session, job_runner.refresh(job))


def _shown(session, job: Job) -> dict:
    """A job as the client reads it; a search with its experiments (TAO's automl_brain_info, automl_result)."""
    shown = job_runner.to_api(job)
    if automl.is_search(job):
        shown["job_details"].update(automl.details(session, job))
    return shown
