"""AutoML pay-off benchmark: does a search through the job service beat the default recipe on a design it never saw?

DeepPCB-dev's two designs, as bench/unseen_designs.py splits them: train on one design's boards, validate on its
held-out boards (the search watches that validation metric, nothing of the other design), test on every board of
the other design. Both runs go through a real ``tao serve`` (local executor) as a TAO Client user would send them:
the default recipe (specs/train_deeppcb.yaml) as one train job, and an AutoML search of a stated budget over the
same spec; then each model is evaluated on the unseen design by ``--parent-job-id``.

The search validates on the training design's held-out boards drawn at ``--val-scale`` (dataset_convert.scale):
at 0.8 they stand in for a finer-pitched new design, which ranks configurations by what carries over to one; at 1
(the boards as they are) every sound configuration scores alike and the ranking is noise (docs/automl.md).

    python -m bench.automl_search                                   # both directions, bayesian, 10 x 5 epochs
    python -m bench.automl_search --directions 00041-13000 --trials 4 --algorithm asha
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
from tao_launcher.service.automl_settings import DEFAULTS as AUTOML_DEFAULTS

from bench.models import convert
from bench.unseen_designs import BUDGETS, DESIGNS, GRID_SPEC, split_by_design

ORG = "bench"


class Service:
    """``tao serve --airgapped`` on a free loopback port, and its API as JSON calls."""

    def __init__(self, data_root: Path, state_dir: Path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}/api/v2/orgs/{ORG}"
        command = [sys.executable, "-m", "tao_launcher.cli", "serve", "--airgapped", "--data-root", str(data_root),
                   "--state-dir", str(state_dir), "--port", str(port)]  # fmt: skip
        self.log = (state_dir.parent / "serve.log").open("w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/health", timeout=1)
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("tao serve did not answer; see serve.log") from None
                time.sleep(0.3)

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read())

    def wait(self, job_id: str) -> dict:
        while (job := self.call("GET", f"/jobs/{job_id}"))["status"] in ("Pending", "Running"):
            time.sleep(5)
        if job["status"] != "Done":
            raise SystemExit(f"job {job_id} ended {job['status']}: {job['job_details']}")
        return job

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def recipe(epochs: int, seed: int) -> dict:
    """The shipped DeepPCB training spec without what the service binds (paths, results folders)."""
    spec = yaml.safe_load(Path(GRID_SPEC).read_text())
    for key in ("results_dir", "evaluate", "inference"):
        spec.pop(key, None)
    for split in ("train", "validation", "test", "infer"):
        spec["dataset"].pop(f"{split}_dataset", None)
    spec["train"].update(num_epochs=epochs, seed=seed)
    return spec


def unseen(svc: Service, model_job: str, test_set: str, spec: dict, state_dir: Path) -> dict:
    """The model of ``model_job`` evaluated on the other design's boards."""
    body = {"network_arch": "optical_inspection", "action": "evaluate", "parent_job_id": model_job,
            "eval_dataset": test_set, "specs": {"dataset": spec["dataset"], "evaluate": {"report": False}}}  # fmt: skip
    job = svc.wait(svc.call("POST", "/jobs", body)["id"])
    metrics = json.loads((state_dir / ORG / job["id"] / "results" / "evaluate" / "metrics.json").read_text())
    return {"auroc": metrics["auroc"], **{f"recall@{b}": metrics["recall_at_fpr"][b] for b in BUDGETS}}


def direction(svc: Service, sets: dict, state_dir: Path, spec: dict, automl: dict, every: bool) -> dict:
    datasets = {split: svc.call("POST", "/datasets", {"type": "optical_inspection", "format": "default",
                                                      "workspace": sets["workspace"],
                                                      "cloud_file_path": sets[split]})["id"]
                for split in ("train", "val", "test", "search_val")}  # fmt: skip
    train = {"network_arch": "optical_inspection", "action": "train", "specs": spec,
             "train_datasets": [datasets["train"]], "eval_dataset": datasets["val"]}  # fmt: skip
    started = time.perf_counter()
    default_job = svc.wait(svc.call("POST", "/jobs", train)["id"])
    default_s = time.perf_counter() - started
    started = time.perf_counter()
    searched = {**train, "eval_dataset": datasets["search_val"], "automl_settings": automl}
    search = svc.wait(svc.call("POST", "/jobs", searched)["id"])
    search_s = time.perf_counter() - started
    rows = search["job_details"]["automl_experiments"]
    best = next(item["value"] for item in search["job_details"]["automl_brain_info"]
                if item["metric"] == "Best experiment id")  # fmt: skip
    return {
        # the search's metric of the default recipe: its first experiment trains the spec as given
        "default": {**unseen(svc, default_job["id"], datasets["test"], spec, state_dir), "wall_s": default_s,
                    "val_metric": rows[0]["metric"]},
        "best": {**unseen(svc, search["id"], datasets["test"], spec, state_dir), "wall_s": search_s,
                 "val_metric": rows[int(best)]["metric"]},
        "best_params": rows[int(best)]["specs"],
        "experiments": len(rows),
        "pruned": sum(r["state"] == "pruned" for r in rows),
        "failed": sum(r["state"] == "failed" for r in rows),
        "epochs_trained": sum(r["epoch"] for r in rows),
        # --every-experiment: each experiment's validation KPIs beside its recall on the unseen design, to see
        # which validation number would have picked the model that generalises
        "every": [{"index": r["experiment_index"], **_val_kpis(svc, r["job_id"]),
                   **unseen(svc, r["job_id"], datasets["test"], spec, state_dir)}
                  for r in rows if every and r["state"] == "done"],
    }  # fmt: skip


def _val_kpis(svc: Service, job_id: str) -> dict:
    kpi = svc.call("GET", f"/jobs/{job_id}")["job_details"]["kpi"]
    return {k: v for k, v in kpi.items() if k.startswith("val_") and isinstance(v, (int, float))}


def table(results: dict) -> str:
    lines = ["| direction | model | unseen AUROC | recall @0.1 % | @0.5 % | @1 % | search's val AUROC | wall time |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, result in results.items():
        for model in ("default", "best"):
            r = result[model]
            label = (f"best of {result['experiments']} ({result['pruned']} pruned)" if model == "best"
                     else "default recipe")  # fmt: skip
            lines.append(f"| {name} | {label} | {r['auroc']:.4f} | {r['recall@0.1']:.1f} | {r['recall@0.5']:.1f} | "
                         f"{r['recall@1']:.1f} | {r['val_metric']:.5f} | {r['wall_s'] / 60:.1f} min |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--directions", nargs="+", default=[f"{DESIGNS[0]}-{DESIGNS[1]}", f"{DESIGNS[1]}-{DESIGNS[0]}"])
    parser.add_argument("--algorithm", default=AUTOML_DEFAULTS["automl_algorithm"])
    parser.add_argument(
        "--trials", type=int, default=AUTOML_DEFAULTS["automl_max_recommendations"], help="automl_max_recommendations"
    )
    parser.add_argument("--val-scale", type=float, default=0.8, help="scale of the boards the search validates on")
    parser.add_argument("--epochs", type=int, default=5, help="every training's (hyperband-like: the most)")
    parser.add_argument("--seed", type=int, default=1234, help="every training's (train.seed)")
    parser.add_argument(
        "--search-seed", type=int, default=AUTOML_DEFAULTS["automl_seed"], help="the sampler's (automl_seed)"
    )
    parser.add_argument("--out", help="keep the runs here (default: a temporary directory)")
    parser.add_argument(
        "--every-experiment",
        action="store_true",
        help="keep every experiment's model and evaluate each on the unseen design too",
    )
    args = parser.parse_args(argv)
    automl = {"automl_enabled": True, "automl_algorithm": args.algorithm, "automl_max_recommendations": args.trials,
              "automl_max_epochs": args.epochs, "automl_seed": args.search_seed,
              "automl_delete_intermediate_ckpt": not args.every_experiment}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp).resolve()
        data = convert(root / "service_data" / ORG, 0)  # converted into the org's data folder
        sets = split_by_design(data, data / "splits")
        search_data, search_sets = data, sets
        if args.val_scale != 1:
            search_data = convert(root / "service_data" / ORG, 0, args.val_scale)
            search_sets = split_by_design(search_data, search_data / "splits")
        svc = Service(root / "service_data", root / "state")
        try:
            workspace = svc.call("POST", "/workspaces", {"name": "deeppcb", "cloud_type": "self_hosted"})["id"]
            results = {}
            for name in args.directions:
                source, target = name.split("-")
                for images in {data, search_data}:
                    folder = images / "splits" / f"{source}_to_{target}"
                    if not (folder / "images").exists():  # the CSVs name images under images/ beside them
                        os.symlink(os.path.relpath(images / "images", folder), folder / "images")
                csvs = {split: str(Path(sets[f"{source}->{target}"][split]).relative_to(data.parent))
                        for split in ("train", "val", "test")}  # fmt: skip
                csvs["search_val"] = str(Path(search_sets[f"{source}->{target}"]["val"]).relative_to(data.parent))
                results[f"{source} -> {target}"] = direction(svc, {**csvs, "workspace": workspace}, root / "state",
                                                             recipe(args.epochs, args.seed), automl,
                                                             args.every_experiment)  # fmt: skip
                print(json.dumps({name: results[f"{source} -> {target}"]}), flush=True)
        finally:
            svc.stop()
    print(f"DeepPCB-dev, {args.algorithm}, {args.trials} experiments of <= {args.epochs} epochs, seed {args.seed}, "
          f"search seed {args.search_seed}, search validated at scale {args.val_scale}, CPU, one run")  # fmt: skip
    print(table(results))


if __name__ == "__main__":
    main()
