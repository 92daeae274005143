"""Figures: sample grids (and, with the launcher, metric plots).

matplotlib with the Agg backend: files only, no display needed. Every
figure is written to a temporary file and renamed, so an interrupted run
never leaves a half-written PNG.
"""

from __future__ import annotations

import os

import numpy as np


def _pyplot():
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
  _pyplot().close(fig)
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
  plt = _pyplot()
  samples = np.asarray(samples)
  if samples.ndim == 2 and samples.shape[1] == 2:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.3, color="C0",
               label="samples")
    if modes is not None:
      ax.scatter(modes[:, 0], modes[:, 1], s=30, marker="x", color="C3",
                 label="modes")
      ax.legend(loc="upper right", fontsize=7)
    ax.set_aspect("equal")
  else:
    grid = tile(samples, cols=cols)
    height = 4 * grid.shape[0] / grid.shape[1]
    fig, ax = plt.subplots(figsize=(4, max(height, 0.5)))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray",
              vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
  if title:
    ax.set_title(title, fontsize=9)
  return save_figure(fig, path)
