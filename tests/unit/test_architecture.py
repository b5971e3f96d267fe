"""The layer rules of docs/architecture.md, checked on every import statement (module-level and deferred)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lower layers never import higher ones; a layer may import its own modules and anything below.
LAYERS = [
    {"errors", "actions", "model_files", "__init__"},
    {"utils", "model", "pretrained"},
    {"config", "data"},
    {"artifacts"},
    {"deploy", "engine"},
    {"tasks"},
    {"entry_points", "plugin", "service_specs", "automl_space"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# Parts of one layer that must not import each other: deployment runs without the training framework.
APART = {("deploy", "engine"), ("engine", "deploy")}
# Lightning is the training framework: only training and the Lightning data module may import it.
LIGHTNING_ALLOWED = {"engine", "tasks/train.py", "tasks/common.py", "data/datamodule.py"}


def part_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "entry_points":
        return "entry_points"
    inner = rel.parts[1:]
    return inner[0] if len(inner) > 1 else Path(inner[0]).stem


def imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def package_files():
    return [*(ROOT / "tao_siamese_oi").rglob("*.py"), *(ROOT / "entry_points").rglob("*.py")]


def test_every_part_of_the_package_has_a_layer():
    assert {part_of(p) for p in package_files()} <= set(RANK)


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_down_the_layers(path):
    here = part_of(path)
    for name in imports(path):
        if name.startswith("tao_siamese_oi."):
            there = name.split(".")[1]
            assert RANK[there] <= RANK[here], f"{here} (layer {RANK[here]}) imports {name} (layer {RANK[there]})"
            assert (here, there) not in APART, f"{here} imports {name}"
        if name == "lightning" or name.startswith("lightning."):
            rel = str(path.relative_to(ROOT / "tao_siamese_oi")) if "tao_siamese_oi" in path.parts else ""
            assert here in LIGHTNING_ALLOWED or rel in LIGHTNING_ALLOWED, f"{path.name} imports {name}"


def test_the_launcher_imports_no_model_code():
    for path in (ROOT / "launcher" / "tao_launcher").rglob("*.py"):
        assert not [n for n in imports(path) if n.split(".")[0] == "tao_siamese_oi"], path
        assert not [n for n in imports(path) if n.split(".")[0] in ("torch", "lightning")], path


@pytest.mark.slow
def test_deployment_and_validation_run_without_lightning(tmp_path, tiny_data, tiny_model):
    """validate, reading an export's sidecar and scoring with onnxruntime, each in a fresh process."""
    spec = tiny_model["spec"]
    script = (
        "import json, sys\n"
        "from tao_siamese_oi.entry_points.optical_inspection import run_action\n"
        "code = run_action(sys.argv[1:])\n"
        "from tao_siamese_oi.artifacts.exported import read_sidecar\n"
        f"read_sidecar({str(tiny_model['onnx'])!r})\n"
        "print(json.dumps({'code': code, 'lightning': 'lightning' in sys.modules}))\n"
    )
    runs = {
        "validate": ["validate", "-e", spec, f"results_dir={tmp_path / 'v'}"],
        "onnxruntime inference": [
            "inference", "-e", spec, f"results_dir={tmp_path / 'i'}",
            "inference.backend=onnxruntime", f"inference.onnx_file={tiny_model['onnx']}",
        ],
    }  # fmt: skip
    for name, argv in runs.items():
        out = subprocess.run([sys.executable, "-c", script, *map(str, argv)], capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result == {"code": 0, "lightning": False}, (name, out.stderr[-2000:])
