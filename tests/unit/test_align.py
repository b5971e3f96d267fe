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
