"""Jobs: from a client's request to a running action and back to the status the client reads.

A job runs ``tao --local model <network_arch> <action> <spec option> <job>/spec.<format>`` through the executor
(the option and the format are the plugin's: ``path_options[0]``, ``spec_format``). The plugin's
``job_specs`` hook (protocol 1.1) binds the job's datasets, parents and results folder into the spec, so the
user passes no file paths. The status comes from the executor (running, exit code) and the task's status.json.
"""

import fnmatch
import hmac
import io
import json
import os
import re
import shutil
import sys
import tarfile
import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from tao_launcher.launch import image_for
from tao_launcher.protocol import KEY_ENV, spec_text
from tao_launcher.redaction import spec_secrets
from tao_launcher.service import automl, automl_settings, walls
from tao_launcher.service.errors import RequestError
from tao_launcher.service.executors import EXIT_FILE, LocalExecutor, executor_for, uid_gid
from tao_launcher.service.store import Dataset, Job, Published, Store

RUNNING_STATES = ("Pending", "Running")
STOPPED_STATES = ("Canceled", "Paused")  # stopped by a request; the process may still be on its way out
USER_ENV_PREFIX = "JOB_VAR_"
USER_ENV = re.compile(USER_ENV_PREFIX + r"[A-Z0-9_]{1,64}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_ENV_VALUE = 4096
PORT_FILE = "port"
CANCEL_CODES = (130, 143)
# A job request's dataset fields and the role each binds its datasets to (the job_specs hook's ``datasets``).
DATASET_ROLES = {"train_datasets": "train", "eval_dataset": "eval", "inference_dataset": "inference",
                 "calibration_dataset": "calibration", "dataset_id": "dataset"}  # fmt: skip


def base_experiments(plugins: dict) -> list[dict]:
    """Every plugin's declared starting points, with stable ids."""
    found = []
    for name, plugin in sorted(plugins.items()):
        for entry in plugin.spec.base_experiments:
            found.append(
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"tao-launcher/{name}/{entry['name']}")),
                    "name": entry["name"],
                    "network_arch": name,
                    "description": entry.get("description", ""),
                    "base_experiment_metadata": {"spec_overrides": entry.get("overrides", {})},
                }
            )
    return found


def schema(plugins: dict, action: str, network_arch: str, base_experiment_id: str = "") -> dict:
    overrides: dict = {}
    if base_experiment_id:
        entry = next((e for e in base_experiments(plugins) if e["id"] == base_experiment_id), None)
        if entry is None:
            raise RequestError(404, f"base experiment {base_experiment_id} not found")
        network_arch = network_arch or entry["network_arch"]
        overrides = entry["base_experiment_metadata"]["spec_overrides"]
    plugin = _plugin(plugins, network_arch)
    if action not in plugin.actions:
        raise RequestError(400, f"{network_arch} has no action '{action}'; choose one of {', '.join(plugin.actions)}")
    default = merged(plugin.load(plugin.spec.schema)(action), overrides)
    return {"action": action, "network_arch": network_arch, "default": default}


def create(
    session: Session, store: Store, state_dir: Path, org: str, body: dict, plugins: dict, sealer, docker: dict,
    data_root: Path, run_as: dict | None = None,
) -> Job:  # fmt: skip
    """A job from a client's request (``run_as``: ``{user, python}``, the system user the org's local jobs run as
    and the interpreter they run with, where the service sets them)."""
    kind = body.get("kind", "experiment")
    if kind not in ("experiment", "dataset"):
        raise RequestError(400, f"kind '{kind}' must be experiment or dataset")
    action = str(body.get("action") or "")
    network_arch = str(body.get("network_arch") or _only_plugin(plugins))
    plugin = _plugin(plugins, network_arch)
    if action not in plugin.actions:
        raise RequestError(400, f"{network_arch} has no action '{action}'; choose one of {', '.join(plugin.actions)}")
    specs, spec_key = _client_specs(body.get("specs") or {}, plugin)
    overrides, published = _base_experiments(session, store, org, body, plugins, network_arch)
    specs = merged(overrides, specs)  # the client's specs over its starting point's
    search = _search_plan(body.get("automl_settings"), plugin, action, specs)
    parent = store.owned(session, Job, org, body["parent_job_id"]) if body.get("parent_job_id") else None
    if body.get("parent_job_id") and parent is None:
        raise RequestError(404, f"parent job {body['parent_job_id']} not found")
    datasets = _datasets(session, store, org, body)
    lineage = _ancestors(session, store, org, parent) + published
    ancestors = [{"action": a.action, "results_dir": a.results_dir} for a in lineage]
    roots = [str(data_root / org), *(str(Path(a.results_dir).parent) for a in lineage)]
    job = Job(org=org, kind=kind, action=action, network_arch=network_arch, name=str(body.get("name") or ""),
              workspace_id=body.get("workspace"), parent_id=parent.id if parent else None, specs=specs,
              bindings={"datasets": datasets, "ancestors": ancestors, "env": _job_env(body, plugin),
                        "roots": roots})  # fmt: skip
    session.add(job)
    session.flush()  # the id
    job.results_dir = str(state_dir / org / job.id / "results")
    key = body.get("encryption_key") or None
    if key and spec_key and key != spec_key:
        raise RequestError(400, "specs and encryption_key give two different keys; give the key once")
    key = key or spec_key
    # no key given: the one of the model it builds on (its parent, or a published model), which must decrypt it
    inherited = next((a.sealed_key for a in lineage if a.sealed_key), None)
    if key and inherited and not hmac.compare_digest(sealer.open(inherited), key):
        raise RequestError(400, "encryption_key is not the key of the model this job builds on (its parent's); "
                           "give the parent's key, or none: a child inherits it")  # fmt: skip
    job.sealed_key = sealer.seal(key) if key else inherited
    backend = body.get("backend_details") or {}
    executor = _executor(backend, plugin, job, docker, run_as)  # before any file exists
    final = bound_spec(job, plugin, specs)  # checked before any file exists too
    write_spec(job, plugin, final)
    if search:  # its experiments are jobs of their own, started by the search (automl.py)
        job.bindings = {**job.bindings, "automl": search, "backend": backend}
        automl.begin(job)
        return job
    try:
        start(job, plugin, executor, sealer)
    except RequestError:
        shutil.rmtree(Path(job.results_dir).parent, ignore_errors=True)  # the job is not recorded either
        raise
    return job


def _executor(backend: dict, plugin, job: Job, docker: dict, run_as: dict | None):
    """The executor a request's backend_details ask for; a container job gets the plugin's image and options,
    with its org's data, its parents' folders and the settings' extra folders mounted read-only (its own folder
    read-write): no other org's folder is in the container."""
    if backend.get("backend_type") == "local-docker":
        mounts = [*job.bindings["roots"], *(str(m) for m in docker.get("mounts", []))]
        user = (run_as or {}).get("user")
        options = {**plugin.spec.docker_options, **({"user": uid_gid(user)} if user else {})}
        backend = {"backend_type": "local-docker", "docker": {
            "image": docker.get("image") or image_for(plugin), "mounts": mounts,
            "env": docker.get("env", {}), "options": options, "python": docker.get("python", "python3")}}  # fmt: skip
    elif backend.get("backend_type", "local") == "local":  # how it runs is the service's to say, not the client's
        backend = {"backend_type": "local", **(run_as or {})}
    try:
        return executor_for(backend)
    except ValueError as exc:
        raise RequestError(400, str(exc)) from None


def _search_plan(settings, plugin, action: str, specs: dict) -> dict | None:
    """The AutoML search a request asks for (automl_settings with automl_enabled), or None."""
    if not automl_settings.enabled(settings):
        return None
    declared = plugin.spec.automl
    epochs_key = declared.get("epochs_key", "") if declared else ""
    defaults = plugin.load(plugin.spec.schema)(action) if plugin.spec.schema else {}
    spec = merged(defaults, specs)
    epochs = _dotted(spec, epochs_key) if epochs_key else None
    plan = automl_settings.plan(settings, plugin, action, epochs if isinstance(epochs, int) else 1)
    # the first experiment trains the spec as given (where its values are inside the ranges searched)
    plan["first"] = {p["parameter"]: _dotted(spec, p["parameter"]) for p in plan["parameters"]}
    return plan


def _dotted(spec, key: str):
    for part in key.split("."):
        spec = spec.get(part) if isinstance(spec, dict) else None
    return spec


def spawn(session: Session, search: Job, specs: dict, plugin, sealer, docker: dict, run_as: dict | None,
          name: str) -> Job:  # fmt: skip
    """An experiment of an AutoML search: an ordinary job of the search's org with the search's datasets,
    parents, key, environment and backend, its own specs and its own folder, started now."""
    bindings = {k: v for k, v in search.bindings.items() if k not in ("automl", "backend")}
    job = Job(org=search.org, kind=search.kind, action=search.action, network_arch=search.network_arch, name=name,
              workspace_id=search.workspace_id, parent_id=search.parent_id, specs=specs, bindings=bindings,
              sealed_key=search.sealed_key)  # fmt: skip
    session.add(job)
    session.flush()
    job.results_dir = str(Path(search.results_dir).parent.parent / job.id / "results")
    try:
        executor = _executor(search.bindings.get("backend", {}), plugin, job, docker, run_as)
        write_spec(job, plugin, bound_spec(job, plugin, specs))
        start(job, plugin, executor, sealer)
    except RequestError:
        shutil.rmtree(Path(job.results_dir).parent, ignore_errors=True)  # the job is not recorded either
        raise
    return job


def start_microservice(session: Session, store: Store, state_dir: Path, org: str, body: dict, plugins: dict,
                       sealer, run_as: dict | None = None) -> Job:  # fmt: skip
    """A process that keeps a finished job's model loaded (``model_path``: that job's id) and answers
    ``:inference`` requests through the plugin's ``inference_server``."""
    model = store.owned(session, Job, org, str(body.get("model_path") or body.get("parent_job_id") or ""))
    if model is None or model.status != "Done":
        raise RequestError(404, "model_path must name a finished job of this org (its id, e.g. the train job's)")
    plugin = _plugin(plugins, model.network_arch)
    if not plugin.spec.inference_server:
        raise RequestError(400, f"{model.network_arch} declares no inference server")
    job = Job(org=org, kind="microservice", action="inference_microservice", network_arch=model.network_arch,
              parent_id=model.id, specs={}, bindings={}, sealed_key=model.sealed_key)  # fmt: skip
    session.add(job)
    session.flush()
    ms_dir = state_dir / org / job.id
    job.results_dir = str(ms_dir / "results")
    executor = LocalExecutor(**(run_as or {}))
    command = [executor.python, "-m", "tao_launcher.service.microservice", model.network_arch,
               str(Path(model.results_dir).parent), str(ms_dir / PORT_FILE)]  # fmt: skip
    job.handle = executor.submit(command, _environment(job, sealer, executor), ms_dir)
    job.status = "Running"
    return job


def microservice_port(job: Job) -> int | None:
    """The loopback port of a running microservice, once its model is loaded."""
    port_file = Path(job.results_dir).parent / PORT_FILE
    if job.status != "Running" or not port_file.is_file():
        return None
    return int(port_file.read_text())


def bound_spec(job: Job, plugin, specs: dict) -> dict:
    """The client's specs with the job's datasets, parents and results folder bound in by the plugin's hook,
    checked against the job's walls (walls.py) as the task will read them (over the plugin's defaults)."""
    bindings = job.bindings
    hook = plugin.load(plugin.spec.job_specs) if plugin.spec.job_specs else None
    final = (hook(job.action, specs, bindings["datasets"], bindings["ancestors"], job.results_dir) if hook
             else {**specs, "results_dir": job.results_dir})  # fmt: skip
    defaults = plugin.load(plugin.spec.schema)(job.action) if plugin.spec.schema else {}
    try:
        walls.check(merged(defaults, final), plugin.spec.path_keys, plugin.spec.output_keys,
                    plugin.spec.named_models, _roots(job), Path(job.results_dir).parent)  # fmt: skip
    except walls.WallError as exc:
        raise RequestError(400, str(exc)) from None
    return final


def spec_file(job: Job, plugin) -> Path:
    return Path(job.results_dir).parent / f"spec.{plugin.spec.spec_format}"


def write_spec(job: Job, plugin, final: dict) -> None:
    """The job's spec file in the plugin's format (the encryption key referred to as the plugin declares, never
    written) and ``walls.json``, which the job's wrapper checks again before the task starts."""
    final = dict(final)
    declared = plugin.spec
    if job.sealed_key and declared.secret_spec_value and declared.secret_keys:  # the key itself: env only
        final[declared.secret_keys[0]] = declared.secret_spec_value.replace("{env}", KEY_ENV)
    path = spec_file(job, plugin)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec_text(final, declared.spec_format))
    walls.write(path.parent, path, plugin, _roots(job))


def _roots(job: Job) -> list[str]:
    """Where a job's spec may point: its own folder, its org's data and its parents' folders."""
    return [str(Path(job.results_dir).parent), *job.bindings.get("roots", [])]


def start(job: Job, plugin, executor, sealer) -> None:
    """Run (or run again: resume) the job's spec in its folder."""
    job_dir = Path(job.results_dir).parent
    spec = [plugin.spec.spec_option, str(spec_file(job, plugin))]
    if getattr(executor, "in_image", False):  # the plugin's own command in its image
        command = [*plugin.spec.argv_prefix, job.action, *spec]
    else:
        command = [getattr(executor, "python", sys.executable), "-m", "tao_launcher.cli", "--local", "model",
                   job.network_arch, job.action, *spec]  # fmt: skip
    env = _environment(job, sealer, executor)
    (job_dir / EXIT_FILE).unlink(missing_ok=True)
    try:
        job.handle = executor.submit(command, env, job_dir)
    except RuntimeError as exc:
        raise RequestError(503, str(exc)) from None
    job.status, job.exit_code = "Running", None


def refresh(job: Job) -> Job:
    """Bring a job's status up to date from its executor; a stopped (canceled, paused) job's exit code is
    collected too, which lets the executor clean up (a container is removed once its code is read)."""
    if job.exit_code is not None or not job.handle or job.status not in (*RUNNING_STATES, *STOPPED_STATES):
        return job
    state, code = executor_for(job.handle).state(job.handle)
    if state == "exited":
        job.exit_code = code
        if job.status in RUNNING_STATES:
            job.status = "Done" if code == 0 else "Canceled" if code in CANCEL_CODES else "Error"
    elif state == "lost" and job.status in RUNNING_STATES:
        job.status = "Error"
    return job


def cancel(job: Job, paused: bool = False) -> None:
    """Stop a running job: canceled for good, or paused (a resume runs it again in its folder: a training
    continues from its latest checkpoint)."""
    if job.status not in RUNNING_STATES or not job.handle:
        raise RequestError(409, f"job {job.id} is {job.status}, not running")
    executor_for(job.handle).cancel(job.handle)
    job.status = "Paused" if paused else "Canceled"


def resume(job: Job, plugins: dict, sealer, specs: dict | None, parent_job_id: str | None = None) -> None:
    """Run a paused job again in its folder, with new specs if given (bound like the first ones: the same
    datasets, parents, results folder and key)."""
    if parent_job_id and parent_job_id != job.parent_id:
        raise RequestError(400, f"a resumed job keeps its parent ({job.parent_id or 'none'}); leave parent_job_id out")
    if job.status != "Paused":
        raise RequestError(409, f"job {job.id} is {job.status}; only a paused job resumes")
    executor = executor_for(job.handle)
    executor.wait_stopped(job.handle)
    plugin = _plugin(plugins, job.network_arch)
    specs, spec_key = _client_specs(specs or {}, plugin)
    if spec_key and (not job.sealed_key or sealer.open(job.sealed_key) != spec_key):
        raise RequestError(400, "a resumed job keeps the encryption key it was created with; leave it out of specs")
    if specs:
        final = bound_spec(job, plugin, specs)
        job.specs = specs
        write_spec(job, plugin, final)
    start(job, plugin, executor, sealer)


def selected_files(job: Job, names: list[str], model_kinds: list[str], plugins: dict) -> list[Path]:
    """The named files of the job's results folder (each must be one) and the files of its model of each kind
    (the plugin's ``model_files``: a kind it does not declare, or a job without such a file, is a 404)."""
    root = Path(job.results_dir).resolve()
    paths = [_inside(root, name) for name in names]
    declared = _plugin(plugins, job.network_arch).spec.model_files
    for kind in model_kinds:
        if kind not in declared:
            named = ", ".join(f"{k}_model" for k in declared) or "none"
            raise RequestError(404, f"{job.network_arch} keeps no {kind} model apart (it names: {named})")
        patterns = declared[kind]
        matched = [p for p in sorted(root.rglob("*")) if any(fnmatch.fnmatch(str(p.relative_to(root)), pattern)
                                                             for pattern in patterns)]  # fmt: skip
        found = [p.resolve() for p in matched if _kept(root, p)]
        if not found:
            raise RequestError(404, f"job {job.id} has no {kind} model (yet): none of {', '.join(declared[kind])}")
        paths += [p for p in found if p not in paths]
    return paths


def archive(job: Job, paths: list[Path] | None = None) -> bytes:
    """A tar.gz of the job's results (or of ``paths``, files inside the results folder: selected_files)."""
    root = Path(job.results_dir).resolve()
    if not paths:
        paths = [p for p in root.rglob("*") if p.is_file()]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in paths:
            tar.add(path, arcname=str(path.relative_to(root)))
    return buffer.getvalue()


def _inside(root: Path, name: str) -> Path:
    if not _kept(root, root / name):
        raise RequestError(404, f"file '{name}' is not among the job's files")
    return (root / name).resolve()


def _kept(root: Path, path: Path) -> bool:
    """A file of the job's results folder: resolved (symlinks followed), it is a file and stays inside."""
    resolved = path.resolve()
    return resolved.is_relative_to(root) and resolved.is_file()


def to_api(job: Job) -> dict:
    lines = status_lines(job)
    last = lines[-1] if lines else {}
    epochs = [line for line in lines if "epoch" in line]
    details = {
        "status": last.get("status"),
        "message": last.get("message"),
        "kpi": last.get("kpi", {}),
        "epoch": epochs[-1]["epoch"] if epochs else None,
        "max_epoch": epochs[-1].get("max_epoch") if epochs else None,
        "eta": epochs[-1].get("eta") if epochs else None,
    }
    return {
        "id": job.id,
        "kind": job.kind,
        "action": job.action,
        "network_arch": job.network_arch,
        "name": job.name,
        "workspace": job.workspace_id,
        "parent_id": job.parent_id,
        "status": job.status,
        "exit_code": job.exit_code,
        "created_on": job.created.isoformat(),
        "last_modified": job.updated.isoformat(),
        "job_details": details,
    }


def logs(job: Job) -> str:
    path = Path(job.results_dir).parent / "job.log"
    return path.read_text(errors="replace") if path.is_file() else ""


def files(job: Job) -> list[str]:
    root = Path(job.results_dir)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def status_lines(job: Job) -> list[dict]:
    lines = []
    for status in sorted(Path(job.results_dir).glob("*/status.json")) if job.results_dir else []:
        for text in status.read_text().splitlines():
            try:
                lines.append(json.loads(text))
            except ValueError:
                continue
    return lines


def _environment(job: Job, sealer, executor) -> dict[str, str]:
    """A process here inherits the service's environment (its own secrets left out); a container keeps its
    image's. Both get the client's --env pairs and, for a job with a key, its key sealed with a secret of its
    own (secret.py)."""
    in_image = getattr(executor, "in_image", False)
    env = {} if in_image else {k: v for k, v in os.environ.items() if not k.startswith("TAO_SERVICE_")}
    env.update(job.bindings.get("env", {}))
    env[walls.ROOTS_ENV] = json.dumps(_roots(job))
    if job.sealed_key:
        job_dir = Path(job.results_dir).parent
        job_dir.mkdir(parents=True, exist_ok=True)
        env.update(sealer.job_env(job.sealed_key, job_dir, getattr(executor, "owner", None)))
    return env


def _client_specs(specs, plugin) -> tuple[dict, str | None]:
    """The client's specs as the job may use them, and the one secret they gave, if any: without the plugin's
    secret values (kept only sealed, never in the database or a spec file), without the keys where tasks write
    (the service binds them), and with no interpolation but plain ``${key}`` references."""
    if not isinstance(specs, dict):
        raise RequestError(400, "specs must be a JSON object (the default of get-job-schema, edited)")
    found = spec_secrets(specs, plugin.spec.secret_keys)
    if len(set(found.values())) > 1:
        raise RequestError(400, f"specs give {len(found)} different secrets ({', '.join(found)}); give one key")
    specs = walls.without_keys(specs, [*found, *plugin.spec.output_keys])
    try:
        walls.check_references(specs)
    except walls.WallError as exc:
        raise RequestError(400, str(exc)) from None
    return specs, next(iter(found.values()), None)


def _job_env(body: dict, plugin) -> dict[str, str]:
    """The client's ``--env KEY=VALUE`` pairs, by an allow-list: the names the plugin declares (``job_env``) and
    user variables named ``JOB_VAR_*``, which no library reads. Any other name may be read by some library at
    start-up (LD_PRELOAD, PYTHONSTARTUP, OPENSSL_CONF, ...) and run code of the client's choosing. Values are
    text without control characters."""
    env = body.get("docker_env_vars") or {}
    if not isinstance(env, dict):
        raise RequestError(400, "docker_env_vars must be an object of NAME: value")
    allowed = ", ".join([*plugin.spec.job_env, f"{USER_ENV_PREFIX}<NAME>"])
    for name, value in env.items():
        if not (name in plugin.spec.job_env or USER_ENV.fullmatch(str(name))):
            raise RequestError(400, f"--env name '{name}' is not allowed; use one of {allowed}")
        if not isinstance(value, str) or CONTROL.search(value) or len(value) > MAX_ENV_VALUE:
            raise RequestError(400, f"--env {name}: the value must be text of at most {MAX_ENV_VALUE} characters "
                               "without control characters")  # fmt: skip
    return dict(env)


def _datasets(session: Session, store: Store, org: str, body: dict) -> dict[str, list[str]]:
    roles = {role: body.get(field) for field, role in DATASET_ROLES.items()}
    bound: dict[str, list[str]] = {}
    for role, ids in roles.items():
        for dataset_id in filter(None, ids if isinstance(ids, list) else [ids]):
            row = store.owned(session, Dataset, org, dataset_id)
            if row is None:
                raise RequestError(404, f"dataset {dataset_id} not found")
            bound.setdefault(role, []).append(row.path)
    return bound


def publish(session: Session, store: Store, org: str, job: Job, body: dict) -> Published:
    """Make a finished training's model a base experiment of the org: jobs created from it start from it."""
    if job.status != "Done" or job.action != "train":
        raise RequestError(409, f"job {job.id} is a {job.status} {job.action} job; publish a finished train job")
    name = str(body.get("display_name") or job.name)
    row = Published(org=org, job_id=job.id, network_arch=job.network_arch, name=name,
                    description=str(body.get("description") or ""), team=str(body.get("team_name") or ""))  # fmt: skip
    session.add(row)
    session.flush()
    return row


def _base_experiments(session: Session, store: Store, org: str, body: dict, plugins: dict, network_arch: str):
    """What the request's ``base_experiment_ids`` name: (the overrides of the plugin's declared starting points,
    merged in order; the jobs behind the org's published models, the new job's eldest ancestors). An id that is
    neither is a 404."""
    declared = {e["id"]: e for e in base_experiments(plugins) if e["network_arch"] == network_arch}
    overrides: dict = {}
    jobs = []
    for base_id in body.get("base_experiment_ids") or []:  # a list: requests.JobRequest
        if str(base_id) in declared:
            overrides = merged(overrides, declared[str(base_id)]["base_experiment_metadata"]["spec_overrides"])
            continue
        published = store.owned(session, Published, org, str(base_id))
        job = store.owned(session, Job, org, published.job_id) if published is not None else None
        if job is None:
            raise RequestError(404, f"base experiment {base_id} not found (list-base-experiments shows this org's)")
        jobs.append(job)
    return overrides, jobs


def _ancestors(session: Session, store: Store, org: str, job: Job | None) -> list[Job]:
    chain: list[Job] = []
    while job is not None and len(chain) < 64:
        chain.append(job)
        job = store.owned(session, Job, org, job.parent_id) if job.parent_id else None
    return chain


def plugin_named(plugins: dict, network_arch: str):
    """The installed plugin of that name (a 400 naming the installed ones when there is none)."""
    return _plugin(plugins, network_arch or _only_plugin(plugins))


def _plugin(plugins: dict, network_arch: str):
    if network_arch not in plugins:
        raise RequestError(400, f"network_arch '{network_arch}' is not installed; choose one of {', '.join(plugins)}")
    plugin = plugins[network_arch]
    if not plugin.spec.spec_option:
        raise RequestError(400, f"{network_arch} declares no spec option (path_options), so the job service cannot "
                           "hand its tasks a spec")  # fmt: skip
    return plugin


def _only_plugin(plugins: dict) -> str:
    return next(iter(plugins)) if len(plugins) == 1 else ""


def merged(base: dict, overrides: dict) -> dict:
    """``overrides`` over ``base``, nested mappings merged key by key."""
    result = dict(base)
    for key, value in overrides.items():
        result[key] = merged(result.get(key, {}), value) if isinstance(value, dict) else value
    return result
