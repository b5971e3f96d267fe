"""evaluate and inference write each pair's cell map and strongest cell, with every backend; Siamese_3 says it has
none."""

import json

import numpy as np
import pandas as pd
import pytest
from tao_siamese_oi.entry_points.optical_inspection import run_action

from tests.conftest import TINY_KEY

pytestmark = pytest.mark.slow


def load_maps(folder):
    with np.load(folder / "heatmaps.npz", allow_pickle=False) as saved:  # no pickled objects in it
        return saved["cell_distances"].astype(np.float32), json.loads(str(saved["geometry"]))


def test_evaluate_writes_each_pairs_map_and_strongest_cell(tiny_grid_model):
    assert (
        run_action(
            ["evaluate", "-e", str(tiny_grid_model["spec"]), f"evaluate.checkpoint={tiny_grid_model['checkpoint']}"]
        )
        == 0
    )
    folder = tiny_grid_model["results"] / "evaluate"
    maps, geometry = load_maps(folder)
    frame = pd.read_csv(folder / "evaluate.csv", keep_default_na=False)
    assert maps.shape == (len(frame), 16, 4) and geometry["grid"] == [16, 4]  # four lights stacked, 4 x 4 each
    assert [light["light"] for light in geometry["lights"]] == ["LowAngleLight", "SolderLight", "UniformLight",
                                                                "WhiteLight"]  # fmt: skip
    # The map accounts for the score (float16 storage: about 3 significant digits).
    np.testing.assert_allclose(np.sqrt((maps.astype(np.float64) ** 2).sum(axis=(1, 2))), frame["siamese_score"],
                               rtol=2e-3)  # fmt: skip
    for row, heatmap in zip(frame.itertuples(), maps):
        r, c = np.unravel_index(heatmap.argmax(), heatmap.shape)
        assert row.hotspot_light == geometry["lights"][r // 4]["light"]
        assert (row.hotspot_x, row.hotspot_y) == pytest.approx(((c + 0.5) / 4, (r % 4 + 0.5) / 4), abs=1e-3)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["heatmaps"] == str(folder / "heatmaps.npz")


def test_the_onnx_backend_gives_the_maps_pytorch_gives(tiny_grid_model):
    results, spec = tiny_grid_model["results"], str(tiny_grid_model["spec"])
    checkpoint = f"export.checkpoint={tiny_grid_model['checkpoint']}"
    assert run_action(["export", "-e", spec, checkpoint, "export.include_heatmap=true"]) == 0
    onnx_file = results / "export" / "oi_model.onnx"
    sidecar = json.loads(onnx_file.with_suffix(".json").read_text())
    assert sidecar["heatmap"]["grid"] == [16, 4] and "cell_distances" in sidecar["outputs"]
    by_backend = {}
    for backend, overrides in {
        "pytorch": [f"inference.checkpoint={tiny_grid_model['checkpoint']}"],
        "onnxruntime": ["inference.backend=onnxruntime", f"inference.onnx_file={onnx_file}"],
    }.items():
        out = results / f"inference_{backend}"
        assert run_action(["inference", "-e", spec, f"inference.results_dir={out}", *overrides]) == 0
        by_backend[backend] = load_maps(out)[0]
    np.testing.assert_allclose(by_backend["onnxruntime"], by_backend["pytorch"], rtol=2e-3, atol=1e-4)
    from tao_siamese_oi.artifacts.crypto import decrypt

    assert decrypt(onnx_file.read_bytes(), TINY_KEY, onnx_file)  # the export is still encrypted at rest


def test_a_model_without_a_cell_map_says_so_when_asked(tiny_model, tmp_path, caplog):
    caplog.set_level("INFO")
    out = tmp_path / "evaluate"
    argv = ["evaluate", "-e", str(tiny_model["spec"]), f"evaluate.checkpoint={tiny_model['checkpoint']}"]
    assert run_action([*argv, f"evaluate.results_dir={out}", "evaluate.heatmaps=true"]) == 0
    lines = [r.getMessage() for r in caplog.records if "has no cell map" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("evaluate.heatmaps: Siamese_3 has no cell map")
    assert not (out / "heatmaps.npz").exists()
    assert "hotspot_light" not in pd.read_csv(out / "evaluate.csv").columns


def test_several_processes_give_the_maps_one_gives(tiny_grid_model, tmp_path):
    import subprocess

    from tests.conftest import cli

    spec, checkpoint = str(tiny_grid_model["spec"]), f"evaluate.checkpoint={tiny_grid_model['checkpoint']}"
    maps = {}
    for processes in (1, 2):
        out = tmp_path / f"evaluate_{processes}"
        argv = ["evaluate", "-e", spec, checkpoint, f"evaluate.results_dir={out}", f"evaluate.num_gpus={processes}"]
        done = subprocess.run([cli("optical_inspection"), *argv], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        maps[processes] = load_maps(out)[0]
    np.testing.assert_allclose(maps[2], maps[1], rtol=2e-3, atol=1e-4)  # rows back in CSV order, maps with them
