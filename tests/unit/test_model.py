import math

import numpy as np
import pytest
import torch

from tao_siamese_oi.errors import ConfigError
from tao_siamese_oi.model.loss import contrastive_loss
from tao_siamese_oi.model.metrics import inspection_metrics, tao_test_kpis
from tao_siamese_oi.model.networks import available_models, create_model, pair_distance


def count(name, shape, e=5):
    with torch.device("meta"):  # no memory for the 269 M-parameter case
        model = create_model(name, input_shape=shape, embedding_size=e)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("lights, side", [(4, 128), (4, 100), (1, 64), (2, 24)])
def test_siamese_3_parameter_count_matches_tao(lights, side):
    d = 8 * lights * side * side
    assert count("Siamese_3", (3, lights * side, side)) == 512 * d + 266_248 + 513 * 5


def test_siamese_3_at_four_128_lights_is_the_269m_tao_model():
    assert round(count("Siamese_3", (3, 512, 128)) / 1e6, 1) == 268.7
    assert round(count("Siamese_3", (3, 400, 100)) / 1e6, 1) == 164.1


@pytest.mark.parametrize("name", ["Siamese_1", "Siamese"])
def test_siamese_1_parameter_count_matches_tao(name):
    d = 8 * 4 * 32 * 32
    assert count(name, (3, 128, 32), e=7) == 500 * d + 252_032 + 501 * 7


def test_tower_has_1032_parameters_and_keeps_resolution():
    model = create_model("Siamese_3", input_shape=(3, 8, 6), embedding_size=3)
    assert sum(p.numel() for p in model.cnn1.parameters()) == 1032
    assert model.cnn1(torch.zeros(2, 3, 8, 6)).shape == (2, 8, 8, 6)
    out_1, out_2 = model.eval()(torch.randn(2, 3, 8, 6), torch.randn(2, 3, 8, 6))
    assert out_1.shape == out_2.shape == (2, 3)


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="Siamese_1, Siamese_3"):
        create_model("Siamese_9", input_shape=(3, 4, 4), embedding_size=2)
    assert {"Siamese_1", "Siamese_3"} <= set(available_models())


def test_contrastive_loss_by_hand():
    d = torch.tensor([0.5, 1.0, 3.0, 0.2])
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    # PASS: d^2 ; FAIL: max(0, 2 - d)^2
    expected = (0.25 + 1.0 + 0.0 + 0.04) / 4
    assert contrastive_loss(d, y, margin=2.0).item() == pytest.approx(expected)


def test_pair_distance_is_euclidean():
    a, b = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])
    assert pair_distance(a, b).item() == pytest.approx(5.0, abs=1e-5)


def test_metrics_by_hand():
    scores = np.array([0.1, 0.5, 2.5, 3.0, 1.0, 2.1, 0.3, 0.4])
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 0])  # 5 PASS, 3 FAIL
    m = inspection_metrics(scores, labels, threshold=2.0)
    # flagged: 2.5 (PASS -> FP), 3.0 (TP), 2.1 (TP); 1.0 FAIL missed (FN)
    assert (m["num_pass"], m["num_fail"]) == (5, 3)
    assert m["total_accuracy"] == pytest.approx(100 * 6 / 8)
    assert m["defect_accuracy"] == m["recall"] == pytest.approx(100 * 2 / 3)
    assert m["false_alarm"] == m["fpr"] == pytest.approx(100 * 1 / 5)  # TAO 7.3: over PASS pairs
    assert m["false_negative"] == pytest.approx(100 * 1 / 3)  # TAO 7.3: over FAIL pairs
    assert "FP / PASS pairs" in m["formulas"]["false_alarm"]
    kpis = tao_test_kpis(m)
    assert kpis == {
        "test_acc": pytest.approx(75.0),
        "test_fpr": pytest.approx(20.0),
        "test_fnr": pytest.approx(100 / 3),
        "defect_acc": pytest.approx(200 / 3),
    }
    # AUROC = share of (FAIL, PASS) pairs ranked right: 3.0 beats 5 PASS, 1.0 and 2.1 beat 4 each (not 2.5).
    assert m["auroc"] == pytest.approx(13 / 15)


def test_threshold_is_strict():
    m = inspection_metrics([2.0, 2.0], [0, 1], threshold=2.0)
    assert m["fpr"] == 0.0 and m["recall"] == 0.0


def test_tao_rates_of_an_absent_class_are_undefined_and_left_out_of_the_kpis():
    m = inspection_metrics([0.5, 3.0, 1.0], [0, 0, 0], threshold=2.0)  # 3 PASS, one flagged, no FAIL
    assert m["false_alarm"] == pytest.approx(100 / 3) and m["false_negative"] is None
    assert set(tao_test_kpis(m)) == {"test_acc", "test_fpr"}


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1]])
def test_single_class_sets_report_the_rate_they_can(labels):
    m = inspection_metrics([0.5, 2.5, 3.0], labels, threshold=2.0)
    assert m["auroc"] is None
    if labels[0] == 0:  # evaluation without FAIL rows: FPR only
        assert m["fpr"] == pytest.approx(200 / 3) and m["recall"] is None
    else:
        assert m["recall"] == pytest.approx(200 / 3) and m["fpr"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in m.values())


def test_grid_model_is_compact_and_size_agnostic():
    from tao_siamese_oi.model.networks import create_model, embedding_grid

    small = create_model("Siamese_Grid", input_shape=(3, 64, 64), embedding_size=5)
    large = create_model("Siamese_Grid", input_shape=(3, 96, 96), embedding_size=5)
    # the count docs/models.md states; the same at every image size
    assert sum(p.numel() for p in small.parameters()) == sum(p.numel() for p in large.parameters()) == 32_741
    assert sum(v.numel() for v in small.state_dict().values() if v.is_floating_point()) == 32_981
    large.load_state_dict(small.state_dict())  # no weight depends on the image size
    small.eval(), large.eval()
    image = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert small.embed(image).shape == (2, 4 * 4 * 5)  # 4 x 4 cells x E
        bigger = torch.nn.functional.interpolate(image, size=(96, 96), mode="bilinear", align_corners=False)
        assert large.embed(bigger).shape == (2, 80)
    assert embedding_grid((3, 4 * 24, 24)) == (16, 4)  # four lights stacked: 4 x 4 cells each
    assert embedding_grid((3, 48, 96)) == (4, 8)


@pytest.mark.parametrize("height, width", [(12, 3), (8, 8), (7, 5)])
@pytest.mark.parametrize("mode", ["avg", "max"])
def test_grid_pool_equals_adaptive_pooling(height, width, mode):
    from tao_siamese_oi.model.networks import GridPool

    x = torch.randn(2, 5, height, width)
    adaptive = getattr(torch.nn.functional, f"adaptive_{mode}_pool2d")
    assert torch.allclose(GridPool((16, 4), mode)(x), adaptive(x, (16, 4)), atol=1e-6)


def test_max_pooling_keeps_a_small_difference_that_averaging_dilutes():
    from tao_siamese_oi.model.networks import GridPool

    golden = torch.zeros(1, 1, 8, 8)
    defect = golden.clone()
    defect[..., 1, 1] = 1.0  # one feature pixel of a 2 x 2 cell
    for mode, expected in (("max", 1.0), ("avg", 0.25)):
        pool = GridPool((4, 4), mode)
        assert (pool(defect) - pool(golden)).abs().max().item() == pytest.approx(expected)


def test_grid_model_exports_to_onnx_when_the_grid_does_not_divide_the_map(tmp_path):
    from tao_siamese_oi.deploy.onnx_export import export_onnx, parity
    from tao_siamese_oi.model.networks import create_model

    for pool in ("max", "avg"):  # map 12 x 3 -> 16 x 4
        model = create_model("Siamese_Grid", input_shape=(3, 96, 24), embedding_size=5, grid_pool=pool).eval()
        x = torch.randn(3, 3, 96, 24)
        path = tmp_path / f"{pool}.onnx"
        export_onnx(model, (x[:1], x[:1]), path, opset=17, dynamic_batch=True, constant_folding=True)
        assert parity(model, path, (x, x.flip(0))) < 1e-4


def test_grid_distance_is_cell_by_cell():
    """A change confined to one corner moves only that corner's cells of the embedding."""
    from tao_siamese_oi.model.networks import create_model

    model = create_model("Siamese_Grid", input_shape=(3, 64, 64), embedding_size=5).eval()
    image = torch.rand(1, 3, 64, 64)
    changed = image.clone()
    changed[:, :, :12, :12] = 1.0  # top-left 12 x 12 px
    with torch.no_grad():
        diff = (model.embed(image) - model.embed(changed)).abs().view(5, 4, 4).sum(0)
    assert diff[0, 0] > 0 and diff[2:, 2:].sum() == 0  # far cells see none of it (receptive field < 32 px)


def test_backbone_must_match_the_model_type():
    from tao_siamese_oi.config import load_config
    from tao_siamese_oi.errors import ConfigError
    from tao_siamese_oi.model.networks import check_backbone

    assert load_config(None, []).model.model_type == "Siamese_Grid"  # the new default
    check_backbone("Siamese_3", "custom")  # TAO specs say this
    check_backbone("Siamese_Grid", None)
    with pytest.raises(ConfigError, match="model_backbone 'custom' does not go with model.model_type 'Siamese_Grid'"):
        check_backbone("Siamese_Grid", "custom")


def test_a_tao_style_checkpoint_loads_into_siamese_3(tmp_path):
    """TAO saves Lightning checkpoints whose network weights are prefixed ``model.`` (cnn1.*, fc1.*)."""
    from tao_siamese_oi.artifacts.checkpoint import load_network
    from tao_siamese_oi.config import load_config
    from tao_siamese_oi.model.networks import create_model

    shape = (3, 4 * 24, 24)
    tao_net = create_model("Siamese_3", input_shape=shape, embedding_size=5)
    state = {f"model.{k}": v for k, v in tao_net.state_dict().items()}
    assert any(k.startswith("model.cnn1.") for k in state) and any(k.startswith("model.fc1.") for k in state)
    path = tmp_path / "tao.pth"
    torch.save({"state_dict": state, "epoch": 9, "pytorch-lightning_version": "2.2.0"}, path)
    cfg = load_config(None, ["model.model_type=Siamese_3", "dataset.image_width=24", "dataset.image_height=24"])
    network, calibration = load_network(cfg, path)
    for key, value in tao_net.state_dict().items():
        assert torch.equal(network.state_dict()[key], value), key
    assert calibration is None  # TAO stores no threshold: evaluate falls back to the margin
    assert not network.training


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_learning_rate_schedule(schedule):
    from types import SimpleNamespace

    from tao_siamese_oi.engine.module import SiameseModule

    optim = {"type": "Adam", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "lr_schedule": schedule}
    module = SiameseModule("Siamese_Grid", 2, (3, 16, 16), 2.0, optim=optim)
    module.__dict__["_trainer"] = SimpleNamespace(max_epochs=4)  # what Lightning sets before asking
    configured = module.configure_optimizers()
    if schedule == "constant":
        assert isinstance(configured, torch.optim.Adam)
        return
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert configured["lr_scheduler"]["interval"] == "epoch"
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.01) and rates == sorted(rates, reverse=True)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # decayed to 0 at the last epoch


def test_grid_checkpoints_record_their_pooling_and_older_ones_are_avg(tmp_path):
    from tao_siamese_oi.artifacts.checkpoint import load_network
    from tao_siamese_oi.config import load_config
    from tao_siamese_oi.engine.module import SiameseModule

    base = ["model.model_type=Siamese_Grid", "dataset.image_height=32", "dataset.image_width=32"]
    module = SiameseModule.from_config(load_config(None, base))
    checkpoint: dict = {"state_dict": {f"model.{k}": v for k, v in module.model.state_dict().items()}}
    torch.save(checkpoint, tmp_path / "older.pth")  # made before the pooling was recorded: avg
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["grid_pool"] == "max"  # the default now
    torch.save(checkpoint, tmp_path / "new.pth")
    network, _ = load_network(load_config(None, base), tmp_path / "new.pth")
    assert network.pool.mode == "max"
    with pytest.raises(
        ConfigError, match=r"older\.pth was trained with model\.grid_pool=avg .* set model\.grid_pool=avg"
    ):
        load_network(load_config(None, base), tmp_path / "older.pth")
    network, _ = load_network(load_config(None, [*base, "model.grid_pool=avg"]), tmp_path / "older.pth")
    assert network.pool.mode == "avg"
