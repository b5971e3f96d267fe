"""The smallest complete tao-launcher plugin (docs/plugin_protocol.md): a "model" that learns the mean and spread
of the numbers in a text file and scores new numbers by their distance to the mean, in standard deviations.

It runs under `tao --local model example_task train -e spec.yaml`, in a container, and as job service jobs (train;
evaluate by parent; an inference microservice; AutoML searches over ``rate``, whose best value is 0.3). The
declaration is plain data; the handler does the work."""

import json
import statistics
import sys
import time
from pathlib import Path

import yaml

PLUGIN = {
    "protocol": "1.6", "name": "example_task", "version": "0.1.0", "summary": "mean and spread of numbers",
    "image": "tao-example-plugin:0.1.0", "argv_prefix": ["example_task"], "handler": "tao_example_plugin:main",
    "actions": [{"name": "train", "help": "learn mean and spread", "example": "example_task train -e spec.yaml"},
                {"name": "evaluate", "help": "score a file of numbers with a trained model"}],
    "path_options": ["-e"], "path_keys": ["results_dir", "data", "model"], "output_keys": ["results_dir"],
    "schema": "tao_example_plugin:defaults", "job_specs": "tao_example_plugin:job_specs",
    "inference_server": "tao_example_plugin:predictor", "model_files": {"latest": ["train/model.json"]},
    "base_experiments": [{"name": "longer", "overrides": {"epochs": 5}}],
    "automl": {"metric": "fit", "direction": "maximize", "epochs_key": "epochs", "checkpoint_files": ["train/*.json"],
               "parameters": [{"parameter": "rate", "value_type": "float", "default_value": 0.5, "valid_min": 0.0,
                               "valid_max": 1.0}]},
}  # fmt: skip


def defaults(action: str) -> dict:
    """An action's full default spec (get-job-schema shows it; the job service checks paths over it)."""
    # rate: what AutoML tunes; crash_above: a training with a larger rate fails (a failing trial, for tests);
    # epoch_s: how long an epoch lasts
    return {"results_dir": "results", "data": "", "epochs": 2, "model": "", "rate": 0.5, "crash_above": 2.0,
            "epoch_s": 0.1}  # fmt: skip


def job_specs(action, specs, datasets, ancestors, results_dir) -> dict:
    """Bind a job's datasets (by role), its parent's model and its results folder into its spec."""
    role = "train" if action == "train" else "eval"
    model = next((f"{a['results_dir']}/train/model.json" for a in ancestors if a["action"] == "train"), "")
    return {**specs, "results_dir": results_dir, "data": datasets.get(role, [""])[0], "model": model}


def main(argv: list[str]) -> int:
    action, spec_file, overrides = argv[0], argv[argv.index("-e") + 1], argv[argv.index("-e") + 2 :]
    spec = {**defaults(action), **yaml.safe_load(Path(spec_file).read_text())}
    spec.update(item.split("=", 1) for item in overrides)  # key=value, as every TAO task takes them
    out = Path(spec["results_dir"]) / action
    out.mkdir(parents=True, exist_ok=True)
    numbers = [float(line) for line in Path(spec["data"]).read_text().split()]
    if action == "train":
        last, rate = int(spec["epochs"]) - 1, float(spec["rate"])
        if rate > float(spec["crash_above"]):
            print(f"train: rate {rate} is above crash_above {spec['crash_above']}", file=sys.stderr)
            return 1
        for epoch in range(last + 1):  # status.json: one JSON object per line, as the service reads it
            fit = (1 - abs(rate - 0.3)) * (epoch + 1) / (last + 1)  # grows with the epochs, best at rate 0.3
            _status(out, status="RUNNING", epoch=epoch, max_epoch=last, kpi={"loss": 1 / (epoch + 1), "fit": fit})
            time.sleep(float(spec["epoch_s"]))
        model = {"mean": statistics.fmean(numbers), "std": statistics.pstdev(numbers) or 1.0}
        (out / "model.json").write_text(json.dumps(model))
        kpi = {"samples": len(numbers)}
    else:
        model = json.loads(Path(spec["model"]).read_text())
        kpi = {"max_score": max(abs(x - model["mean"]) / model["std"] for x in numbers)}
    _status(out, status="SUCCESS", message=f"{action} done", kpi=kpi)
    print(f"{action}: {kpi}", file=sys.stderr)
    return 0


def predictor(model_job_dir: Path):
    """The inference microservice: the train job's model, kept loaded."""
    model = json.loads((Path(model_job_dir) / "results" / "train" / "model.json").read_text())

    def predict(request: dict) -> dict:
        if not isinstance(request.get("input"), (int, float)):
            raise ValueError("input must be a number")  # the client gets a 400 with this line
        return {"score": abs(request["input"] - model["mean"]) / model["std"]}

    return predict


def _status(out: Path, **line) -> None:
    with (out / "status.json").open("a") as handle:
        handle.write(json.dumps(line) + "\n")
