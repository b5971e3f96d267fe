"""A second plugin, written from docs/plugin_protocol.md and docs/job_service.md alone (no launcher source read):
a "model" that learns the words of a text file and scores a new file by its share of unknown words.

It takes what the example plugin leaves at the defaults the other way: its spec is JSON (``spec_format``), its
spec option is ``--config``, its secret is read from the environment only (``secret_spec_value: ""``), and its
actions are ``fit`` and ``check``."""

import hashlib
import json
import os
import sys
from pathlib import Path

PLUGIN = {
    "protocol": "1.4", "name": "word_counter", "version": "1.0.0", "summary": "share of unknown words",
    "image": "word-counter:1.0.0", "argv_prefix": ["word_counter"], "handler": "word_counter:main",
    "actions": [{"name": "fit", "help": "learn the words of a text"}, {"name": "check", "help": "score a text"}],
    "path_options": ["--config"], "path_keys": ["results_dir", "text", "vocabulary"], "output_keys": ["results_dir"],
    "secret_keys": ["token"], "secret_spec_value": "", "spec_format": "json",
    "schema": "word_counter:defaults", "job_specs": "word_counter:job_specs", "inference_server": "word_counter:serve",
}  # fmt: skip


def defaults(action: str) -> dict:
    return {"results_dir": "results", "text": "", "vocabulary": "", "min_count": 1}


def job_specs(action, specs, datasets, ancestors, results_dir) -> dict:
    fitted = next((f"{a['results_dir']}/fit/vocabulary.json" for a in ancestors if a["action"] == "fit"), "")
    role = "train" if action == "fit" else "eval"
    return {**specs, "results_dir": results_dir, "text": datasets.get(role, [""])[0], "vocabulary": fitted}


def main(argv: list[str]) -> int:
    action, spec_file = argv[0], argv[argv.index("--config") + 1]
    spec = {**defaults(action), **json.loads(Path(spec_file).read_text())}
    token = os.environ.get("TAO_JOB_ENCRYPTION_KEY") or spec.get("token")  # never logged: its digest only
    out = Path(spec["results_dir"]) / action
    out.mkdir(parents=True, exist_ok=True)
    words = Path(spec["text"]).read_text().split()
    if action == "fit":
        known = sorted({w for w in words if words.count(w) >= int(spec["min_count"])})
        (out / "vocabulary.json").write_text(json.dumps(known))
        kpi = {"words": len(known)}
    else:
        known = json.loads(Path(spec["vocabulary"]).read_text())
        kpi = {"unknown_share": sum(w not in known for w in words) / len(words)}
    digest = hashlib.sha256(token.encode()).hexdigest()[:8] if token else None
    line = {"status": "SUCCESS", "message": f"{action} done", "kpi": {**kpi, "token_digest": digest}}
    (out / "status.json").write_text(json.dumps(line) + "\n")
    print(json.dumps(line), file=sys.stderr)
    return 0


def serve(model_job_dir):
    known = set(json.loads((Path(model_job_dir) / "results" / "fit" / "vocabulary.json").read_text()))

    def predict(request: dict) -> dict:
        if not isinstance(request.get("input"), str):
            raise ValueError("input must be a text")
        words = request["input"].split()
        return {"unknown_share": sum(w not in known for w in words) / max(len(words), 1)}

    return predict
