"""Data-path benchmark: pairs/s of decode + resize + normalise alone (no model), 4 lights, DataLoader workers.

Compares, in one run on the same files:
- reference: what TAO's loader does per pair: full decode of all 8 images, resize, float normalisation in the
  worker, float tensors sent to the main process;
- ours: tao_siamese_oi's PairDataset: simplejpeg decode, goldens decoded once per worker (cache), each batch
  assembled in place in shared memory (``__getitems__``), uint8 sent to the main process and normalised there
  (what CPU training does);
- ours_to_device: the same up to the hand-over of uint8 batches (on a GPU the normalisation runs there).

    python -m bench.data_path                      # 4 lights, 128 x 128 target, 2 workers
    python -m bench.data_path --source-size 256    # crops stored larger than the target

The process runs with the allocator thresholds every task sets (utils/memory.py), for both sides alike;
``--default-malloc`` measures with glibc's defaults instead.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageFilter
from torch.utils.data import DataLoader, Dataset

from tao_siamese_oi.config import load_config
from tao_siamese_oi.data.dataset import PairDataset, pass_batch
from tao_siamese_oi.data.pairs import read_pairs
from tao_siamese_oi.data.transforms import Normalizer
from tao_siamese_oi.utils.memory import keep_freed_memory

LIGHTS = ["LowAngleLight", "SolderLight", "UniformLight", "WhiteLight"]


def make_dataset(root: Path, pairs: int, inputs_per_golden: int, size: int) -> Path:
    rng = np.random.default_rng(0)

    def crop():
        noise = Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8))
        return noise.filter(ImageFilter.GaussianBlur(2))  # JPEG-like content, not white noise

    rows = []
    for i in range(pairs):
        golden = f"G{i // inputs_per_golden:04d}"
        if i % inputs_per_golden == 0:
            for light in LIGHTS:
                (root / "golden").mkdir(parents=True, exist_ok=True)
                crop().save(root / "golden" / f"{golden}_{light}.jpg", quality=90)
        (root / "boards" / golden).mkdir(parents=True, exist_ok=True)
        name = f"{golden}_{i:05d}"
        for light in LIGHTS:
            crop().save(root / "boards" / golden / f"{name}_{light}.jpg", quality=90)
        # The golden folder holds the golden under the component's name; the input under its own.
        rows.append(
            {
                "input_path": f"boards/{golden}",
                "golden_path": "golden",
                "object_name": name,
                "label": "PASS" if i % 4 else "short",
                "golden": golden,
            }
        )
    csv = root / "pairs.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


class ReferenceDataset(Dataset):
    """TAO's per-pair work: 8 full decodes, resize, float normalisation in the worker."""

    def __init__(self, frame, root, height, width):
        self.rows = list(zip(frame["input_path"], frame["object_name"], frame["golden"]))
        self.root, self.size = Path(root), (width, height)
        self.mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
        self.std = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)

    def __len__(self):
        return len(self.rows)

    def _side(self, folder, stem):
        images = []
        for light in LIGHTS:
            img = (
                Image.open(self.root / folder / f"{stem}_{light}.jpg").convert("RGB").resize(self.size, Image.BILINEAR)
            )
            chw = np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0
            images.append((chw - self.mean) / self.std)
        return torch.from_numpy(np.concatenate(images, axis=1))

    def __getitem__(self, i):
        folder, name, golden = self.rows[i]
        return self._side(folder, name), self._side("golden", golden), torch.tensor(0.0), torch.tensor(i)


class OursDataset(PairDataset):
    """PairDataset, with the golden stem taken from the CSV's golden column (the benchmark's naming)."""

    def __init__(self, table, images_dir, dataset_cfg, load_goldens: bool = True):
        super().__init__(table, images_dir, dataset_cfg, load_goldens=load_goldens)
        self._golden = table.frame["golden"].tolist()

    def golden_stems(self, index):
        return [self._golden[index]]


def pairs_per_second(loader, normalize=None) -> float:
    start, count = time.perf_counter(), 0
    for image, goldens, _, _ in loader:
        if normalize is not None:
            image, goldens = normalize(image), normalize(goldens)
        count += len(image)
    return count / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--inputs-per-golden", type=int, default=10)
    parser.add_argument("--size", type=int, default=128, help="target image_height = image_width")
    parser.add_argument("--source-size", type=int, default=128, help="side of the stored JPEG crops")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=6, help="passes over the data per mode, interleaved")
    parser.add_argument("--main-threads", type=int, default=1, help="torch threads of the main process")
    parser.add_argument("--default-malloc", action="store_true", help="keep glibc's default thresholds")
    args = parser.parse_args(argv)
    tuned = not args.default_malloc and keep_freed_memory()
    torch.set_num_threads(args.main_threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv = make_dataset(root, args.pairs, args.inputs_per_golden, args.source_size)
        cfg = load_config(None, [f"dataset.image_height={args.size}", f"dataset.image_width={args.size}"]).dataset
        table = read_pairs(csv)
        ours = OursDataset(table, root, cfg)
        modes = {
            "reference": (ReferenceDataset(table.frame, root, args.size, args.size), None),
            "ours": (ours, Normalizer.from_config(cfg)),  # CPU training: normalised in the main process
            "ours_to_device": (ours, None),  # GPU training: uint8 handed over, normalised on the GPU
        }
        loaders = {
            name: DataLoader(
                data,
                batch_size=args.batch_size,
                num_workers=args.workers,
                persistent_workers=args.workers > 0,
                collate_fn=pass_batch if isinstance(data, PairDataset) else None,
            )
            for name, (data, _) in modes.items()
        }
        # Interleaved rounds, so a slow spell of a shared machine hits both modes alike. The first round also
        # starts the workers and fills the golden cache, as a training run's first epoch does; it is not counted.
        runs = {name: [] for name in modes}
        for _ in range(args.rounds):
            for name, (_, normalize) in modes.items():
                runs[name].append(pairs_per_second(loaders[name], normalize))
        results = {name: float(np.median(values[1:] or values)) for name, values in runs.items()}

    print(
        f"data path, {args.pairs} pairs, 4 lights, {args.source_size}px JPEG -> {args.size}x{args.size}, "
        f"{args.inputs_per_golden} inputs per golden, {args.workers} workers, batch {args.batch_size}, "
        f"malloc thresholds {'raised' if tuned else 'default'}"
    )
    for name, value in results.items():
        rounds = " ".join(f"{v:.0f}" for v in runs[name])
        print(f"  {name:<10} {value:6.0f} pairs/s  (median of warm rounds; every round: {rounds})")
    print(
        f"  ratio ours/reference: {results['ours'] / results['reference']:.2f}x, "
        f"ours_to_device/reference: {results['ours_to_device'] / results['reference']:.2f}x"
    )


if __name__ == "__main__":
    main()
