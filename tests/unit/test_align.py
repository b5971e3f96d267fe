"""Registration of an input to its golden: a known shift is recovered and undone; blank crops are left alone."""

import numpy as np
import pytest
import torch
from PIL import Image

from tao_siamese_oi.config import load_config
from tao_siamese_oi.data.align import estimate_shift, shift_onto
from tao_siamese_oi.data.dataset import PairDataset
from tao_siamese_oi.data.pairs import read_pairs


def board(size=160, seed=0) -> np.ndarray:
    """A PCB-like binary pattern: random copper tracks and pads on a dark board."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), np.uint8)
    for _ in range(14):
        y, x = rng.integers(0, size - 20, 2)
        if rng.random() < 0.5:
            img[y : y + 4, x : x + rng.integers(20, 80)] = 255
        else:
            img[y : y + rng.integers(20, 80), x : x + 4] = 255
        cy, cx = rng.integers(5, size - 5, 2)
        img[cy - 3 : cy + 3, cx - 3 : cx + 3] = 255
    return img


def crop(img, y, x, size=64):
    return img[y : y + size, x : x + size]


@pytest.mark.parametrize("dy,dx", [(0, 0), (3, -5), (-8, 8), (1, 7), (-2, 0)])
def test_a_known_shift_is_recovered_and_undone(dy, dx):
    img = board()
    golden = crop(img, 40, 40)
    moved = crop(img, 40 - dy, 40 - dx)  # moved[y, x] = golden[y - dy, x - dx]
    assert estimate_shift(moved, golden, max_shift=8) == (dy, dx)
    aligned = shift_onto(moved, golden, dy, dx)
    np.testing.assert_array_equal(aligned, golden)  # the uncovered strip is the golden's; the rest the input's
    assert moved.shape == golden.shape


def test_a_defect_is_kept_and_shifts_beyond_max_shift_are_not_searched():
    img = board(seed=1)
    golden = crop(img, 40, 40)
    moved = crop(img, 36, 43).copy()  # shift (4, -3)
    moved[30:34, 30:34] = 255 - moved[30:34, 30:34]  # a small defect in the middle
    dy, dx = estimate_shift(moved, golden, max_shift=8)
    assert (dy, dx) == (4, -3)
    diff = np.abs(shift_onto(moved, golden, dy, dx).astype(int) - golden)
    assert diff.sum() == 16 * 255 and diff[26:30, 33:37].all()  # only the defect remains, moved with the input
    assert estimate_shift(moved, golden, max_shift=2) != (4, -3)


def test_blank_crops_and_stacks_of_lights():
    flat = np.full((64, 64), 90, np.uint8)
    assert estimate_shift(flat, flat, 8) == (0, 0)  # nothing to register on
    img = board(seed=2)
    lights = np.stack([crop(img, 40, 40), 255 - crop(img, 40, 40)])
    moved = np.stack([crop(img, 42, 35), 255 - crop(img, 42, 35)])  # (dy, dx) = (-2, 5) on both lights
    assert estimate_shift(moved, lights, 8) == (-2, 5)


def test_the_dataset_registers_inputs_when_enabled(tmp_path):
    img = board(seed=3)
    for side, (y, x) in (("in", (43, 38)), ("gold", (40, 40))):
        (tmp_path / "img" / side).mkdir(parents=True)
        Image.fromarray(crop(img, y, x)).convert("RGB").save(tmp_path / "img" / side / "C1.png")
    csv = tmp_path / "pairs.csv"
    csv.write_text("input_path,golden_path,object_name,label\nin,gold,C1,PASS\n")
    base = ["dataset.num_input=1", "dataset.input_map=null", "dataset.image_ext=.png"]
    base += ["dataset.image_height=64", "dataset.image_width=64"]
    for enable in (False, True):
        cfg = load_config(None, [*base, f"dataset.alignment.enable={str(enable).lower()}"]).dataset
        for load_goldens in (True, False):
            data = PairDataset(read_pairs(csv), tmp_path / "img", cfg, load_goldens=load_goldens)
            image, _, _, _ = data[0]
            golden = torch.from_numpy(data.load_golden(data.golden_keys(0)[0]))
            assert torch.equal(image, golden) == enable, (enable, load_goldens)


def test_input_side_augmentation_leaves_the_golden_untouched(tmp_path):
    img = board(seed=4)
    for side in ("in", "gold"):
        (tmp_path / "img" / side).mkdir(parents=True)
        Image.fromarray(crop(img, 40, 40)).convert("RGB").save(tmp_path / "img" / side / "C1.png")
    csv = tmp_path / "pairs.csv"
    csv.write_text("input_path,golden_path,object_name,label\nin,gold,C1,PASS\n")
    base = ["dataset.num_input=1", "dataset.input_map=null", "dataset.image_ext=.png"]
    base += ["dataset.image_height=64", "dataset.image_width=64"]
    cfg = load_config(
        None, [*base, "dataset.augmentation_config.input_shift=4", "dataset.augmentation_config.input_intensity=0.3"]
    ).dataset
    original = torch.from_numpy(crop(img, 40, 40).copy())
    training = PairDataset(read_pairs(csv), tmp_path / "img", cfg, augment=True)
    torch.manual_seed(0)
    changed = 0
    for _ in range(20):
        image, goldens, label, _ = training[0]
        assert torch.equal(goldens[0, 0], original)  # the golden as stored, every draw
        changed += not torch.equal(image[0], original)
        assert label == 0  # still a good part
    assert changed >= 15
    scored = PairDataset(read_pairs(csv), tmp_path / "img", cfg, augment=False)  # evaluation: nothing changes
    assert torch.equal(scored[0][0][0], original)
    aligned = load_config(None, [*base, "dataset.augmentation_config.input_shift=4", "dataset.alignment.enable=true"])
    training = PairDataset(read_pairs(csv), tmp_path / "img", aligned.dataset, augment=True)
    for _ in range(10):
        image, goldens, _, _ = training[0]
        assert torch.equal(image, goldens[0])  # registration undoes the training shift (golden fills the strip)


def test_line_width_augmentation_erodes_or_dilates_the_input_alone():
    from tao_siamese_oi.config import load_config
    from tao_siamese_oi.data.augment import InputSideAugmenter

    cfg = load_config(None, ["dataset.augmentation_config.input_line_width=1.0"]).dataset.augmentation_config
    augmenter = InputSideAugmenter(cfg)
    widths = set()
    rng = np.random.default_rng(0)
    for _ in range(20):
        image = np.zeros((3, 16, 16), np.uint8)
        image[:, :, 6:9] = 255  # a 3 px track
        augmenter.apply([image], rng)
        widths.add(int((image[0, 8] == 255).sum()))
    assert widths == {1, 5}  # eroded to 1 px or dilated to 5 px, never left alone at probability 1


def test_parts_of_a_crop_that_moved_differently_are_registered_each():
    from tao_siamese_oi.config.schema import AlignmentConfig
    from tao_siamese_oi.data.align import align_to_golden

    img = board(seed=5)
    golden = np.stack([crop(img, 40, 40)] * 3)
    moved = np.stack([crop(img, 38, 45)] * 3)  # left half: shift (2, -5)
    moved[:, :, 32:] = crop(img, 37, 43)[None, :, 32:]  # right half: shift (3, -3)
    one_shift = moved.copy()
    align_to_golden(one_shift, golden, lambda chw: [chw], AlignmentConfig(enable=True, max_shift=8))
    per_tile = moved.copy()
    align_to_golden(per_tile, golden, lambda chw: [chw], AlignmentConfig(enable=True, max_shift=8, tiles=2))
    residual = np.abs(per_tile.astype(int) - golden)
    assert np.abs(one_shift.astype(int) - golden).mean() > 10 * residual.mean()
    assert residual[:, :, :31].sum() == 0 and residual[:, :, 35:].sum() == 0  # only the seam between the halves


def test_checkpoints_record_the_registration_and_a_spec_that_differs_is_refused():
    from tao_siamese_oi.data.align import alignment_record, check_alignment
    from tao_siamese_oi.engine.module import SiameseModule
    from tao_siamese_oi.errors import ConfigError

    overrides = ["dataset.alignment.enable=true", "dataset.alignment.max_shift=12", "dataset.image_height=16"]
    aligned = load_config(None, [*overrides, "dataset.image_width=16", "model.model_type=Siamese_Grid"])
    plain = load_config(None, ["dataset.image_height=16", "dataset.image_width=16", "model.model_type=Siamese_Grid"])
    checkpoint: dict = {}
    SiameseModule.from_config(aligned).on_save_checkpoint(checkpoint)
    assert checkpoint["alignment"] == {"max_shift": 12, "tiles": 1, "tile_shift": 3}
    assert "alignment" not in SiameseModule.from_config(plain).hparams  # not a constructor argument (TAO loads ours)
    check_alignment(checkpoint["alignment"], aligned.dataset, "m.pth")  # the same: accepted
    check_alignment(None, plain.dataset, "tao.pth")  # TAO's checkpoints record none: accepted without it
    with pytest.raises(ConfigError, match=r"m\.pth was trained with registration .* dataset\.alignment\.max_shift=12"):
        check_alignment(checkpoint["alignment"], plain.dataset, "m.pth")
    with pytest.raises(ConfigError, match=r"tao\.pth was trained without registration.*enable=false"):
        check_alignment(None, aligned.dataset, "tao.pth")
    assert alignment_record(plain.dataset) is None


@pytest.mark.parametrize("enable", [False, True])
def test_the_microservice_registers_the_input_as_training_did(tmp_path, enable):
    import base64
    import io

    import yaml

    from tao_siamese_oi.deploy.microservice import predictor
    from tao_siamese_oi.model.networks import create_model

    torch.manual_seed(0)
    network = create_model("Siamese_Grid", input_shape=(3, 64, 64), embedding_size=4)
    (tmp_path / "train").mkdir()
    torch.save(
        {"state_dict": {f"model.{k}": v for k, v in network.state_dict().items()}, "grid_pool": "max"},
        tmp_path / "train" / "oi_model_latest.pth",
    )
    spec = {
        "results_dir": str(tmp_path),
        "model": {"model_type": "Siamese_Grid", "embedding_vectors": 4},
        "dataset": {
            "num_input": 1,
            "input_map": None,
            "image_height": 64,
            "image_width": 64,
            "alignment": {"enable": enable},
        },
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    predict = predictor(tmp_path)

    def uri(array):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()

    img = board(seed=6)
    golden, moved = uri(crop(img, 40, 40)), uri(crop(img, 43, 36))
    same = predict({"input": [golden, golden]})
    shifted = predict({"input": [moved, golden]})
    assert same["score"] < 1e-3 and shifted["golden_cached"]
    assert (shifted["score"] < 1e-3) == enable  # registered: the moved crop is the golden again
    cells = np.array(shifted["heatmap"]["cell_distances"])  # Siamese_Grid: the answer carries the map
    assert cells.shape == (4, 4) and np.sqrt((cells**2).sum()) == pytest.approx(shifted["score"], rel=1e-4)
    assert shifted["heatmap"]["hotspot"]["light"] == "" and 0 < shifted["heatmap"]["hotspot"]["x"] < 1


def test_a_warp_bends_smoothly_within_its_amplitude():
    from tao_siamese_oi.data.augment import smooth_field, warped

    rng = np.random.default_rng(0)
    image = np.stack([crop(board(), 40, 40)] * 3)
    field = smooth_field((64, 64), 2.0, rng)
    assert np.abs(field).max() <= 2.0 and np.abs(field).max() > 1.0
    assert np.abs(np.diff(field, axis=-1)).max() < 0.2  # neighbours move together: a bend, not noise
    np.testing.assert_array_equal(warped(image, np.zeros_like(field)), image)
    constant = np.zeros_like(field)
    constant[0], constant[1] = 3, -2  # a constant field is a plain shift
    np.testing.assert_array_equal(warped(image, constant)[:, :61, 2:], image[:, 3:, :62])


def test_tolerance_forgives_an_edge_a_pixel_off_but_keeps_a_speck():
    from tao_siamese_oi.data.align import tolerate_misfit

    golden = np.zeros((3, 32, 32), np.uint8)
    golden[:, :, 10:16] = 255  # a track, 6 px wide
    wider = np.zeros_like(golden)
    wider[:, :, 9:17] = 255  # the same track 1 px wider on each side: another design's etching
    speck = wider.copy()
    speck[:, 24:26, 24:26] = 255  # 2 x 2 px of copper where the golden has none within reach
    hole = wider.copy()
    hole[:, 20:22, 12:14] = 0  # a hole in the middle of the track
    for image in (wider, speck, hole):
        tolerate_misfit(image, golden, reach=1)
    assert (wider == golden).all()  # the edge misfit leaves no difference
    assert (speck != golden).sum() == 3 * 4 and (hole != golden).sum() == 3 * 4  # defects stay whole
    beyond = np.zeros_like(golden)
    beyond[:, :, 8:18] = 255  # 2 px off: beyond a reach of 1, the outer pixel of each edge remains
    tolerate_misfit(beyond, golden, reach=1)
    assert (beyond != golden).sum() == 3 * 2 * 32 and (beyond[:, :, [8, 17]] == 255).all()
