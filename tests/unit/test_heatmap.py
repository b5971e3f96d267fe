"""Siamese_Grid's cell map: local (a change in one corner lights only that corner's cells), exact (the cells
square-sum to the score), mapped to lights correctly, and the same from the exported graph."""

import numpy as np
import pytest
import torch

from tao_siamese_oi.deploy.onnx_export import HEATMAP_OUTPUT, deployment_model, export_onnx, onnxruntime_outputs
from tao_siamese_oi.model.heatmap import PAIRWISE_EPS, HeatmapGeometry, cell_distances, heatmap_geometry
from tao_siamese_oi.model.networks import create_model, pair_distance
from tao_siamese_oi.model.registry import embedding_grid


def _network(shape=(3, 64, 64)):
    torch.manual_seed(0)
    network = create_model("Siamese_Grid", input_shape=shape, embedding_size=5)
    for module in network.modules():  # non-trivial batch-norm statistics, as a trained network has
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return network.eval()


def _map(network, image, golden, grid):
    with torch.no_grad():
        out_1, out_2 = network(image, golden)
    return cell_distances((out_1 - out_2 + PAIRWISE_EPS).numpy(), grid)[0], pair_distance(out_1, out_2)[0].item()


@pytest.mark.parametrize("corner", ["top_left", "bottom_right"])
def test_a_change_in_one_corner_lights_only_that_corners_cells(corner):
    network = _network()
    golden = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    image = golden.clone()
    rows = cols = slice(0, 6) if corner == "top_left" else slice(58, 64)
    image[..., rows, cols] = 1.0 - image[..., rows, cols]
    heatmap, _ = _map(network, image, golden, (4, 4))
    lit = heatmap > 1e-4
    near = np.zeros((4, 4), bool)
    if corner == "top_left":
        near[:2, :2] = True
        assert heatmap[0, 0] == heatmap.max()
    else:
        near[2:, 2:] = True
        assert heatmap[3, 3] == heatmap.max()
    assert lit.any() and not (lit & ~near).any(), heatmap  # receptive field ~28 px: at most the neighbours


def test_the_cells_square_sum_to_the_score():
    network = _network((3, 256, 64))  # four lights stacked: 16 x 4 cells
    generator = torch.Generator().manual_seed(2)
    image, golden = torch.rand(1, 3, 256, 64, generator=generator), torch.rand(1, 3, 256, 64, generator=generator)
    heatmap, score = _map(network, image, golden, embedding_grid((3, 256, 64)))
    assert heatmap.shape == (16, 4)
    assert float(np.sqrt((heatmap.astype(np.float64) ** 2).sum())) == pytest.approx(score, rel=1e-5)


def test_hotspots_name_the_light_and_where_in_it():
    lights = ("LowAngleLight", "SolderLight", "UniformLight", "WhiteLight")
    linear = HeatmapGeometry((16, 4), lights, light_rows=4, light_cols=1)
    heatmap = np.zeros((16, 4), np.float32)
    heatmap[9, 2] = 1.0  # the third light (rows 8..11), second cell row of it, third column
    assert linear.hotspot(heatmap) == ("UniformLight", 0.625, 0.375)
    assert linear.cell_box(9, 2) == pytest.approx((0.5, 0.25, 0.75, 0.5))
    grid = HeatmapGeometry((4, 4), lights, light_rows=2, light_cols=2)  # a 2 x 2 grid of lights: 2 x 2 cells each
    heatmap = np.zeros((4, 4), np.float32)
    heatmap[1, 3] = 1.0
    assert grid.hotspot(heatmap) == ("SolderLight", 0.75, 0.75)
    described = grid.describe()["lights"]
    assert described[3] == {"light": "WhiteLight", "cell_rows": [2, 4], "cell_cols": [2, 4]}
    assert grid.light_cells(heatmap, 1).tolist() == [[0.0, 0.0], [0.0, 1.0]]


def test_only_siamese_grid_has_a_map():
    from tao_siamese_oi.data.transforms import Layout

    layout = Layout(("A", "B"), 32, 32, 2, 1)
    assert heatmap_geometry("Siamese_3", layout) is None and heatmap_geometry("Siamese", layout) is None
    assert heatmap_geometry("Siamese_Grid", layout).grid == (8, 4)


def test_the_exported_graph_gives_the_same_map(tmp_path):
    network = _network((3, 128, 64))
    grid = embedding_grid((3, 128, 64))
    model = deployment_model(network, None, grid).eval()
    generator = torch.Generator().manual_seed(3)
    inputs = (torch.rand(3, 3, 128, 64, generator=generator), torch.rand(3, 3, 128, 64, generator=generator))
    path = tmp_path / "m.onnx"
    export_onnx(model, (inputs[0][:1], inputs[1][:1]), path, opset=17, dynamic_batch=True, constant_folding=False)
    out_1, out_2, cells = onnxruntime_outputs(
        path, (inputs[0].numpy(), inputs[1].numpy()), ["output_1", "output_2", HEATMAP_OUTPUT]
    )
    assert cells.shape == (3, *grid)
    np.testing.assert_allclose(cells, cell_distances(out_1 - out_2 + PAIRWISE_EPS, grid), rtol=1e-4, atol=1e-6)
