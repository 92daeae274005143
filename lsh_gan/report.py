"""Figures: sample grids (and, with the launcher, metric plots).

matplotlib with the Agg backend: files only, no display needed. Every
figure is written to a temporary file and renamed, so an interrupted run
never leaves a half-written PNG.
"""

from __future__ import annotations

import os
import re

import numpy as np


def pyplot():
  """matplotlib.pyplot on the Agg backend (files only, no display)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def save_figure(fig, path: str) -> str:
  """Writes `fig` to `path` atomically (PNG, 100 dpi) and closes it."""
  path = os.path.abspath(path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp.png"
  fig.savefig(tmp, dpi=100, bbox_inches="tight")
  pyplot().close(fig)
  os.replace(tmp, path)
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
  plt = pyplot()
  samples = np.asarray(samples)
  if samples.ndim == 2 and samples.shape[1] == 2:
    fig, ax = plt.subplots(figsize=(4, 4))
  else:
    height, width = tile(samples, cols=cols).shape[:2]  # the aspect ratio
    fig, ax = plt.subplots(figsize=(4, max(4 * height / width, 0.5)))
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
  plt = pyplot()
  paths = []
  families = _families(rows)
  if families:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharex=True)
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
  fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharex=True, sharey=True)
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


def summary_table(rows: list[dict]) -> str:
  """A markdown table of the sweep: one row per point."""
  head = ("point", "bits", "ratio", "KNN P", "KNN R", "density", "coverage",
          "LSH P", "LSH R", "LSH+KNN P", "LSH+KNN R", "FID", "KID", "s")
  lines = []
  for r in rows:
    seconds = sum(v for k, v in r.items() if k.endswith("_s"))
    cells = [r["point"], str(r["bits"]), f"{r['compression_ratio']:.1f}x",
             *(f"{r[k]:.3f}" for k in ("knn_precision", "knn_recall",
                                       "density", "coverage",
                                       "lsh_precision", "lsh_recall",
                                       "lsh_knn_precision",
                                       "lsh_knn_recall")),
             f"{r['fid']:.2f}", f"{r['kid']:.4f}", f"{seconds:.1f}"]
    lines.append(cells)
  return markdown_table(head, lines)


def seeds_table(rows: list[dict]) -> str:
  """A markdown table of `pipeline.run_seeds` rows: mean ± std per metric."""
  columns = (("KNN P", "knn_precision"), ("KNN R", "knn_recall"),
             ("LSH P", "lsh_precision"), ("LSH R", "lsh_recall"),
             ("LSH+KNN P", "lsh_knn_precision"),
             ("LSH+KNN R", "lsh_knn_recall"), ("FID", "fid"))
  head = ("point", "bits", *(c for c, _ in columns))
  lines = []
  for r in rows:
    cells = [r["point"], str(r["bits"])]
    for _, key in columns:
      digits = 1 if key == "fid" else 3
      cells.append(f"{r[key + '_mean']:.{digits}f} ± "
                   f"{r[key + '_std']:.{digits}f}")
    lines.append(cells)
  return markdown_table(head, lines)

