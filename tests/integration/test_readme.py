"""Docs that cannot drift: the README's spec table and its quick start are checked against the code."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tao_siamese_oi.config import load_config
from tao_siamese_oi.config.reference import BEGIN, END, spec_reference_markdown
from tests.conftest import cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def quick_start_commands() -> list[str]:
    block = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("optical_inspection")]


def test_spec_table_matches_the_schema():
    table = README[README.index(BEGIN) : README.index(END) + len(END)]
    assert table == spec_reference_markdown(), "run: python -m tao_siamese_oi.config.reference"


def test_readme_test_command_is_what_ci_runs():
    command = README.split("Run the tests", 1)[1].split("```bash", 1)[1].split("```", 1)[0].strip()
    assert command in (ROOT / ".ci" / "run").read_text()


def test_every_shipped_spec_loads():
    specs = sorted((ROOT / "specs").glob("*.yaml"))
    assert {p.stem for p in specs} >= {"train", "evaluate", "inference", "export"}
    for spec in specs:
        load_config(spec)


@pytest.mark.slow
def test_quick_start_runs_verbatim(tmp_path):
    """The README's commands, as a new user types them, from a copy of the repository root."""
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    commands = quick_start_commands()
    assert [c.split()[1] for c in commands] == ["make_sample_data", "train", "evaluate", "inference", "export"]
    for command in commands:
        argv = shlex.split(command)
        out = subprocess.run([cli(argv[0]), *argv[1:]], cwd=tmp_path, capture_output=True, text=True)
        assert out.returncode == 0, f"{command}\n{out.stderr[-3000:]}"
    outputs = re.findall(r"`((?:train|evaluate|inference|export)/[\w.]+)`", README.split("Outputs land in", 1)[1])
    assert len(outputs) == 4
    for rel in outputs:
        assert (tmp_path / "results" / "sample" / rel).is_file(), rel
