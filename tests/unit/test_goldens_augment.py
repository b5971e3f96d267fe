"""Multi-golden selection and paired augmentation."""

import numpy as np
import pytest
import torch
from PIL import Image

from tao_siamese_oi.config import load_config
from tao_siamese_oi.data.augment import AugmentParams, PairAugmenter
from tao_siamese_oi.data.dataset import PairDataset
from tao_siamese_oi.data.goldens import GoldenIndex
from tao_siamese_oi.data.pairs import read_pairs
from tao_siamese_oi.engine.module import SiameseModule
from tao_siamese_oi.errors import ConfigError, DataError

LIGHTS = ("SolderLight", "WhiteLight")


def write_set(folder, stem, value=100, lights=LIGHTS):
    folder.mkdir(parents=True, exist_ok=True)
    for light in lights:
        Image.new("RGB", (8, 8), (value, value, value)).save(folder / f"{stem}_{light}.png")


def test_golden_candidates_need_every_light(tmp_path):
    for stem in ["G1", "G2", "G3"]:
        write_set(tmp_path / "gold", stem)
    (tmp_path / "gold" / "G3_WhiteLight.png").unlink()
    (tmp_path / "gold" / "notes.txt").write_text("x")
    index = GoldenIndex(tmp_path, LIGHTS, ".png", num_golden=2)
    assert index.candidates("gold") == ["G1", "G2"]


def test_own_golden_first_then_a_seeded_draw_that_never_changes(tmp_path):
    for stem in ["C1", "A", "B", "D", "E"]:
        write_set(tmp_path / "gold", stem)
    index = GoldenIndex(tmp_path, LIGHTS, ".png", num_golden=3, seed=5)
    first = index.for_row(7, "gold", "C1")
    assert first[0] == "C1" and len(set(first)) == 3 and set(first) <= {"C1", "A", "B", "D", "E"}
    assert [index.for_row(7, "gold", "C1") for _ in range(3)] == [first] * 3
    assert GoldenIndex(tmp_path, LIGHTS, ".png", num_golden=3, seed=5).for_row(7, "gold", "C1") == first
    draws = {tuple(index.for_row(row, "gold", "C1")) for row in range(20)}
    assert len(draws) > 1  # different rows get different companions


def test_too_few_goldens_repeat_and_an_empty_folder_is_an_error(tmp_path):
    write_set(tmp_path / "gold", "C1")
    index = GoldenIndex(tmp_path, LIGHTS, ".png", num_golden=3)
    assert index.for_row(0, "gold", "C1") == ["C1", "C1", "C1"]
    with pytest.raises(DataError, match="has no complete image set"):
        index.for_row(0, "empty", "C1")


def test_single_golden_is_the_rows_own(tmp_path):
    assert GoldenIndex(tmp_path, LIGHTS, ".png", num_golden=1).for_row(0, "anything", "C7") == ["C7"]


def test_score_is_the_minimum_distance_over_goldens():
    module = SiameseModule("Siamese_1", 3, (3, 4, 4), margin=2.0).eval()
    image = torch.randn(2, 3, 4, 4)
    goldens = torch.stack([torch.randn(2, 3, 4, 4), image + 0.0, torch.randn(2, 3, 4, 4)], dim=1)
    with torch.no_grad():
        score = module(image, goldens)
        each = torch.stack([module(image, goldens[:, g : g + 1]) for g in range(3)], dim=1)
    torch.testing.assert_close(score, each.min(1).values)
    assert torch.allclose(score, torch.zeros(2), atol=1e-2)  # the identical golden wins


def dataset_with_goldens(tmp_path, overrides=()):
    write_set(tmp_path / "img" / "in", "C1", 50)
    for stem, value in [("C1", 60), ("A", 70), ("B", 80)]:
        write_set(tmp_path / "img" / "gold", stem, value)
    csv = tmp_path / "pairs.csv"
    csv.write_text("input_path,golden_path,object_name,label\nin,gold,C1,PASS\n")
    cfg = load_config(
        None,
        [
            "dataset.num_input=2",
            "dataset.input_map={SolderLight: 0, WhiteLight: 1}",
            "dataset.image_ext=.png",
            "dataset.image_height=8",
            "dataset.image_width=8",
            *overrides,
        ],
    )
    return cfg, csv


def test_dataset_items_carry_every_golden(tmp_path):
    cfg, csv = dataset_with_goldens(tmp_path, ["dataset.num_golden=3"])
    image, goldens, label, index = PairDataset(read_pairs(csv), tmp_path / "img", cfg.dataset)[0]
    assert image.shape == (3, 16, 8) and image.dtype == torch.uint8
    assert goldens.shape == (3, 3, 16, 8)
    assert goldens[0, 0, 0, 0] == 60  # own golden first
    assert sorted(int(g[0, 0, 0]) for g in goldens[1:]) == [70, 80]


def gradient(h=6, w=8):
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.arange(w, dtype=np.uint8)[None, :] * 30
    img[..., 1] = np.arange(h, dtype=np.uint8)[:, None] * 40
    return img


def test_flips_rotations_and_crops_keep_the_image_size():
    img = gradient()
    np.testing.assert_array_equal(AugmentParams(hflip=True).apply(img), img[:, ::-1])
    np.testing.assert_array_equal(AugmentParams(vflip=True).apply(img), img[::-1])
    np.testing.assert_array_equal(AugmentParams(angle=180).apply(img), img[::-1, ::-1])
    assert AugmentParams(angle=90).apply(img).shape == img.shape  # non-square: resized back
    assert AugmentParams(crop=(0.1, 0.1, 0.9, 0.9)).apply(img).shape == img.shape
    assert AugmentParams(color=(1.5, 1.0, 1.0, 0.0)).apply(img).mean() > img.mean()
    assert AugmentParams(blur=1.0).apply(img).std() < img.std()
    np.testing.assert_array_equal(AugmentParams().apply(img), img)


def aug_config(*overrides):
    base = ["dataset.augmentation_config.augment=true"]
    return load_config(None, base + [f"dataset.augmentation_config.{o}" for o in overrides]).dataset


def draw_many(aug_cfg, n=4000):
    augmenter = PairAugmenter(aug_cfg.augmentation_config)
    rng = np.random.default_rng(0)
    return [augmenter.draw(rng) for _ in range(n)]


def test_probabilities_are_honoured_not_inverted_and_crop_blur_are_optional():
    draws = draw_many(
        aug_config(
            "random_color.color_probability=0.1",
            "crop_probability=0.2",
            "blur_probability=0.3",
            "random_rotate.rotate_probability=0.4",
            "random_flip.hflip_probability=0.25",
        )
    )
    share = lambda pred: np.mean([pred(d) for d in draws])  # noqa: E731
    assert share(lambda d: d.color is not None) == pytest.approx(0.1, abs=0.02)  # TAO fires at 1 - p
    assert share(lambda d: d.crop is not None) == pytest.approx(0.2, abs=0.02)  # TAO: always
    assert share(lambda d: d.blur > 0) == pytest.approx(0.3, abs=0.02)  # TAO: always
    assert share(lambda d: d.angle != 0) == pytest.approx(0.4, abs=0.03)
    assert share(lambda d: d.hflip) == pytest.approx(0.25, abs=0.02)
    off = draw_many(aug_config("with_random_crop=false", "with_random_blur=false", "random_color.enable=false"))
    assert all(d.crop is None and d.blur == 0 and d.color is None for d in off)


def test_rotation_draws_from_every_angle_in_the_list():
    draws = draw_many(aug_config("random_rotate.rotate_probability=1.0", "random_rotate.angle_list=[5,10,15,20,25]"))
    assert {d.angle for d in draws} == {5, 10, 15, 20, 25}  # TAO uses only the first three


def test_bad_augmentation_options_are_config_errors():
    with pytest.raises(ConfigError, match="crop_scale"):
        PairAugmenter(aug_config("crop_scale=[0.9,0.5]").augmentation_config)
    with pytest.raises(ConfigError, match="angle_list is empty"):
        PairAugmenter(aug_config("random_rotate.angle_list=[]").augmentation_config)


def test_the_same_draw_hits_every_light_and_both_sides(tmp_path):
    cfg, csv = dataset_with_goldens(tmp_path, ["dataset.augmentation_config.augment=true"])
    # Identical, asymmetric input and golden, different per light: only one shared draw keeps them identical.
    for side in ("in", "gold"):
        for i, light in enumerate(LIGHTS):
            Image.fromarray(np.roll(gradient(8, 8), i, axis=0)).save(tmp_path / "img" / side / f"C1_{light}.png")
    plain = PairDataset(read_pairs(csv), tmp_path / "img", cfg.dataset)
    augmented = PairDataset(read_pairs(csv), tmp_path / "img", cfg.dataset, augment=True)
    assert plain.augmenter is None
    reference = plain[0][0]
    torch.manual_seed(0)
    changed = 0
    for _ in range(20):
        image, goldens, _, _ = augmented[0]
        torch.testing.assert_close(image, goldens[0])
        changed += not torch.equal(image, reference)
    assert changed >= 10
