"""Metrics of conditional (image-to-image) generation against its pairs.

Beside the distribution metrics (outputs against targets, in an embedding),
a paired model is judged image by image:

  fidelity     each output against its own ground-truth target: mean
               absolute error (L1), PSNR and SSIM, averaged over images.
  consistency  each output against its own input, where the input is an
               edge map of the target (edges2digits): the outline of the
               output (`lsh_gan.data.edges.outline` of the output
               binarized at the data's midpoint) against the input's edge
               pixels, as precision, recall and F1 pooled over all pixels.

Images are float (n, H, W, C) in [-1, 1] (data range 2), as the datasets
and generators of this project give them.

SSIM is Wang et al.'s (2004): 11x11 Gaussian windows of standard deviation
1.5, K1 = 0.01, K2 = 0.03, population (co)variances, averaged over the
windows that lie inside the image (for 28x28, the 18x18 centres) and over
channels; it agrees with scikit-image's `structural_similarity(...,
gaussian_weights=True, use_sample_covariance=False, data_range=2)` (a test
checks it). PSNR is 10 log10(range^2 / MSE) per image, +inf for an image
equal to its target.

References:
  Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality
  assessment: from error visibility to structural similarity", IEEE TIP
  13(4), 2004.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

DATA_RANGE = 2.0  # images in [-1, 1]
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11


def _images(name: str, x) -> np.ndarray:
  x = np.asarray(x)
  if x.ndim != 4 or x.shape[0] < 1:
    raise ValueError(f"{name} of shape {x.shape}: must be (n, H, W, C) "
                     "images, n >= 1")
  if not np.issubdtype(x.dtype, np.floating):
    raise ValueError(f"{name} of dtype {x.dtype}: must be float images in "
                     "[-1, 1]")
  if not np.all(np.isfinite(x)):
    raise ValueError(f"{name} holds NaN or infinite values")
  return x.astype(np.float32)


def _pair(outputs, targets, names=("outputs", "targets")):
  outputs, targets = _images(names[0], outputs), _images(names[1], targets)
  if outputs.shape != targets.shape:
    raise ValueError(f"{names[0]} {outputs.shape} and {names[1]} "
                     f"{targets.shape} must have one shape (image i of one "
                     "is paired with image i of the other)")
  return outputs, targets


def _window() -> np.ndarray:
  radius = SSIM_WINDOW // 2
  g = np.exp(-0.5 * (np.arange(-radius, radius + 1) / SSIM_SIGMA) ** 2)
  g /= g.sum()
  return np.outer(g, g).astype(np.float32)


@functools.partial(jax.jit, static_argnums=2)
def _per_image(outputs, targets, data_range):
  """(l1, mse, ssim) per image; jitted once per shape."""
  diff = outputs - targets
  axes = (1, 2, 3)
  l1 = jnp.mean(jnp.abs(diff), axis=axes)
  mse = jnp.mean(diff * diff, axis=axes)
  channels = outputs.shape[-1]
  kernel = jnp.tile(jnp.asarray(_window())[:, :, None, None],
                    (1, 1, 1, channels))

  def blur(x):  # valid windows only, channel by channel
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "VALID", feature_group_count=channels,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=jax.lax.Precision.HIGHEST)
  mu_x, mu_y = blur(outputs), blur(targets)
  var_x = blur(outputs * outputs) - mu_x * mu_x
  var_y = blur(targets * targets) - mu_y * mu_y
  cov = blur(outputs * targets) - mu_x * mu_y
  c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
  ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2) /
              ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)))
  return l1, mse, jnp.mean(ssim_map, axis=axes)


def per_image(outputs, targets) -> dict[str, np.ndarray]:
  """{"l1", "psnr", "ssim"}: float64 arrays (n,), one value per pair.

  Raises:
    ValueError: arrays that are not (n, H, W, C) float images of one shape,
      hold NaN or inf, or are smaller than the 11x11 SSIM window.
  """
  outputs, targets = _pair(outputs, targets)
  if min(outputs.shape[1:3]) < SSIM_WINDOW:
    raise ValueError(f"images of {outputs.shape[1]}x{outputs.shape[2]} are "
                     f"smaller than SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window")
  l1, mse, ssim = (np.asarray(v, np.float64) for v in
                   _per_image(outputs, targets, DATA_RANGE))
  with np.errstate(divide="ignore"):
    psnr = np.where(mse > 0, 10 * np.log10(DATA_RANGE ** 2 /
                                           np.maximum(mse, 1e-300)), np.inf)
  return {"l1": l1, "psnr": psnr, "ssim": ssim}


def fidelity(outputs, targets) -> dict[str, float]:
  """{"l1", "psnr", "ssim"}: `per_image`'s values averaged over the pairs
  (PSNR +inf when any output equals its target)."""
  return {k: float(v.mean()) for k, v in per_image(outputs, targets).items()}


def edge_consistency(outputs, conditions) -> dict[str, float]:
  """How well each output's outline matches its input edge map.

  The outline of an output is `lsh_gan.data.edges.outline` of it
  binarized at 0 (the midpoint of [-1, 1], 128 in uint8, as the dataset's
  edge maps were made); a condition's edge pixels are those above 0.
  Returns {"edge_precision", "edge_recall", "edge_f1"}: the fraction of
  output outline pixels that are input edge pixels, of input edge pixels
  that the output's outline has, and their harmonic mean, each pooled over
  all pixels of all pairs (0 where there is nothing to count). The targets
  of edges2digits score 1, 1, 1.

  Raises:
    ValueError: arrays that are not (n, H, W, 1) float images of one shape.
  """
  from lsh_gan.data import edges  # pylint: disable=g-import-not-at-top
  outputs, conditions = _pair(outputs, conditions, ("outputs", "conditions"))
  if outputs.shape[-1] != 1:
    raise ValueError(f"outputs of shape {outputs.shape}: edge consistency "
                     "needs single-channel images")
  # >= 0 in [-1, 1] is >= 127.5 in [0, 255]: the dataset's threshold 128 on
  # uint8 images (whose values are whole numbers).
  binary = np.where(outputs >= 0.0, 255, 0).astype(np.uint8)
  drawn = edges.outline(binary) > 0
  given = conditions > 0.0
  both = float(np.sum(drawn & given))
  precision = both / drawn.sum() if drawn.any() else 0.0
  recall = both / given.sum() if given.any() else 0.0
  f1 = (2 * precision * recall / (precision + recall)
        if precision + recall > 0 else 0.0)
  return {"edge_precision": float(precision), "edge_recall": float(recall),
          "edge_f1": float(f1)}
