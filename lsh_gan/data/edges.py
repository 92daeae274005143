"""Edge maps of images: the condition of the paired edges2digits dataset.

`outline` marks, in a binarized image, every foreground pixel that has a
background pixel among its four neighbours (the foreground minus its
erosion by a 3x3 cross; outside the image counts as background): the
one-pixel-wide inner boundary of each stroke. Pure numpy, deterministic.
"""

from __future__ import annotations

import numpy as np


def outline(images: np.ndarray, threshold: int = 128) -> np.ndarray:
  """The inner boundary of the foreground of uint8 images.

  Args:
    images: uint8 array (n, H, W, 1) or (H, W) / (n, H, W); foreground is
      >= threshold.
    threshold: the binarization level, 1..255.

  Returns:
    uint8 array of the same shape: 255 on the boundary, 0 elsewhere.

  Raises:
    ValueError: for a non-uint8 array, fewer than 2 dimensions, or a
      threshold outside 1..255.
  """
  images = np.asarray(images)
  if images.dtype != np.uint8 or images.ndim < 2:
    raise ValueError(f"images must be a uint8 array of 2 or more "
                     f"dimensions, got {images.dtype} of shape "
                     f"{images.shape}")
  if (not isinstance(threshold, (int, np.integer)) or isinstance(threshold, bool)
      or not 1 <= threshold <= 255):
    raise ValueError(f"threshold={threshold!r} must be an integer in 1..255")
  channel = images.ndim == 4
  x = images[..., 0] if channel else images
  fg = x >= threshold
  padded = np.pad(fg, [(0, 0)] * (fg.ndim - 2) + [(1, 1), (1, 1)])
  interior = (padded[..., 1:-1, 1:-1] & padded[..., :-2, 1:-1] &
              padded[..., 2:, 1:-1] & padded[..., 1:-1, :-2] &
              padded[..., 1:-1, 2:])
  edge = (fg & ~interior).astype(np.uint8) * 255
  return edge[..., None] if channel else edge
