"""What each request body may hold, as NVIDIA's TAO Client 6.26 sends it (its ``tao_sdk/schemas.py``): every field
that client knows is declared, so its requests pass; any other field is a 422 naming it (``parent_id`` is not
quietly ignored: the line says ``parent_job_id``). Fields this service cannot honour (cloud pulls, dataset URLs,
code to run in a microservice) are refused with one line where they are given (``not_served``)."""

import difflib
import json
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from tao_launcher.service.errors import RequestError

MAX_BODY = 2**20  # a request's JSON body: specs and names, never data


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    NOT_SERVED: ClassVar[tuple[tuple[str, str], ...]] = ()  # (field, what to do instead): refused when given

    def not_served(self) -> None:
        for name, instead in self.NOT_SERVED:
            if getattr(self, name) not in (None, False, {}, []):
                raise RequestError(400, f"request field '{name}' is not served by tao serve; {instead}")

    def fields(self) -> dict:
        """The fields the client gave (the job runner's dict)."""
        return self.model_dump(exclude_none=True)


class LoginRequest(Body):
    ngc_key: str = ""
    ngc_org_name: str = ""
    enable_telemetry: bool | None = None


class WorkspaceRequest(Body):
    name: str = "workspace"
    cloud_type: str
    cloud_specific_details: dict | None = None  # a self_hosted workspace needs none
    shared: bool | None = None
    version: str | None = None
    force_create: bool | None = None


class DatasetRequest(Body):
    type: str = ""
    format: str = ""
    workspace: str = ""
    cloud_file_path: str = ""
    name: str | None = None
    shared: bool | None = None
    user_id: str | None = None
    description: str | None = None
    version: str | None = None
    logo: str | None = None
    use_for: list[str] | None = None
    force_create: bool | None = None
    url: str | None = None
    docker_env_vars: dict[str, str] | None = None
    NOT_SERVED = (
        ("url", "put the dataset in a folder under the org's data root and give its cloud_file_path"),
        ("docker_env_vars", "datasets are folders here; nothing runs when one is created"),
    )


class JobRequest(Body):
    kind: str = "experiment"
    action: str = ""
    network_arch: str | None = None
    name: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    workspace: str | None = None
    specs: dict | None = None
    encryption_key: str | None = None
    docker_env_vars: dict | None = None
    base_experiment_ids: list[str] | None = None
    parent_job_id: str | None = None
    backend_details: dict | None = None
    force_create: bool | None = None
    skip_dataset_validation: bool | None = None
    dataset_format: str | None = None
    dataset_type: str | None = None
    # dataset fields, by the role each binds (jobs.DATASET_ROLES)
    train_datasets: list[str] | None = None
    eval_dataset: str | None = None
    inference_dataset: str | None = None
    calibration_dataset: str | None = None
    dataset_id: str | None = None
    train_dataset_uris: list[str] | None = None
    eval_dataset_uri: str | None = None
    inference_dataset_uri: str | None = None
    calibration_dataset_uri: str | None = None
    automl_settings: dict | None = None
    NOT_SERVED = (
        *(
            (uri, "create a dataset (create-dataset) and pass its id")
            for uri in ("train_dataset_uris", "eval_dataset_uri", "inference_dataset_uri", "calibration_dataset_uri")
        ),
    )


class ResumeRequest(Body):
    specs: dict | None = None
    parent_job_id: str | None = None


class PublishRequest(Body):
    display_name: str = ""
    description: str = ""
    team_name: str = ""


class MicroserviceRequest(Body):
    model_path: str | None = None
    parent_job_id: str | None = None
    network_arch: str | None = None
    kind: str | None = None
    workspace: str | None = None
    docker_image: str | None = None  # the model's own environment serves it here: accepted, not used
    num_gpus: int | None = None
    gpu_type: str | None = None
    docker_env_vars: dict | None = None
    checkpoint_choose_method: str | None = None
    checkpoint_epoch_number: dict | None = None
    hf_model: str | None = None
    torch_dtype: str | None = None
    device_map: str | None = None
    enable_lora: bool | None = None
    base_model_path: str | None = None
    custom_pipeline_loader: str | None = None
    custom_inference_fn: str | None = None
    NOT_SERVED = (
        *((name, "the plugin's inference_server serves the job's model") for name in (
            "hf_model", "torch_dtype", "device_map", "enable_lora", "base_model_path", "checkpoint_choose_method",
            "checkpoint_epoch_number")),
        *((name, "a microservice runs only its plugin's code") for name in (
            "custom_pipeline_loader", "custom_inference_fn", "docker_env_vars")),
    )  # fmt: skip


def json_object(raw: bytes) -> dict:
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise RequestError(400, "the request body is not JSON") from None
    if not isinstance(data, dict):
        raise RequestError(400, "the request body must be a JSON object")
    return data


def parse(model: type[Body], raw: bytes) -> Body:
    """The request's body as ``model``: one line naming the field (and the nearest known one) when it is not."""
    data = json_object(raw)
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        raise RequestError(422, _one_line(exc, model)) from None
    body.not_served()
    return body


def _one_line(exc: ValidationError, model: type[Body]) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "(body)"
    if error["type"] == "extra_forbidden":
        known = [name for name in model.model_fields]
        near = difflib.get_close_matches(str(error["loc"][0]), known, n=1, cutoff=0.6)
        hint = f"did you mean {near[0]}?" if near else f"known fields: {', '.join(known)}"
        return f"request field '{field}' is not known; {hint}"
    return f"request field '{field}': {error['msg']}"
