"""Input validation shared by every metric: clear errors, never a silent number."""

from __future__ import annotations

import numbers

import jax
import numpy as np


def embeddings(x, name: str) -> jax.Array:
  """`x` as a finite float32 (n, d) device array, or ValueError naming `name`."""
  if isinstance(x, jax.core.Tracer):
    raise ValueError(f"{name}: metrics take concrete arrays, not traced values")
  arr = np.asarray(x)
  if arr.ndim != 2:
    raise ValueError(f"{name}: expected a 2-D array (n, d), got shape "
                     f"{arr.shape}")
  if arr.shape[0] == 0 or arr.shape[1] == 0:
    raise ValueError(f"{name}: is empty (shape {arr.shape})")
  if not (np.issubdtype(arr.dtype, np.floating) or
          np.issubdtype(arr.dtype, np.integer)):
    raise ValueError(f"{name}: expected numbers, got dtype {arr.dtype}")
  arr = arr.astype(np.float32, copy=False)
  # min and max propagate NaN and show inf without a temporary the size of
  # the data; only a failing set pays for locating the first bad row.
  if not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
    bad = ~np.isfinite(arr)
    row = int(np.argwhere(bad)[0][0])
    raise ValueError(f"{name}: contains NaN or inf ({int(bad.sum())} values; "
                     f"first in row {row})")
  # device_put: on CPU one copy (none for 64-byte aligned arrays), where
  # jnp.asarray makes two.
  return jax.device_put(arr)


def same_dim(real: jax.Array, fake: jax.Array) -> None:
  if real.shape[1] != fake.shape[1]:
    raise ValueError(f"fake: has {fake.shape[1]} features per point, real has "
                     f"{real.shape[1]}; feature sizes must match")


def positive_int(value, name: str) -> int:
  if not isinstance(value, numbers.Integral) or isinstance(value, bool) or (
      value < 1):
    raise ValueError(f"{name}={value!r} must be a positive integer")
  return int(value)


def enough_points(n: int, k: int, name: str) -> None:
  if n < k + 1:
    raise ValueError(f"{name}: has {n} points; k={k} needs at least k + 1 = "
                     f"{k + 1}")


def pair(real, fake, k: int = 0):
  """Both sets validated: finite 2-D float32, same feature size, > k points."""
  real = embeddings(real, "real")
  fake = embeddings(fake, "fake")
  same_dim(real, fake)
  enough_points(real.shape[0], k, "real")
  enough_points(fake.shape[0], k, "fake")
  return real, fake
