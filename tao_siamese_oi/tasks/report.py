"""evaluate's review report: one self-contained HTML file (images inlined, no script, no network) that shows the
engineer where and why: the operating point and every rate with its 95 % interval, the ROC and score histogram,
the per-defect-type table, then the pairs to look at, as input | golden | difference | heatmap for every light,
with score, margin to the threshold, CSV line and the CSV's own columns.

Galleries: every missed defect (most confident miss first; ``evaluate.report_misses`` caps it) and the worst false
alarms (highest score first; ``evaluate.report_false_alarms``). Only gallery pairs are decoded again, as small
thumbnails, so a report of a large test split stays small and fast to write.
"""

import base64
import functools
import html
import io
from pathlib import Path

import numpy as np
from PIL import Image

from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.tasks.evaluate_plots import PLOT_NAMES
from tao_siamese_oi.utils.files import atomic_write_text

REPORT_NAME = "report.html"
THUMBNAIL = 96  # px, longest side of each tile
CONTRACT_COLUMNS = {"input_path", "golden_path", "object_name", "label", "siamese_score", "decision", "outcome"}
STYLE = """
body{font:14px system-ui,sans-serif;margin:24px;color:#222} h1{font-size:20px} h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left} .plots img{max-width:48%;margin-right:1%}
.pair{border:1px solid #ddd;border-radius:6px;padding:8px;margin:10px 0;display:inline-block;vertical-align:top}
.pair figure{display:inline-block;margin:2px;text-align:center;font-size:11px}
.pair img{display:block;image-rendering:pixelated;width:96px} .meta{font-size:12px;color:#444;margin-bottom:4px}
.light{display:inline-block;margin-right:10px} .note{color:#666}
"""


def write_report(
    cfg: ExperimentConfig, out: Path, frame, scores: np.ndarray, thresholds, metrics: dict, scored
) -> Path:
    """report.html in ``out`` for an evaluation (``frame``: evaluate.csv's rows; ``thresholds``: the decision
    threshold, or one per row with per-group calibration; ``scored``: the SplitScores)."""
    threshold = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), scores.shape)
    tiles = _Tiles(cfg, scored)
    gallery = functools.partial(_gallery, frame=frame, scores=scores, threshold=threshold, tiles=tiles)
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Evaluation report</title>"
        f"<style>{STYLE}</style></head><body>",
        "<h1>Evaluation report</h1>",
        _summary(metrics, metrics["threshold"]),
        _plots(out),
        _defect_table(metrics),
        # the most confident errors first: a miss with the lowest score, a false alarm with the highest
        gallery("missed", "Missed defects", "FN", lowest_first=True, cap=cfg.evaluate.report_misses),
        gallery("false-alarms", "Worst false alarms", "FP", lowest_first=False, cap=cfg.evaluate.report_false_alarms),
        "</body></html>",
    ]
    return atomic_write_text(out / REPORT_NAME, "\n".join(parts))


def _worst(frame, scores, outcome: str, ascending: bool, cap: int) -> tuple[list[int], int]:
    """(the rows of one outcome to show, lowest or highest score first, at most ``cap`` (-1: all); how many
    there are)."""
    rows = np.flatnonzero(frame["outcome"].to_numpy() == outcome)
    order = rows[np.argsort(scores[rows], kind="stable")]
    order = order if ascending else order[::-1]
    return [int(i) for i in (order if cap < 0 else order[:cap])], len(rows)


def _summary(metrics: dict, threshold: float) -> str:
    provenance = metrics.get("provenance") or {}
    rates = metrics["rates"]
    rows = [
        ("False-positive rate (PASS flagged)", rates["fpr"]),
        ("Recall (defects caught)", rates["recall"]),
        ("Precision", rates["precision"]),
        *((f"Recall at FPR &le; {budget} %", rate) for budget, rate in rates["recall_at_fpr"].items()),
    ]
    table = "".join(f"<tr><td>{name}</td>{_rate_cells(rate)}</tr>" for name, rate in rows)
    auroc = "n/a" if metrics["auroc"] is None else f"{metrics['auroc']:.4f}"
    return (
        f"<p>Model <code>{html.escape(str(provenance.get('model_file', '')))}</code> "
        f"({html.escape(str(provenance.get('model_type', '')))}, SHA-256 "
        f"{html.escape(str(provenance.get('model_sha256', ''))[:12])}), data "
        f"<code>{html.escape(str(provenance.get('data_csv', '')))}</code>: {metrics['num_pairs']} pairs "
        f"({metrics['num_pass']} PASS, {metrics['num_fail']} FAIL). Decision threshold <b>{threshold:.4f}</b> "
        f"({html.escape(str(metrics.get('threshold_source', '')))}): a pair is FAIL when its score is above it. "
        f"AUROC {auroc}.</p>"
        "<table><tr><th>rate</th><th>%</th><th>count</th><th>95 % interval (Clopper-Pearson)</th></tr>"
        f"{table}</table>"
    )


def _rate_cells(rate: dict) -> str:
    if rate.get("percent") is None:
        return "<td>n/a</td><td>0 of 0</td><td></td>"
    low, high = rate["ci95_percent"]
    return (
        f"<td>{rate['percent']:.2f}</td><td>{rate['count']} of {rate['of']}</td><td>{low:.2f} &ndash; {high:.2f}</td>"
    )


def _plots(out: Path) -> str:
    images = [
        f"<img alt='{name}' src='{_data_uri((out / name).read_bytes())}'>"
        for name in PLOT_NAMES[:2]
        if (out / name).is_file()
    ]
    return f"<h2>ROC and scores</h2><div class='plots'>{''.join(images)}</div>" if images else ""


def _defect_table(metrics: dict) -> str:
    table = metrics.get("by_defect_type") or {}
    if not table:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{entry['num_pairs']}</td><td>{entry['recall']:.1f}</td>"
        f"<td>{'n/a' if entry['auroc'] is None else format(entry['auroc'], '.4f')}</td></tr>"
        for name, entry in table.items()
    )
    return (
        "<h2>Per defect type</h2><table><tr><th>defect type</th><th>FAIL pairs</th><th>recall %</th>"
        f"<th>AUROC vs all PASS</th></tr>{rows}</table>"
    )


def _gallery(anchor, title, outcome: str, lowest_first: bool, cap: int, frame, scores, threshold, tiles):
    """One gallery: the pairs of an outcome in score order, capped."""
    rows, total = _worst(frame, scores, outcome, ascending=lowest_first, cap=cap)
    shown = f"all {total}" if len(rows) == total else f"the {len(rows)} worst of {total}"
    cards = "".join(_card(i, frame, scores, threshold, tiles) for i in rows)
    return f"<section id='{anchor}' data-count='{len(rows)}'><h2>{title} ({shown})</h2>{cards}</section>"


def _card(index: int, frame, scores, threshold: np.ndarray, tiles) -> str:
    row = frame.iloc[index]
    extra = [
        f"{html.escape(str(k))}={html.escape(str(v))}"
        for k, v in row.items()
        if k not in CONTRACT_COLUMNS and str(v) != ""
    ]
    meta = (
        f"<div class='meta'><b>{html.escape(str(row['object_name']))}</b> &middot; CSV line {index + 2} &middot; "
        f"label {html.escape(str(row['label']))} &middot; score {scores[index]:.4f} "
        f"(margin {scores[index] - threshold[index]:+.4f} to {threshold[index]:.4f})<br>"
        f"{' &middot; '.join(extra)}</div>"
    )
    return f"<div class='pair' data-row='{index}'>{meta}{tiles.for_row(index)}</div>"


class _Tiles:
    """input | golden | difference | heatmap thumbnails of one pair, for every light."""

    def __init__(self, cfg: ExperimentConfig, scored):
        from tao_siamese_oi.data.splits import build_dataset

        self.dataset = build_dataset(cfg.dataset, "test", cfg.train.seed)  # goldens loaded: a few rows only
        self.layout = scored.scorer.layout
        self.heatmaps, self.geometry = scored.heatmaps, scored.scorer.geometry

    def for_row(self, index: int) -> str:
        from tao_siamese_oi.data.transforms import light_views

        images, goldens, _, _ = self.dataset.__getitems__([index])
        image, golden = images[0].numpy(), goldens[0, 0].numpy()  # the first golden of the row
        heatmap = None if self.heatmaps is None else self.heatmaps[index]
        blocks = []
        for light, (view, ref) in enumerate(zip(light_views(image, self.layout), light_views(golden, self.layout))):
            name = self.layout.lights[light]
            tiles = [
                ("input", view.transpose(1, 2, 0)),
                ("golden", ref.transpose(1, 2, 0)),
                ("difference", _difference(view, ref)),
            ]
            if heatmap is not None and self.geometry is not None:
                tiles.append(("heatmap", _heat(self.geometry.light_cells(heatmap, light), float(np.nanmax(heatmap)))))
            figures = "".join(
                f"<figure><img alt='{label}' src='{_png_uri(tile)}'>{label}</figure>" for label, tile in tiles
            )
            caption = "" if name is None else f"<div class='note'>{html.escape(str(name))}</div>"
            blocks.append(f"<div class='light'>{caption}{figures}</div>")
        return "".join(blocks)


def _difference(view: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|input - golden|, brightened so small differences show (x4, clipped)."""
    diff = np.abs(view.astype(np.int16) - ref.astype(np.int16)).max(axis=0)
    return np.clip(diff * 4, 0, 255).astype(np.uint8)


def _heat(cells: np.ndarray, top: float) -> np.ndarray:
    """A cell map as a black-red-yellow image, scaled to the pair's strongest cell (one colour per cell)."""
    level = np.nan_to_num(cells / top) if top > 0 else np.zeros_like(cells)
    rgb = np.stack([np.clip(level * 2, 0, 1), np.clip(level * 2 - 1, 0, 1), np.zeros_like(level)], axis=-1)
    return (rgb * 255).astype(np.uint8)


def _png_uri(array: np.ndarray) -> str:
    image = Image.fromarray(array)
    scale = THUMBNAIL / max(image.size)
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return _data_uri(buffer.getvalue())


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
