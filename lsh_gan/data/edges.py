"""Edge maps of images: the condition of the paired edges2digits dataset.

`outline` marks, in a binarized image, every foreground pixel that has a
background pixel among its four neighbours (the foreground minus its
erosion by a 3x3 cross; outside the image counts as background): the
one-pixel-wide inner boundary of each stroke. Pure numpy, deterministic.
"""

from __future__ import annotations

import numpy as np


def outline(images: np.ndarray, threshold: int = 128) -> np.ndarray:
  """The inner boundary of the foreground of single-channel uint8 images.

  Args:
    images: uint8 array of one image (H, W), or of several, (n, H, W) or
      (n, H, W, 1); foreground is >= threshold.
    threshold: the binarization level, 1..255.

  Returns:
    uint8 array of the same shape: 255 on the boundary, 0 elsewhere.

  Raises:
    ValueError: for a non-uint8 array, another shape (one image with a
      channel axis, (H, W, 1), is refused: it reads as n images of width
      1; several channels are refused), or a threshold outside 1..255.
  """
  images = np.asarray(images)
  if images.dtype != np.uint8:
    raise ValueError(f"images must be a uint8 array, got {images.dtype}")
  if not (images.ndim == 2 or (images.ndim == 3 and images.shape[-1] != 1)
          or (images.ndim == 4 and images.shape[-1] == 1)):
    raise ValueError(f"images of shape {images.shape}: must be (H, W), "
                     "(n, H, W) or (n, H, W, 1), one channel")
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
