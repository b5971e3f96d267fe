"""Where a pair differs: Siamese_Grid's distance per grid cell, a defect map that comes with the score.

Siamese_Grid embeds an image as a grid of cells with E values each, flattened E-major (value e of cell (r, c) at
``e * rows * cols + r * cols + c``). The score is the Euclidean distance of the two embeddings, so the cell
distances (the norm over E of the difference in each cell) square-sum to the score squared: the map accounts for
the score exactly. Siamese_3 and Siamese_1 end in fully connected layers: their embedding has no place in it.

The grid covers the concatenated image of every light (data/transforms.Layout); ``HeatmapGeometry`` says which
cells belong to which light and where a cell lies in its light's image, as fractions of its width and height
(a cell covers about 16 px of the resized image; where it is in the original crop follows by scaling).
"""

from dataclasses import dataclass

import numpy as np

# torch's pairwise_distance adds this to each difference: ||a - b + eps||. Every backend and the map do the same.
PAIRWISE_EPS = 1e-6


def nearest_golden(inputs: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each input's (B, D) distance to the nearest of its references (B, G, D), and that pair's embedding
    difference (input - reference + eps), from which its cell map follows."""
    differences = inputs[:, None, :] - references + PAIRWISE_EPS
    distances = np.linalg.norm(differences, axis=-1)
    rows, nearest = np.arange(len(distances)), distances.argmin(axis=1)
    return distances[rows, nearest], differences[rows, nearest]


def cell_distances(difference: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(B, D) embedding differences (input - golden) -> (B, rows, cols) float32 distances per cell."""
    cells = np.asarray(difference, dtype=np.float64).reshape(len(difference), -1, grid[0], grid[1])
    return np.sqrt((cells**2).sum(axis=1)).astype(np.float32)


@dataclass(frozen=True)
class HeatmapGeometry:
    grid: tuple[int, int]  # (rows, cols) of cells over the concatenated image
    lights: tuple  # light names in layout order (None: one image per side)
    light_rows: int  # lights per column and per row of the concatenated image (linear: N x 1)
    light_cols: int

    def light_of(self, row: int, col: int) -> tuple[int, float, float]:
        """(light index, x, y) of a cell's centre: x and y as fractions (0..1) of that light's image."""
        fy = (row + 0.5) / self.grid[0] * self.light_rows
        fx = (col + 0.5) / self.grid[1] * self.light_cols
        li_row, li_col = int(fy), int(fx)
        return li_row * self.light_cols + li_col, fx - li_col, fy - li_row

    def cell_box(self, row: int, col: int) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2) of a cell in its light's image, as fractions of its width and height."""
        light, _, _ = self.light_of(row, col)
        li_row, li_col = divmod(light, self.light_cols)
        y1 = row / self.grid[0] * self.light_rows - li_row
        x1 = col / self.grid[1] * self.light_cols - li_col
        return x1, y1, x1 + self.light_cols / self.grid[1], y1 + self.light_rows / self.grid[0]

    def hotspot(self, heatmap: np.ndarray) -> tuple[str, float, float]:
        """The strongest cell: (its light's name, x, y of its centre as fractions of that light's image)."""
        row, col = np.unravel_index(int(np.nanargmax(heatmap)), heatmap.shape)
        light, x, y = self.light_of(int(row), int(col))
        return self.light_name(light), round(x, 4), round(y, 4)

    def light_name(self, index: int) -> str:
        name = self.lights[index]
        return "" if name is None else str(name)

    def light_block(self, light: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """([first, end) cell rows, [first, end) cell cols) that cover one light; where the cells do not divide
        evenly among the lights (3 stacked lights on 8 rows), the blocks still cover the whole grid."""
        li_row, li_col = divmod(light, self.light_cols)
        rows = (li_row * self.grid[0] // self.light_rows, (li_row + 1) * self.grid[0] // self.light_rows)
        cols = (li_col * self.grid[1] // self.light_cols, (li_col + 1) * self.grid[1] // self.light_cols)
        return rows, cols

    def light_cells(self, heatmap: np.ndarray, light: int) -> np.ndarray:
        """The part of a (rows, cols) map that covers one light (its cells in grid order)."""
        (r0, r1), (c0, c1) = self.light_block(light)
        return heatmap[r0:r1, c0:c1]

    def describe(self) -> dict:
        """What a deployment needs to read the ``cell_distances`` output (the export sidecar)."""
        blocks = [self.light_block(i) for i in range(len(self.lights))]
        return {
            "output": "cell_distances",
            "grid": list(self.grid),
            "lights": [
                {"light": self.light_name(i), "cell_rows": list(rows), "cell_cols": list(cols)}
                for i, (rows, cols) in enumerate(blocks)
            ],
            "cell_size": "each light's cells split its resized image evenly (rows x cols of the light's block)",
            "score": "sqrt(sum of cell_distances squared) = distance",
        }


def heatmap_geometry(model_type: str, layout) -> HeatmapGeometry | None:
    """The geometry of a model's cell map for a dataset layout; None for models without one."""
    from tao_siamese_oi.model.registry import spatial_grid

    grid = spatial_grid(model_type, layout.shape)
    if grid is None:
        return None
    return HeatmapGeometry(grid, tuple(layout.lights), layout.rows, layout.cols)
