"""The README's Real data section on DeepPCB-dev, through the real CLI as a user types it (from a copy of specs/,
with DEEPPCB_ROOT set): dataset_convert, train (one epoch instead of ten: CI's time), evaluate."""

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from bench.deeppcb import deeppcb_root, missing_reason
from tests.conftest import cli

pytestmark = pytest.mark.slow  # real trainings and subprocesses: the slow lane

ROOT = Path(__file__).resolve().parents[2]


def real_data_commands() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Real data: DeepPCB\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("optical_inspection ")]


@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_the_readmes_real_data_commands_run_on_deeppcb_dev(tmp_path):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    env = {**os.environ, "DEEPPCB_ROOT": str(deeppcb_root())}
    commands = real_data_commands()
    assert [c.split()[1] for c in commands] == ["dataset_convert", "train", "evaluate"]
    results = []
    for command in commands:
        argv = shlex.split(command) + (["train.num_epochs=1"] if " train " in command else [])
        done = subprocess.run([cli(argv[0]), *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    summary, trained, metrics = results
    assert summary["train"]["images"] > 0 and summary["test"]["images"] > 0
    assert summary["train"]["labels"]["PASS"] == 20 * summary["train"]["images"]  # the spec's crops per image
    assert trained["epochs"] == 1
    assert metrics["num_pairs"] == summary["test"]["pairs"]
    assert metrics["num_fail"] == summary["test"]["pairs"] - summary["test"]["labels"]["PASS"]
    assert metrics["auroc"] > 0.9  # one epoch on real boards already separates most defects
    evaluated = pd.read_csv(tmp_path / "results" / "deeppcb" / "evaluate" / "evaluate.csv")
    assert {"defect_type", "board", "siamese_score", "decision"} <= set(evaluated.columns)  # extra columns kept
    assert (tmp_path / "results" / "deeppcb" / "evaluate" / "report.html").is_file()

    again = subprocess.run([cli("optical_inspection"), *shlex.split(commands[0])[1:]], cwd=tmp_path, env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 5 and "choose another dataset_convert.data_convert_output_dir" in again.stderr
    unset = {k: v for k, v in env.items() if k != "DEEPPCB_ROOT"}
    shutil.rmtree(tmp_path / "data")
    missing = subprocess.run([cli("optical_inspection"), *shlex.split(commands[0])[1:]], cwd=tmp_path, env=unset,
                             capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == 2 and "Environment variable 'DEEPPCB_ROOT' not found" in missing.stderr
