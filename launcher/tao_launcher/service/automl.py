"""AutoML: a search over a train job's hyperparameters, TAO's way to the client and Optuna's way underneath.

A search is a train job of its own (no process): its folder holds the search's log (``job.log``) and, once it
is done, the best experiment's results, so the search's id serves as a parent, a download or a published
model like any training. Each experiment is an ordinary job of the search's org (its own folder, the same
executor, datasets, parents and key), started as the study asks for it. The study lives in the service's
database (Optuna's RDB storage): a restarted service picks a search up where the database says it stands.

``advance`` is one step of a search: read the running experiments' status.json epoch lines (each epoch's metric
reported to the study, so a pruner can stop a weak trial), record the finished ones, start new ones up to the
budget and the concurrency, and finish the search when the last one is done. The service's driver thread calls
it every few seconds for every running search; reading a search's status calls it too.
"""

import logging
import shutil
import threading
from pathlib import Path

from sqlalchemy import select

from tao_launcher.service import jobs as job_runner
from tao_launcher.service.errors import RequestError
from tao_launcher.service.store import Experiment, Job

log = logging.getLogger("tao_launcher.service.automl")
LOCK = threading.RLock()  # one step at a time in this process: the driver thread and a status request
_SAMPLERS: dict[str, object] = {}  # search id -> its sampler, kept so a seeded sampler is not restarted each step
_STORAGES: dict[str, object] = {}  # database URL -> Optuna's storage on it


def is_search(job: Job) -> bool:
    return bool(job.bindings.get("automl"))


def begin(job: Job) -> None:
    """A new search: nothing runs until its first step (the driver's, or the first status request)."""
    plan = job.bindings["automl"]
    job.status = "Running"
    _say(job, f"AutoML search: {plan['algorithm']}, up to {plan['max_recommendations']} experiments, "
              f"{plan['max_concurrent']} at once, watching {plan['metric']} ({plan['direction']})")  # fmt: skip


def advance(svc, search_id: str) -> None:
    with LOCK:
        with svc.store.session() as session:
            search = session.get(Job, search_id)
            if search is None or search.status != "Running" or not is_search(search):
                return
            plan = search.bindings["automl"]
        study = _study(svc.store, search)
        _follow(svc, search, study, plan)
        _start_new(svc, search, study, plan)
        _finish_if_done(svc, search, study, plan)


def _follow(svc, search: Job, study, plan: dict) -> None:
    """Report the running experiments' new epochs, prune the weak, record the finished. In three steps, so that
    the study (Optuna's own connection) never writes while this session holds SQLite's write lock."""
    with svc.store.session() as session, session.begin():
        seen = []
        for experiment in _experiments(session, search, "running"):
            job = job_runner.refresh(session.get(Job, experiment.job_id))
            new = [(e, v, last) for e, v, last in _epoch_metrics(job, plan["metric"]) if e > experiment.reported_epoch]
            seen.append((experiment.id, experiment.trial_number, experiment.metric, job.status, job.exit_code, new))
    outcomes = []
    for experiment_id, number, metric, status, code, new in seen:
        trial = _trial(_storage(svc.store), study, number)
        for epoch, value, _ in new:
            trial.report(value, epoch + 1)  # steps: epochs done, the pruners' resource
        metric = new[-1][1] if new else metric
        finishing = bool(new) and new[-1][0] >= new[-1][2]  # its last epoch is done: nothing left to save
        if status == "Running" and plan["pruner"] and new and not finishing and trial.should_prune():
            state, message = "pruned", f"pruned after epoch {new[-1][0] + 1} ({plan['metric']} {metric:.6g})"
        elif status == "Done" and metric is not None:
            state, message = "done", f"{plan['metric']} {metric:.6g}"
        elif status == "Done":
            state, message = "failed", f"finished without reporting {plan['metric']}"
        elif status in ("Error", "Canceled"):
            state, message = "failed", f"{status.lower()} (exit code {code})"
        else:
            state, message = "running", ""
        _tell(study, number, state, metric)
        outcomes.append((experiment_id, new, metric, state, message))
    with svc.store.session() as session, session.begin():
        for experiment_id, new, metric, state, message in outcomes:
            experiment = session.get(Experiment, experiment_id)
            if new:
                experiment.reported_epoch, experiment.metric = new[-1][0], metric
            if state == "running":
                continue
            experiment.state, experiment.message = state, message
            job = job_runner.refresh(session.get(Job, experiment.job_id))
            if state == "pruned" and job.status in job_runner.RUNNING_STATES:
                job_runner.cancel(job)
            _say(search, f"experiment {experiment.index}: {state}, {message}")
            if state != "done":
                _drop_checkpoints(job, plan)


def _start_new(svc, search: Job, study, plan: dict) -> None:
    with svc.store.session() as session:
        experiments = _experiments(session, search)
    started, running = len(experiments), sum(e.state == "running" for e in experiments)
    plugin = svc.plugins.get(search.network_arch)
    while started < plan["max_recommendations"] and running < plan["max_concurrent"] and plugin is not None:
        trial = study.ask(_distributions(plan))
        specs = job_runner.merged(search.specs, _nested(trial.params))
        if plan["pruner"]:  # every trial may go the whole way; the pruner decides how far it does
            specs = job_runner.merged(specs, _nested({plan["epochs_key"]: plan["max_epochs"]}))
        name, job_id, message = f"{search.name or 'automl'} experiment {started}", "", ""
        try:  # the job in a transaction of its own: one that could not start leaves nothing behind
            with svc.store.session() as session, session.begin():
                job_id = job_runner.spawn(session, search, specs, plugin, svc.sealer, svc.docker,
                                          svc.settings.run_as(search.org), name).id  # fmt: skip
        except RequestError as exc:  # the executor refused (SLURM down, no image): recorded, not fatal
            message = f"could not start: {exc}"
            _tell(study, trial.number, "failed")
        with svc.store.session() as session, session.begin():
            session.add(Experiment(org=search.org, search_id=search.id, index=started, job_id=job_id,
                                   trial_number=trial.number, params=trial.params,
                                   state="failed" if message else "running", message=message))  # fmt: skip
        _say(search, f"experiment {started}: " + (message or f"started as job {job_id} with {_shown(trial.params)}"))
        running += not message
        started += 1


def _finish_if_done(svc, search: Job, study, plan: dict) -> None:
    import optuna

    with svc.store.session() as session, session.begin():
        experiments = session.scalars(select(Experiment).where(Experiment.search_id == search.id)).all()
        if len(experiments) < plan["max_recommendations"] or any(e.state == "running" for e in experiments):
            return
        row = session.get(Job, search.id)
        complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            row.status = "Error"
            _say(row, "AutoML search ended: no experiment finished with a metric")
            return
        best = next(e for e in experiments if e.trial_number == study.best_trial.number)
        best_job = session.get(Job, best.job_id)
        results = Path(row.results_dir)
        shutil.copytree(best_job.results_dir, results, symlinks=True, dirs_exist_ok=True)
        plugin = svc.plugins.get(row.network_arch)
        if plugin is not None:  # the spec the best model was trained with, as a parent's spec is read
            shutil.copy2(job_runner.spec_file(best_job, plugin), job_runner.spec_file(row, plugin))
        row.specs = best_job.specs
        row.status, row.exit_code = "Done", 0
        if plan["delete_intermediate_ckpt"]:
            for experiment in experiments:
                if experiment is not best and experiment.job_id:
                    _drop_checkpoints(session.get(Job, experiment.job_id), plan)
        _say(row, f"AutoML search done: best experiment {best.index} ({plan['metric']} {best.metric:.6g}) with "
                  f"{_shown(best.params)}; its model is this job's")  # fmt: skip
        _SAMPLERS.pop(search.id, None)


def stop(svc, session, search: Job, paused: bool) -> None:
    """Cancel (for good) or pause a search and its running experiments (a canceled one's trials are failed in the
    study first, before this session writes: see _follow)."""
    if search.status != "Running":
        raise RequestError(409, f"job {search.id} is {search.status}, not running")
    with LOCK:
        running = _experiments(session, search, "running")
        if not paused:
            study = _study(svc.store, search)
            for experiment in running:
                _tell(study, experiment.trial_number, "failed")
        for experiment in running:
            job = job_runner.refresh(session.get(Job, experiment.job_id))
            if job.status in job_runner.RUNNING_STATES:
                job_runner.cancel(job, paused=paused)
            if not paused:
                experiment.state, experiment.message = "canceled", "the search was canceled"
        search.status = "Paused" if paused else "Canceled"
        _say(search, f"AutoML search {search.status.lower()}")


def resume(svc, session, search: Job) -> None:
    if search.status != "Paused":
        raise RequestError(409, f"job {search.id} is {search.status}; only a paused job resumes")
    for experiment in _experiments(session, search, "running"):
        job = session.get(Job, experiment.job_id)
        if job.status == "Paused":
            job_runner.resume(job, svc.plugins, svc.sealer, None)
    search.status = "Running"
    _say(search, "AutoML search resumed")


def details(session, search: Job) -> dict:
    """The search's part of its status (TAO's automl_brain_info and automl_result, and each experiment)."""
    plan = search.bindings["automl"]
    experiments = _experiments(session, search)
    rows = []
    for e in experiments:
        job = session.get(Job, e.job_id) if e.job_id else None
        rows.append({"experiment_index": e.index, "job_id": e.job_id, "status": job.status if job else "Error",
                     "state": e.state, "specs": e.params, "metric": e.metric, "epoch": e.reported_epoch + 1,
                     "message": e.message})  # fmt: skip
    done = [e for e in experiments if e.state == "done" and e.metric is not None]
    sign = 1 if plan["direction"] == "maximize" else -1
    best = max(done, key=lambda e: sign * float(e.metric or 0.0)) if done else None
    brain = [{"metric": "Algorithm", "value": plan["algorithm"]},
             {"metric": "Experiments", "value": f"{len(experiments)} of {plan['max_recommendations']}"},
             *({"metric": f"{state.capitalize()} experiments", "value": str(sum(e.state == state for e in experiments))}
               for state in ("running", "done", "pruned", "failed", "canceled"))]  # fmt: skip
    result = []
    if best is not None:
        brain.append({"metric": "Best experiment id", "value": str(best.index)})
        result.append({"metric": f"best_{plan['metric']}", "value": best.metric})
    return {"automl_brain_info": brain, "automl_result": result, "automl_experiments": rows}


def experiment_log(session, search: Job, index: int | None) -> str:
    """An experiment's log (``index``), the search's own (-1), or the newest experiment's (None), as TAO's."""
    experiments = _experiments(session, search)
    if index == -1 or (index is None and not experiments):
        return job_runner.logs(search)
    chosen = experiments[-1] if index is None else next((e for e in experiments if e.index == index), None)
    if chosen is None:
        available = ", ".join(str(e.index) for e in experiments) or "none yet"
        raise RequestError(404, f"AutoML experiment index '{index}' does not exist. Available experiment indices: "
                           f"{available}. Use -1 for the search's own log.")  # fmt: skip
    job = session.get(Job, chosen.job_id) if chosen.job_id else None
    return job_runner.logs(job) if job is not None else chosen.message


def running_searches(svc) -> list[str]:
    with svc.store.session() as session:
        rows = session.scalars(select(Job).where(Job.status == "Running", Job.action == "train")).all()
        return [row.id for row in rows if is_search(row)]


class Driver(threading.Thread):
    """Steps every running search every ``interval`` seconds, whether or not a client is asking."""

    def __init__(self, svc, interval: float):
        super().__init__(name="automl-driver", daemon=True)
        self.svc, self.interval, self.stopped = svc, interval, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            for search_id in running_searches(self.svc):
                try:
                    advance(self.svc, search_id)
                except Exception:  # one search's trouble (logged) must not stop the others
                    log.exception("AutoML search %s: a step failed", search_id)


def _study(store, search: Job):
    import optuna

    plan = search.bindings["automl"]
    study = optuna.create_study(storage=_storage(store), study_name=_name(search.id), direction=plan["direction"],
                                sampler=_sampler(store, search.id, plan), pruner=_pruner(plan),
                                load_if_exists=True)  # fmt: skip
    if not study.trials:  # a new study: its first experiment is the spec as the client gave it
        first = {k: v for k, v in plan.get("first", {}).items() if _inside(plan, k, v)}
        study.enqueue_trial(first, skip_if_exists=True)
    return study


def _name(search_id: str) -> str:
    return f"tao-automl-{search_id}"


def _inside(plan: dict, name: str, value) -> bool:
    """Whether a spec's value lies in the range searched for that parameter (else the sampler draws one)."""
    p = next(p for p in plan["parameters"] if p["parameter"] == name)
    if p.get("valid_options") or p["value_type"] in ("categorical", "bool"):
        return value in (p.get("valid_options") or [False, True])
    if p["value_type"] == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
        return False
    return isinstance(value, (int, float)) and p["valid_min"] <= value <= p["valid_max"]


def _storage(store):
    """Optuna's RDB storage on the service's database, one per database (each holds a connection pool)."""
    import optuna

    url = store.engine.url.render_as_string(hide_password=False)
    if url not in _STORAGES:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        _STORAGES[url] = optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(store))
    return _STORAGES[url]


def _engine_kwargs(store) -> dict:
    # SQLite: the service's requests and this thread share the file; wait for a lock rather than fail at once
    return {"connect_args": {"timeout": 30}} if store.engine.url.get_backend_name() == "sqlite" else {}


def _sampler(store, search_id: str, plan: dict):
    import optuna

    if search_id not in _SAMPLERS:  # seeded by the trials so far: the same draws after a restart, not repeats
        try:
            seed = plan["seed"] + len(optuna.load_study(study_name=_name(search_id), storage=_storage(store)).trials)
        except KeyError:  # a new study
            seed = plan["seed"]
        if plan["sampler"] == "tpe":  # random for the first third of the budget (Optuna's 10 would be all of it)
            startup = max(3, plan["max_recommendations"] // 3)
            _SAMPLERS[search_id] = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=startup)
        else:
            _SAMPLERS[search_id] = optuna.samplers.RandomSampler(seed=seed)
    return _SAMPLERS[search_id]


def _pruner(plan: dict):
    import optuna

    if plan["pruner"] == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=plan["min_epochs"], max_resource=plan["max_epochs"],
                                              reduction_factor=plan["reduction_factor"])  # fmt: skip
    if plan["pruner"] == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=plan["min_epochs"],
                                                      reduction_factor=plan["reduction_factor"])  # fmt: skip
    return optuna.pruners.NopPruner()


def _distributions(plan: dict) -> dict:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found: dict = {}
    for p in plan["parameters"]:
        kind, name = p["value_type"], p["parameter"]
        if p.get("valid_options") or kind in ("categorical", "bool"):
            found[name] = CategoricalDistribution(p.get("valid_options") or [False, True])
        elif kind == "int":
            found[name] = IntDistribution(int(p["valid_min"]), int(p["valid_max"]), log=bool(p.get("log")))
        else:
            found[name] = FloatDistribution(float(p["valid_min"]), float(p["valid_max"]), log=bool(p.get("log")))
    return found


def _tell(study, number: int, state: str, value: float | None = None) -> None:
    """The study learns how a trial ended (a running one: nothing yet)."""
    import optuna

    if state == "done":
        study.tell(number, value)
    elif state in ("pruned", "failed"):
        study.tell(number, state=optuna.trial.TrialState.PRUNED if state == "pruned" else optuna.trial.TrialState.FAIL)


def _trial(storage, study, number: int):
    """The study's trial ``number``, to report to: the ask-and-tell interface looks trials up by id, which the
    storage gives for a number."""
    import optuna

    study_id = storage.get_study_id_from_name(study.study_name)
    return optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, number))


def _epoch_metrics(job: Job, metric: str) -> list[tuple[int, float, int]]:
    """(epoch, the metric, the last epoch) of each status.json epoch line that holds the metric (0-based)."""
    found = []
    for line in job_runner.status_lines(job):
        value = (line.get("kpi") or {}).get(metric)
        epoch = line.get("epoch")
        if isinstance(epoch, int) and isinstance(value, (int, float)):
            last = line.get("max_epoch")
            found.append((epoch, float(value), last if isinstance(last, int) else epoch + 1))
    return found


def _drop_checkpoints(job: Job, plan: dict) -> None:
    """A losing experiment's checkpoint files (the plugin's checkpoint_files), when the client asked."""
    if not plan["delete_intermediate_ckpt"] or not plan["checkpoint_files"]:
        return
    root = Path(job.results_dir)
    for pattern in plan["checkpoint_files"]:
        for path in root.glob(pattern):
            if path.is_file() or path.is_symlink():
                path.unlink()


def _experiments(session, search: Job, state: str | None = None) -> list[Experiment]:
    query = select(Experiment).where(Experiment.search_id == search.id, Experiment.org == search.org)
    if state:
        query = query.where(Experiment.state == state)
    return list(session.scalars(query.order_by(Experiment.index)).all())


def _nested(flat: dict) -> dict:
    nested: dict = {}
    for dotted, value in flat.items():
        *parents, last = dotted.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return nested


def _shown(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _say(search: Job, line: str) -> None:
    """A line of the search's own log (``get-job-logs --automl-experiment-index -1``)."""
    path = Path(search.results_dir).parent / "job.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(line + "\n")
    log.info("AutoML search %s: %s", search.id, line)
