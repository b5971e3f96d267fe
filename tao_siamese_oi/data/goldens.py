"""Which golden references a row is compared with.

With ``dataset.num_golden`` G = 1 (TAO's default) a row's golden is ``<golden_path>/<object_name>``. With G > 1
the candidates are every image set in the row's golden directory that has all lights
(``<stem>_<light><image_ext>`` for each light, or ``<stem><image_ext>`` without input_map). The row's own
``object_name`` comes first when it is a candidate; the other G - 1 are drawn without replacement (with
replacement when the directory has fewer) by a generator seeded with (seed, row): the same goldens in every epoch,
every task and every run. TAO draws them afresh each time and ignores object_name.
"""

import os
from pathlib import Path

import numpy as np

from tao_siamese_oi.errors import DataError


class GoldenIndex:
    def __init__(self, images_dir, lights, image_ext: str, num_golden: int, seed: int = 0):
        self.images_dir = images_dir
        self.lights = lights
        self.image_ext = image_ext
        self.num_golden = num_golden
        self.seed = seed
        self._candidates: dict[str, list[str]] = {}

    def candidates(self, golden_dir: str) -> list[str]:
        """Stems in a golden directory that have every light, sorted (listed once per directory)."""
        if golden_dir not in self._candidates:
            folder = Path(self.images_dir, golden_dir)
            try:
                names = set(os.listdir(folder))
            except OSError:
                names = set()
            stems = {n[: -len(self.image_ext)] for n in names if n.endswith(self.image_ext)}
            if self.lights != (None,):
                suffixes = [f"_{light}" for light in self.lights]
                stems = {s[: -len(suffixes[0])] for s in stems if s.endswith(suffixes[0])}
                stems = {s for s in stems if all(f"{s}{x}{self.image_ext}" in names for x in suffixes)}
            self._candidates[golden_dir] = sorted(stems)
        return self._candidates[golden_dir]

    def for_row(self, row: int, golden_dir: str, object_name: str) -> list[str]:
        if self.num_golden == 1:
            return [object_name]
        found = self.candidates(golden_dir)
        if not found:
            raise DataError(
                f"golden directory {Path(self.images_dir, golden_dir)} has no complete image set "
                f"(all lights, {self.image_ext}); dataset.num_golden={self.num_golden} needs some"
            )
        first = [object_name] if object_name in found else []
        others = [s for s in found if s != object_name]
        need = self.num_golden - len(first)
        rng = np.random.default_rng([self.seed, row])
        if others:
            picks = rng.choice(len(others), size=need, replace=len(others) < need)
            return first + [others[i] for i in picks]
        return (first * self.num_golden)[: self.num_golden]
