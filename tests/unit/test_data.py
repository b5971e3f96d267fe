from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tao_siamese_oi.config import load_config
from tao_siamese_oi.data import transforms
from tao_siamese_oi.data.pairs import image_path, light_order, read_pairs
from tao_siamese_oi.data.sampler import build_train_sampler, fpratio_weights
from tao_siamese_oi.data.transforms import Normalizer, SideLoader, concat_lights, decode_resized, layout_from_config
from tao_siamese_oi.errors import ConfigError, DataError


def test_path_rule_with_lights_without_lights_and_absolute():
    assert image_path("/data", "input1", "C1", "SolderLight", ".jpg") == str(Path("/data/input1/C1_SolderLight.jpg"))
    assert image_path("/data", "input1", "C1", None, ".png") == str(Path("/data/input1/C1.png"))
    assert image_path("/data", "/abs/golden", "C1", "WhiteLight", ".jpg") == str(Path("/abs/golden/C1_WhiteLight.jpg"))


def test_lights_are_ordered_by_their_input_map_position():
    assert light_order({"WhiteLight": 1, "SolderLight": 0}, 2) == ["SolderLight", "WhiteLight"]
    assert light_order(None, 1) == [None]


@pytest.mark.parametrize(
    "input_map, num_input, message",
    [
        ({"A": 0, "B": 1}, 3, "num_input is 3 but dataset.input_map names 2"),
        ({"A": 0, "B": 2}, 2, r"values \[0, 2\] must be the positions 0..1"),
        (None, 4, "input_map is not set"),
    ],
)
def test_light_config_mismatches_are_config_errors(input_map, num_input, message):
    with pytest.raises(ConfigError, match=message):
        light_order(input_map, num_input)


def write_csv(tmp_path, text) -> Path:
    path = tmp_path / "pairs.csv"
    path.write_text(text)
    return path


def test_labels_pass_is_good_anything_else_is_a_defect_and_extra_columns_survive(tmp_path):
    path = write_csv(
        tmp_path,
        "input_path,golden_path,object_name,label,board\n"
        "a,g,001,PASS,b1\na,g,002,missing,b1\na,g,003, pass ,b2\na,g,004,FAIL,b2\n",
    )
    table = read_pairs(path)
    assert table.labels.tolist() == [0, 1, 0, 1]
    assert table.frame["object_name"].tolist() == ["001", "002", "003", "004"]  # kept as text
    assert table.frame["board"].tolist() == ["b1", "b1", "b2", "b2"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("input_path,golden_path,label\na,g,PASS\n", "lacks column.* object_name"),
        ("input_path,golden_path,object_name,label\n", "has a header but no rows"),
    ],
)
def test_bad_csvs_name_the_file_and_problem(tmp_path, text, message):
    with pytest.raises(DataError, match=message) as info:
        read_pairs(write_csv(tmp_path, text))
    assert "pairs.csv" in str(info.value)


def test_missing_csv(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_pairs(tmp_path / "nope.csv")


def light_images(n, h=2, w=3):
    return [np.full((h, w, 3), i, dtype=np.uint8) for i in range(n)]


def test_linear_concatenation_stacks_lights_along_height_in_order():
    cfg = load_config(None, ["dataset.image_height=2", "dataset.image_width=3"])
    layout = layout_from_config(cfg.dataset)
    out = concat_lights(light_images(4), layout)
    assert out.shape == layout.shape == (3, 8, 3)
    assert [out[0, 2 * i, 0] for i in range(4)] == [0, 1, 2, 3]
    assert out.dtype == np.uint8


def test_grid_concatenation_is_row_major():
    cfg = load_config(None, ["dataset.image_height=2", "dataset.image_width=3", "dataset.concat_type=grid"])
    layout = layout_from_config(cfg.dataset)
    out = concat_lights(light_images(4), layout)
    assert out.shape == layout.shape == (3, 4, 6)
    assert [out[0, 0, 0], out[0, 0, 3], out[0, 2, 0], out[0, 2, 3]] == [0, 1, 2, 3]


def test_grid_product_must_match_lights_checked_when_the_config_loads():
    with pytest.raises(ConfigError, match="x\\*y = 3\\*2 = 6 but there are 4 lights"):
        load_config(None, ["dataset.concat_type=grid", "dataset.grid_map.x=3"])


def two_light_config(tmp_path, extra=()):
    lights = {"SolderLight": 0, "WhiteLight": 1}
    (tmp_path / "in").mkdir(exist_ok=True)
    for name, value in [("SolderLight", 255), ("WhiteLight", 0)]:
        Image.new("RGB", (20, 10), (value, value, value)).save(tmp_path / "in" / f"C1_{name}.png")
    overrides = [
        "dataset.num_input=2",
        f"dataset.input_map={lights}",
        "dataset.image_ext=.png",
        "dataset.image_height=4",
        "dataset.image_width=5",
        "dataset.augmentation_config.rgb_input_mean=[0.5,0.5,0.5]",
        "dataset.augmentation_config.rgb_input_std=[0.25,0.5,1.0]",
        *extra,
    ]
    return load_config(None, overrides)


def test_loading_resizes_each_light_and_normalising_uses_mean_and_std(tmp_path):
    cfg = two_light_config(tmp_path)
    raw = SideLoader(cfg.dataset).load(tmp_path, "in", "C1")
    assert raw.dtype == np.uint8 and raw.shape == (3, 8, 5)
    assert (raw[:, :4] == 255).all() and (raw[:, 4:] == 0).all()  # SolderLight above WhiteLight
    out = Normalizer.from_config(cfg.dataset)(raw)
    np.testing.assert_allclose(out[:, :4].reshape(3, -1).mean(1), [2.0, 1.0, 0.5], atol=1e-6)  # (1-.5)/std
    np.testing.assert_allclose(out[:, 4:].reshape(3, -1).mean(1), [-2.0, -1.0, -0.5], atol=1e-6)
    torch_out = Normalizer.from_config(cfg.dataset)(torch.from_numpy(raw))
    np.testing.assert_allclose(torch_out.numpy(), out, atol=1e-6)


def test_jpeg_draft_decoding_matches_a_full_decode_closely(tmp_path):
    rng = np.random.default_rng(0)
    big = np.kron(rng.integers(0, 255, (16, 16, 3)), np.ones((16, 16, 1))).astype(np.uint8)  # 256 x 256
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=95)
    drafted = decode_resized(tmp_path / "big.jpg", 64, 64)
    full = np.asarray(Image.open(tmp_path / "big.jpg").convert("RGB").resize((64, 64), Image.BILINEAR))
    assert drafted.shape == full.shape == (64, 64, 3)
    assert np.abs(drafted.astype(int) - full.astype(int)).mean() < 2  # within about one grey level


def test_golden_cache_decodes_each_golden_once(tmp_path, monkeypatch):
    cfg = two_light_config(tmp_path)
    loader = SideLoader(cfg.dataset, cache_size=2)
    calls = []
    monkeypatch.setattr(transforms, "decode_resized", lambda p, w, h: calls.append(p) or np.zeros((h, w, 3), np.uint8))
    for _ in range(3):
        loader.load(tmp_path, "in", "C1")
    assert len(calls) == 2  # two lights, decoded once


def test_missing_and_corrupt_images_are_data_errors(tmp_path):
    cfg = load_config(None, ["dataset.num_input=1", "dataset.input_map=null"])
    loader = SideLoader(cfg.dataset)
    with pytest.raises(DataError, match=r"C9\.jpg not found"):
        loader.load(tmp_path, "in", "C9")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "C8.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match=r"C8\.jpg cannot be decoded"):
        loader.load(tmp_path, "in", "C8")


def test_sampler_weights_follow_tao_formula():
    labels = np.array([0] * 30 + [1] * 10)
    weights = fpratio_weights(labels, 0.1)
    assert weights[:30].tolist() == [1.0] * 30
    np.testing.assert_allclose(weights[30:], 30 / 10 * 0.1)


def test_sampler_draws_the_expected_fail_share_reproducibly():
    labels = np.array([0] * 900 + [1] * 100)
    draws = list(build_train_sampler(labels, 0.25, seed=1))
    share = labels[draws].mean()
    assert abs(share - 0.25 / 1.25) < 0.03  # r/(1+r), whatever the class ratio
    assert draws == list(build_train_sampler(labels, 0.25, seed=1))
    assert len(draws) == len(labels)


def test_sampler_draw_depends_only_on_seed_and_epoch():
    labels = np.array([0] * 90 + [1] * 10)
    sampler = build_train_sampler(labels, 0.5, seed=3)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert first != second  # a new draw each epoch
    resumed = build_train_sampler(labels, 0.5, seed=3)  # as after a restart: straight to epoch 1
    resumed.set_epoch(1)
    assert list(resumed) == second


def test_sampler_refuses_a_training_set_without_defects():
    with pytest.raises(DataError, match="no FAIL rows"):
        fpratio_weights(np.zeros(5), 0.1, "train.csv")


@pytest.mark.parametrize("x, y", [(3, 1), (1, 3)])
def test_grid_works_for_an_odd_number_of_lights(x, y):
    lights = "{A: 0, B: 1, C: 2}"
    cfg = load_config(
        None,
        [
            "dataset.num_input=3",
            f"dataset.input_map={lights}",
            "dataset.concat_type=grid",
            f"dataset.grid_map.x={x}",
            f"dataset.grid_map.y={y}",
            "dataset.image_height=2",
            "dataset.image_width=3",
        ],
    )
    layout = layout_from_config(cfg.dataset)
    out = concat_lights(light_images(3), layout)
    assert out.shape == layout.shape == (3, 2 * y, 3 * x)  # TAO falls back to linear for odd N
    assert sorted({int(v) for v in out[0].ravel()}) == [0, 1, 2]


def test_worker_batches_are_the_dataset_items_in_shared_memory(tiny_data, tmp_path, write_spec):
    from tao_siamese_oi.data.datamodule import PairDataModule
    from tests.conftest import tiny_spec_dict

    spec = tiny_spec_dict(tiny_data, tmp_path)
    spec["dataset"].update(workers=2, batch_size=5)
    cfg = load_config(write_spec(spec))
    module = PairDataModule(cfg.dataset, eval_split="test")
    data = module.dataset("test")
    batches = list(module.predict_dataloader())
    assert [len(b[0]) for b in batches] == [5, 5, 2]  # 12 test rows, the last batch short
    assert all(b[0].is_shared() and b[1].is_shared() for b in batches)  # handed over without a copy
    images, goldens, labels, indices = (torch.cat(parts) for parts in zip(*batches))
    assert indices.tolist() == list(range(12))
    for i in (0, 7, 11):
        image, golden, label, index = data[i]
        assert torch.equal(images[i], image) and torch.equal(goldens[i], golden)
        assert labels[i] == label == float(data.table.labels[i]) and index == i
    assert labels.sum() == 4  # the tiny test split's 4 defects


def test_an_upload_decodes_like_the_same_file_and_a_bad_one_names_its_place(tmp_path):
    from tao_siamese_oi.data.transforms import decode_bytes_resized

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(tmp_path / "crop.png")
    uploaded = decode_bytes_resized((tmp_path / "crop.png").read_bytes(), 20, 16, "input[2]")
    np.testing.assert_array_equal(uploaded, decode_resized(tmp_path / "crop.png", 20, 16))
    assert uploaded.shape == (16, 20, 3)
    with pytest.raises(DataError, match=r"^image input\[5\] cannot be decoded"):
        decode_bytes_resized(b"\x89PNG not really", 20, 16, "input[5]")
    grey16 = tmp_path / "grey16.png"
    Image.fromarray(np.full((4, 4), 32896, np.uint16)).save(grey16)  # 128 * 257
    assert (decode_bytes_resized(grey16.read_bytes(), 4, 4, "input[0]") == 128).all()  # scaled, not clipped to 255
