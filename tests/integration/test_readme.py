"""Docs that cannot drift: generated pages, the quick start, the test command and every link are checked."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tao_siamese_oi.config import load_config
from tao_siamese_oi.config.reference import BEGIN, END
from tests.conftest import cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def quick_start_commands() -> list[str]:
    block = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("optical_inspection")]


def test_generated_pages_match_the_code():
    from tao_siamese_oi.entry_points.docs import cli_markdown, spec_reference_page

    regenerate = "run: python -m tao_siamese_oi.entry_points.docs"
    page = (ROOT / "docs" / "spec_reference.md").read_text()
    assert page.count(BEGIN) == 1 and page.count(END) == 1
    assert spec_reference_page(page) == page, regenerate
    assert (ROOT / "docs" / "cli.md").read_text() == cli_markdown(), regenerate


def test_readme_test_command_is_what_ci_runs():
    command = README.split("## Tests", 1)[1].split("```bash", 1)[1].split("```", 1)[0].strip()
    assert command in (ROOT / ".ci" / "run").read_text()


def test_every_relative_link_in_the_docs_resolves():
    pages = [ROOT / "README.md", ROOT / "launcher" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_every_shipped_spec_loads(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPPCB_ROOT", str(tmp_path))  # the DeepPCB convert spec reads it (README, Real data)
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
    assert {rel.split("/")[0] for rel in outputs} == {"train", "evaluate", "inference", "export"}
    for rel in outputs:
        assert (tmp_path / "results" / "sample" / rel).is_file(), rel

    # Run again, as the README says: train has finished, every other task refuses to replace its outputs.
    before = sorted((p, p.stat().st_mtime_ns) for p in (tmp_path / "results").rglob("*"))
    for command in commands[1:]:
        argv = shlex.split(command)
        out = subprocess.run([cli(argv[0]), *argv[1:]], cwd=tmp_path, capture_output=True, text=True)
        expected = 0 if argv[1] == "train" else 5
        assert out.returncode == expected, f"{command}\n{out.stderr[-3000:]}"
        if expected:
            assert f"{argv[1]}.overwrite=true" in out.stderr.strip().splitlines()[-1]
    assert sorted((p, p.stat().st_mtime_ns) for p in (tmp_path / "results").rglob("*")) == before


def next_command(stderr: str) -> str | None:
    """The command of a run's ``next:`` line (after its ``; to deploy:``, when it has one), or None."""
    line = next((line for line in stderr.splitlines() if line.startswith("next: ")), None)
    if line is None:
        return None
    command = line[len("next: ") :].split("; to deploy: ")[-1]
    return command if command.startswith("optical_inspection ") else None


@pytest.mark.slow
def test_every_next_line_of_the_quick_start_runs_as_printed(tmp_path):
    """Each quick-start step's ``next:`` command, run right after it (in a copy of the folder as it was then),
    exits 0; so does the chain of ``next:`` lines that follows the last step."""
    work = tmp_path / "work"
    shutil.copytree(ROOT / "specs", work / "specs")

    def run(command: str, cwd: Path) -> subprocess.CompletedProcess:
        argv = shlex.split(command)
        done = subprocess.run([cli(argv[0]), *argv[1:]], cwd=cwd, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        return done

    followed = []
    for step, command in enumerate(quick_start_commands()):
        suggested = next_command(run(command, work).stderr)
        if suggested is None:
            continue
        then = tmp_path / f"after_{step}"
        shutil.copytree(work, then)
        followed.append(suggested.split()[1])
        run(suggested, then)
    assert followed == ["evaluate", "export", "export", "inference"]  # train, evaluate, inference, export
    chain, command = [], suggested
    while command is not None and len(chain) < 5:  # after the quick start: follow the lines as they come
        chain.append(command.split()[1])
        command = next_command(run(command, work).stderr)
    assert chain == ["inference"] and command is None  # ONNX inference beside the first one; its line: the CSV


@pytest.mark.slow
def test_the_console_is_quiet_in_a_log(tmp_path, tiny_data):
    """Output redirected to a file (a scheduler's log): no framework banners, no progress bars stuck at 0 %."""
    import yaml

    from tests.conftest import tiny_spec_dict

    spec = tiny_spec_dict(tiny_data, tmp_path / "results")
    spec["train"]["num_epochs"] = 1
    spec["dataset"]["workers"] = 1
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    for argv in (["train", "-e", path], ["train", "-e", path, "train.num_epochs=2"]):  # fresh, then resumed
        out = subprocess.run([cli("optical_inspection"), *map(str, argv)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        for noise in (
            "GPU available",
            "TPU available",
            "exists and is not empty",
            "on_after_batch_transfer",
            "%|",
            "Trainable params",
            "LOCAL_RANK",
            "`Trainer.fit` stopped",
            "Warning",
        ):
            assert noise not in out.stderr, (noise, out.stderr)
        # Our lines only; the tiny validation set is too small to show 1 % FPR, which training says in one line.
        lines = [line for line in out.stderr.splitlines() if "too few to show an FPR" not in line]
        assert [line.split(":")[0] for line in lines] == ["INFO"] * (len(lines) - 1) + ["next"]


def test_each_shipped_spec_says_which_model_it_trains():
    """A spec's first comment that names a model names the one its model.model_type trains (or the default)."""
    from tao_siamese_oi.config.schema import ModelConfig

    for spec in sorted((ROOT / "specs").glob("*.yaml")):
        first = spec.read_text().splitlines()[0]
        model_type = (yaml.safe_load(spec.read_text()).get("model") or {}).get("model_type") or ModelConfig().model_type
        named = [name for name in ("Siamese_Grid", "Siamese_3", "Siamese_1") if name in first.split(";")[0]]
        assert named in ([], [model_type]), f"{spec.name}: '{first}' but model_type {model_type}"
