"""Inference benchmark: the golden-embedding cache on and off, for the pytorch and onnxruntime backends.

Each golden serves ``--inputs-per-golden`` inputs (10 by default, as on a line: one golden per component per
design). Same files, same model (Siamese_3, random weights: speed does not depend on them), one process; each
mode is run ``--rounds`` times, interleaved, and the medians compared.

    python -m bench.golden_cache                    # 4 lights, 64 x 64, 1,000 pairs
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.data_path import OursDataset, make_dataset
from tao_siamese_oi.config import load_config
from tao_siamese_oi.data.pairs import read_pairs
from tao_siamese_oi.data.transforms import layout_from_config
from tao_siamese_oi.deploy.backends import OnnxEmbedder, TorchEmbedder
from tao_siamese_oi.deploy.onnx_export import export_onnx
from tao_siamese_oi.deploy.scorer import Scorer
from tao_siamese_oi.model.networks import create_model
from tao_siamese_oi.utils.memory import keep_freed_memory


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--inputs-per-golden", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    keep_freed_memory()  # as every task does

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv = make_dataset(root, args.pairs, args.inputs_per_golden, args.size)
        spec = load_config(None, [f"dataset.image_height={args.size}", f"dataset.image_width={args.size}"])
        cfg = spec.dataset
        table = read_pairs(csv)
        datasets = {cache: OursDataset(table, root, cfg, load_goldens=not cache) for cache in (True, False)}
        shape = layout_from_config(cfg).shape
        model = create_model("Siamese_3", input_shape=shape, embedding_size=5).eval()
        example = torch.randn(1, *shape)
        export_onnx(model, (example, example), root / "m.onnx", opset=17, dynamic_batch=True, constant_folding=True)
        embedders = {"pytorch": TorchEmbedder(model, torch.device("cpu")), "onnxruntime": OnnxEmbedder(root / "m.onnx")}

        runs = {(b, c): [] for b in embedders for c in (False, True)}
        scores = {}
        for _ in range(args.rounds):
            for backend, cache in runs:
                start = time.perf_counter()
                scorer = Scorer.for_model(spec, embedders[backend], None, (1.0, "spec"), root / "m.onnx")  # cache empty
                scores[backend, cache], _ = scorer.score_dataset(
                    datasets[cache], args.batch_size, args.workers, heatmaps=False
                )
                runs[backend, cache].append(args.pairs / (time.perf_counter() - start))
        print(
            f"inference, {args.pairs} pairs, 4 lights at {args.size} x {args.size}, {args.inputs_per_golden} inputs "
            f"per golden, Siamese_3, batch {args.batch_size}, {args.workers} loader workers, {torch.get_num_threads()} "
            "torch threads"
        )
        for backend in embedders:
            off, on = (float(np.median(runs[backend, c])) for c in (False, True))
            diff = float(np.max(np.abs(scores[backend, True] - scores[backend, False])))
            print(
                f"  {backend:<12} no cache {off:7.1f} pairs/s, golden cache {on:7.1f} pairs/s, "
                f"ratio {on / off:.2f}x (max score difference {diff:.1e})"
            )


if __name__ == "__main__":
    main()
