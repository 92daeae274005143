"""Figures: sample grids (and, with the launcher, metric plots).

Figures are `matplotlib.figure.Figure` objects drawn straight to files: no
pyplot, no backend switch, so a notebook's backend and open figures are left
as they were. Every figure is written to a temporary file and renamed, so an
interrupted run never leaves a half-written PNG.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np

from lsh_gan import _files


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
  """(figure, axes) like `pyplot.subplots`, on a bare `Figure` that no
  pyplot state tracks: `figsize` goes to the figure, the other keywords
  (sharex, squeeze, ...) to `Figure.subplots`."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  figure_kwargs = {k: kwargs.pop(k) for k in ("figsize", "dpi")
                   if k in kwargs}
  fig = Figure(**figure_kwargs)
  return fig, fig.subplots(nrows, ncols, **kwargs)


def save_figure(fig, path: str) -> str:
  """Writes `fig` to `path` atomically (PNG, 100 dpi); returns the path."""
  path = os.path.abspath(path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  _files.write_with(path, lambda tmp: fig.savefig(tmp, dpi=100,
                                                  bbox_inches="tight"))
  return path


def tile(images: np.ndarray, cols: int = 8, pad: int = 1) -> np.ndarray:
  """(n, H, W, C) images in [-1, 1] -> one (rows*(H+pad)+pad, ...) image in
  [0, 1], row by row, on a white border; missing cells stay white."""
  images = np.asarray(images, np.float32)
  if images.ndim != 4:
    raise ValueError(f"images must be (n, H, W, C), got shape {images.shape}")
  n, height, width, channels = images.shape
  rows = -(-n // cols)
  grid = np.ones((rows * (height + pad) + pad, cols * (width + pad) + pad,
                  channels), np.float32)
  for i, image in enumerate(np.clip((images + 1) / 2, 0, 1)):
    r, c = divmod(i, cols)
    top, left = pad + r * (height + pad), pad + c * (width + pad)
    grid[top:top + height, left:left + width] = image
  return grid


def sample_grid(samples: np.ndarray, path: str, *, title: str | None = None,
                modes: np.ndarray | None = None, cols: int = 8) -> str:
  """Saves a picture of generated samples to `path` (PNG); returns the path.

  Images (n, H, W, C) in [-1, 1] are tiled `cols` per row; 2-D points (n, 2)
  are drawn as a scatter plot, with the mixture's `modes` (k, 2) marked.
  """
  samples = np.asarray(samples)
  if samples.ndim == 2 and samples.shape[1] == 2:
    fig, ax = subplots(figsize=(4, 4))
  else:
    height, width = tile(samples, cols=cols).shape[:2]  # the aspect ratio
    fig, ax = subplots(figsize=(4, max(4 * height / width, 0.5)))
  draw_samples(ax, samples, modes=modes, cols=cols)
  if title:
    ax.set_title(title, fontsize=9)
  return save_figure(fig, path)


def draw_samples(ax, samples: np.ndarray, *, modes: np.ndarray | None = None,
                 cols: int = 8) -> None:
  """Draws samples on a matplotlib axis: images (n, H, W, C) in [-1, 1]
  tiled `cols` per row, or 2-D points (n, 2) as a scatter with the
  mixture's `modes` (k, 2) marked."""
  samples = np.asarray(samples)
  if samples.ndim == 2 and samples.shape[1] == 2:
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.3, color="C0",
               label="samples")
    if modes is not None:
      ax.scatter(modes[:, 0], modes[:, 1], s=30, marker="x", color="C3",
                 label="modes")
      ax.legend(loc="upper right", fontsize=7)
    ax.set_aspect("equal")
  else:
    grid = tile(samples, cols=cols)
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray",
              vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")


_PAIRS = (("knn", "KNN"), ("lsh", "LSH"), ("lsh_knn", "LSH+KNN"))


def _families(rows: list[dict]) -> dict[str, list[dict]]:
  """Quantization rows by grid: per tensor, per channel; each with the
  baseline at 32 bits, sorted by bits."""
  base = [r for r in rows if r["point"] == "baseline"]
  out = {"per tensor": [], "per channel": []}
  for r in rows:
    if re.fullmatch(r"quantize\(bits=\d+\)", r["transform"]):
      out["per tensor"].append(r)
    elif re.fullmatch(r"quantize\(bits=\d+,axis=-?\d+\)", r["transform"]):
      out["per channel"].append(r)
  return {k: sorted(base + v, key=lambda r: r["bits"])
          for k, v in out.items() if v}


def sweep_plots(rows: list[dict], directory: str, *,
                title: str = "") -> list[str]:
  """The sweep's figures; returns their paths.

  metrics_vs_bits.png: precision and recall of every family (KNN, LSH,
  LSH+KNN) and density/coverage against the bits of the quantization points
  (per tensor solid, per channel dashed; the baseline at 32 bits).
  precision_recall.png: the precision-recall plane of each family, one
  marker per sweep point.
  """
  paths = []
  families = _families(rows)
  if families:
    fig, axes = subplots(1, 3, figsize=(13, 3.8), sharex=True)
    panels = (("precision", [f"{p}_precision" for p, _ in _PAIRS] +
               ["density"]),
              ("recall", [f"{p}_recall" for p, _ in _PAIRS] + ["coverage"]),
              ("FID", ["fid"]))
    for ax, (label, columns) in zip(axes, panels):
      for j, column in enumerate(columns):
        for family, style in (("per tensor", "-"), ("per channel", "--")):
          if family not in families:
            continue
          fam = families[family]
          ax.plot([r["bits"] for r in fam], [r[column] for r in fam],
                  style, marker="o", ms=3, color=f"C{j}",
                  label=f"{column} ({family})")
      ax.set_xscale("log", base=2)
      ax.set_xticks([1, 2, 3, 4, 6, 8, 16, 32])
      ax.set_xticklabels(["1", "2", "3", "4", "6", "8", "16", "32"])
      ax.set_xlabel("bits")
      ax.set_ylabel(label)
      ax.grid(alpha=0.3)
      ax.legend(fontsize=6)
    fig.suptitle(f"{title}: metrics against quantization bits", fontsize=10)
    paths.append(save_figure(fig, os.path.join(directory,
                                               "metrics_vs_bits.png")))
  fig, axes = subplots(1, 3, figsize=(13, 4.2), sharex=True, sharey=True)
  for ax, (prefix, label) in zip(axes, _PAIRS):
    for i, r in enumerate(rows):
      x, y = r[f"{prefix}_recall"], r[f"{prefix}_precision"]
      ax.scatter([x], [y], s=18, color=f"C{i % 10}",
                 marker="*" if r["point"] == "baseline" else "o")
      ax.annotate(r["point"], (x, y), fontsize=5, alpha=0.8,
                  xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel(f"{label} recall")
    ax.set_ylabel(f"{label} precision")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
  fig.suptitle(f"{title}: precision and recall of each sweep point",
               fontsize=10)
  paths.append(save_figure(fig, os.path.join(directory,
                                             "precision_recall.png")))
  return paths


def markdown_table(head, rows) -> str:
  """A markdown table: a header row of `head`, then one row per list of
  cell strings in `rows`."""
  line = lambda cells: "| " + " | ".join(cells) + " |"
  return "\n".join([line(head), "|" + " --- |" * len(head),
                    *(line(cells) for cells in rows)])


# The printed summary: fits an 80-column terminal; results.csv has it all.
_NAME_WIDTH = 24
_PRINTED = (("KNN P", "knn_precision"), ("KNN R", "knn_recall"),
            ("LSH P", "lsh_precision"), ("LSH R", "lsh_recall"),
            ("L+K P", "lsh_knn_precision"), ("L+K R", "lsh_knn_recall"))
_HEAD = ("point", "bits", "ratio", *(c for c, _ in _PRINTED), "FID")
SUMMARY_NOTES = (
    "bits: the fewest quantization bits of the point (32: not quantized).\n"
    "ratio: bytes of the uncompressed variables / bytes stored; pruning and\n"
    "  clipping keep dense float32 storage, so they read 1.0x.\n"
    "KNN, LSH, L+K (LSH+KNN): precision P and recall R. FID: Frechet\n"
    "  distance in the embedding. In results.csv: density, coverage, KID\n"
    "  (unbiased MMD^2, cubic kernel, in embedding units, not x1000) and\n"
    "  the seconds of each stage.")


def _fid_cell(value: float) -> str:
  if not math.isfinite(value):
    return str(value)
  if abs(value) >= 1000:
    return f"{value:.0f}"
  if abs(value) >= 10:
    return f"{value:.1f}"
  if abs(value) >= 0.01 or value == 0:
    return f"{value:.3f}"
  return f"{value:.1e}"


def _text_rows(rows_of_cells, notes: bool) -> str:
  """Fixed-width lines under `_HEAD`: the point's name left, the other cells
  right; a name too long for its column gets a line of its own. Then the
  notes, if asked for."""
  widths = (5, 6) + (6,) * len(_PRINTED) + (9,)

  def line(name, cells):
    text = "".join(f"{c:>{w}}" for c, w in zip(cells, widths))
    if len(name) > _NAME_WIDTH:
      return f"{name}\n{'':<{_NAME_WIDTH}}{text}"
    return f"{name:<{_NAME_WIDTH}}{text}"

  table = "\n".join([line(_HEAD[0], _HEAD[1:]),
                     *(line(n, c) for n, c in rows_of_cells)])
  return f"{table}\n\n{SUMMARY_NOTES}" if notes else table


def summary_table(rows: list[dict], *, notes: bool = True) -> str:
  """The sweep as fixed-width text for an 80-column terminal: one line per
  point (precision and recall of each family, FID), then what the columns
  mean (`notes`). Every column is in results.csv."""
  lines = []
  for r in rows:
    lines.append((r["point"], [str(r["bits"]),
                               f"{r['compression_ratio']:.1f}x",
                               *(f"{r[k]:.3f}" for _, k in _PRINTED),
                               _fid_cell(r["fid"])]))
  return _text_rows(lines, notes)


def seeds_table(rows: list[dict], *, notes: bool = True) -> str:
  """`pipeline.run_seeds` rows as text for an 80-column terminal: per
  point a line of means, then a line of standard deviations (± ...)."""
  lines = []
  for r in rows:
    lines.append((r["point"], [
        str(r["bits"]), f"{r['compression_ratio']:.1f}x",
        *(f"{r[k + '_mean']:.3f}" for _, k in _PRINTED),
        _fid_cell(r["fid_mean"])]))
    lines.append(("  ± std over seeds", [
        "", "", *(f"{r[k + '_std']:.3f}" for _, k in _PRINTED),
        _fid_cell(r["fid_std"])]))
  return _text_rows(lines, notes)


# Seed summaries (`pipeline.run_seeds` rows: <metric>_mean, <metric>_std,
# num_seeds) in the docs' tables.
NOISE_TOLERANCE = 0.05


def beyond_noise(row: dict, base: dict, metric: str) -> bool:
  """Whether a summary row's mean of `metric` differs from `base`'s beyond
  noise: by more than max(NOISE_TOLERANCE, 3 standard errors of the
  difference) for precision, recall, density and coverage; for FID, a
  mean more than 1.5 times the base's. A mean that is NaN (the metric was
  undefined at one seed or more) on one side only has moved; NaN on both
  has not."""
  a, b = row[metric + "_mean"], base[metric + "_mean"]
  if math.isnan(a) or math.isnan(b):
    return math.isnan(a) != math.isnan(b)
  if metric == "fid":
    return a > 1.5 * b
  stderr = math.sqrt((row[metric + "_std"] ** 2 + base[metric + "_std"] ** 2)
                     / row["num_seeds"])
  return abs(a - b) > max(NOISE_TOLERANCE, 3 * stderr)


def mean_std_cell(row: dict, metric: str, digits: int = 3) -> str:
  """"mean ± std" of a summary row's metric."""
  return (f"{row[metric + '_mean']:.{digits}f} ± "
          f"{row[metric + '_std']:.{digits}f}")


def fid_digits(rows: list[dict]) -> int:
  """Decimals that show the baseline row's mean FID to three significant
  digits (FIDs in the multilayer embeddings are ~0.002-0.05, in 2-D
  ~0.003)."""
  base = next(r for r in rows if r["point"] == "baseline")["fid_mean"]
  if not base > 0:
    return 3
  return int(min(5, max(0, 2 - math.floor(math.log10(base)))))
