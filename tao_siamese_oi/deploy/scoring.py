"""The deployment scoring loop: the same data path as training (decode, resize, concatenate, normalise), any
embedding backend, and a golden-embedding cache.

Goldens are shared by many inputs (one golden per component per design), so with the cache each distinct golden
image set is loaded and embedded once per run, and only inputs are embedded per pair. The score is the distance
to the nearest golden, computed as torch's pairwise_distance does (||a - b + 1e-6||), so every backend and the
training module agree.
"""

import numpy as np
from torch.utils.data import DataLoader

from tao_siamese_oi.data.dataset import pass_batch
from tao_siamese_oi.data.transforms import Normalizer
from tao_siamese_oi.model.heatmap import cell_distances, nearest_golden
from tao_siamese_oi.utils.progress import progress


def score_pairs(dataset, embed, normalize: Normalizer, batch_size: int, workers: int, grid=None):
    """(scores, heatmaps) in dataset row order. A dataset built with ``load_goldens=False`` is scored with the golden
    cache (goldens loaded and embedded here, once each); otherwise its batches' goldens are embedded per pair.
    ``grid`` (a Siamese_Grid's cell rows and cols): also each pair's cell distances to its nearest golden
    (model/heatmap.py), else heatmaps is None. Any backend: the map comes from the embeddings."""
    golden_cache = not dataset.load_goldens
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=pass_batch)
    scores = np.full(len(dataset), np.nan)
    heatmaps = np.full((len(dataset), *grid), np.nan, dtype=np.float32) if grid else None
    cache: dict = {}
    for images, goldens, _, indices in progress(loader, len(loader), "scoring", "batch"):
        inputs = embed(normalize(images).numpy())
        if golden_cache:
            keys = [dataset.golden_keys(i) for i in indices.tolist()]
            _embed_missing(dataset, embed, normalize, cache, keys, batch_size)
            references = np.stack([[cache[k] for k in row] for row in keys])
        else:
            count, num_golden = goldens.shape[:2]
            references = embed(normalize(goldens.flatten(0, 1)).numpy()).reshape(count, num_golden, -1)
        distances, differences = nearest_golden(inputs, references)
        scores[indices.numpy()] = distances
        if heatmaps is not None:
            heatmaps[indices.numpy()] = cell_distances(differences, grid)
    return scores, heatmaps


def _embed_missing(dataset, embed, normalize, cache: dict, keys: list, batch_size: int) -> None:
    missing = list(dict.fromkeys(k for row in keys for k in row if k not in cache))
    for start in range(0, len(missing), batch_size):
        chunk = missing[start : start + batch_size]
        images = np.stack([dataset.load_golden(k) for k in chunk])
        for key, embedding in zip(chunk, embed(normalize(images))):
            cache[key] = embedding
