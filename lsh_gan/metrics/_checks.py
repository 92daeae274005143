"""Input validation shared by every metric: clear errors, never a silent number.

Also the units metrics compute in. Precision, recall, density and coverage do
not depend on the scale of the embeddings, but float32 squared distances
overflow above about 1e19 and lose everything below about 1e-19. A set whose
largest magnitude lies outside [2^-SMALL_EXPONENT, 2^LARGE_EXPONENT] is
therefore divided by a power of two 2^e before anything is computed: an exact
operation in binary floating point, so the numbers are those of the unscaled
computation, only without overflow or underflow. The division is as small as
keeps squares finite (a huge set's largest value lands near
2^LARGE_EXPONENT, a tiny set's near 1), so the bulk of a set with a few huge
outliers keeps its resolution. Sets inside the range are used as they are (no
copy).
"""

from __future__ import annotations

import math
import numbers

import jax
import numpy as np

# Magnitudes up to 2^50 keep float32 squared norms below 2^(101 + log2 d),
# finite for any d < 2^26; down to 2^-20 they keep structure 2^40 times
# finer than the set's extent above float32's smallest normal number.
LARGE_EXPONENT = 50
SMALL_EXPONENT = 20
# A fake set whose largest value, in the units the real set is computed in,
# lies beyond 2^±this cannot share one float32 computation with it: the
# centre of one, expressed in the other's units, could overflow. (A real set
# inside the safe range is computed in units of 1, so the ratio of the two
# sets' magnitudes allowed is up to 2^(this + its own exponent).)
MAX_EXPONENT_GAP = 100


class DegenerateError(ValueError):
  """A set has no structure at float32 resolution (e.g. identical points).

  Raised where a metric needs a set's own k-NN distances (a default LSH
  bucket width) and they are 0: within float32 rounding of the data's scale.
  Callers can catch it and pass an explicit width instead.
  """


def host_embeddings(x, name: str) -> tuple[np.ndarray, float]:
  """`x` as a finite (n, d) numpy array and its largest |value|.

  The array is float32, except a wider float array, which is kept as it is
  for `to_units` to scale (its magnitude may lie outside float32's range)
  and convert in one pass.

  Raises:
    ValueError naming `name` when x is not a finite 2-D array of numbers.
  """
  if isinstance(x, jax.core.Tracer):
    raise ValueError(f"{name}: metrics take concrete arrays, not traced values")
  try:
    arr = np.asarray(x)
  except (ValueError, TypeError) as err:  # ragged nested lists
    raise ValueError(f"{name}: cannot be read as a 2-D array of numbers "
                     f"(rows of unequal length?): {err}") from None
  if arr.dtype == object:
    raise ValueError(f"{name}: cannot be read as a 2-D array of numbers "
                     "(rows of unequal length, or non-numbers?)")
  check_layout(arr.shape, arr.dtype, name)
  wide = np.issubdtype(arr.dtype, np.floating) and arr.dtype.itemsize > 4
  values = arr if wide else arr.astype(np.float32, copy=False)
  # min and max propagate NaN and show inf without a temporary the size of
  # the data; only a failing set pays for locating the first bad row.
  low, high = values.min(), values.max()
  if not (np.isfinite(low) and np.isfinite(high)):
    bad = ~np.isfinite(values)
    row = int(np.argwhere(bad)[0][0])
    raise ValueError(f"{name}: contains NaN or inf ({int(bad.sum())} values; "
                     f"first in row {row})")
  return values, max(-float(low), float(high))


def check_layout(shape, dtype, name: str) -> None:
  """A set is 2-D, not empty, and of numbers; else a ValueError naming it."""
  if len(shape) != 2:
    raise ValueError(f"{name}: expected a 2-D array (n, d), got shape "
                     f"{tuple(shape)}")
  if shape[0] == 0 or shape[1] == 0:
    raise ValueError(f"{name}: is empty (shape {tuple(shape)})")
  # jax's issubdtype also knows bfloat16 and the other ml_dtypes floats.
  if not (jax.numpy.issubdtype(dtype, np.floating) or
          jax.numpy.issubdtype(dtype, np.integer)):
    raise ValueError(f"{name}: expected numbers, got dtype {dtype}")


def magnitude_exponent(max_abs: float) -> int:
  """round(log2(max_abs)), or 0 for an all-zero set."""
  return round(math.log2(max_abs)) if max_abs > 0 else 0


def unit_exponent(max_abs: float) -> int:
  """e such that a set is computed as x / 2^e: 0 inside the safe range."""
  e = magnitude_exponent(max_abs)
  if e > LARGE_EXPONENT:
    return e - LARGE_EXPONENT
  return own_scale(e)


def own_scale(own: int) -> int:
  """The exponent at which a fake set of own exponent `own` (`fake_set`) is
  read alone: `own` when the set is so much smaller than the reference that
  its distances would underflow in the reference's units, else 0 (read in
  the shared units)."""
  return own if own < -SMALL_EXPONENT else 0


def to_units(arr: np.ndarray, exponent: int, source=None) -> jax.Array:
  """arr / 2^exponent, float32, on the device (exact for normal numbers).

  The result owns its memory, so a caller's array changed later changes
  nothing computed from it. On CPU that is one pass into a 64-byte aligned
  buffer, which the device array then shares (`jax.device_put` copies any
  other buffer again: 0.3-0.6 s at 50,000 x 2,048 on 2 cores, where the
  pass costs 0.05-0.1 s). Even a jax array `source` (arr's origin) is
  copied on CPU: it may share an aligned numpy buffer of the caller's. Off
  CPU a float32 jax array in units of 1 is used as it is.
  """
  on_cpu = jax.default_backend() == "cpu"
  if (not on_cpu and isinstance(source, jax.Array) and
      source.dtype == np.float32 and not exponent):
    return source
  if not on_cpu:
    if exponent:
      arr = np.ldexp(arr, -exponent)
    return jax.device_put(arr.astype(np.float32, copy=False))
  out = _aligned_float32(arr.shape)
  if exponent:
    np.ldexp(arr, -exponent, out=out, casting="same_kind")
  else:
    out[...] = arr
  return jax.device_put(out)


def _aligned_float32(shape: tuple[int, ...]) -> np.ndarray:
  """An uninitialised float32 array whose data starts on a 64-byte line."""
  nbytes = math.prod(shape) * 4
  buffer = np.empty(nbytes + 64, np.uint8)
  start = -buffer.ctypes.data % 64
  return buffer[start:start + nbytes].view(np.float32).reshape(shape)


def reference_set(x, name: str = "real") -> tuple[jax.Array, int]:
  """A validated reference set in its own units: (x / 2^e, e)."""
  arr, max_abs = host_embeddings(x, name)
  exponent = unit_exponent(max_abs)
  return to_units(arr, exponent, x), exponent


def fake_set(x, dim: int, real_exponent: int, name: str = "fake"):
  """A validated set scored against a reference in units 2^real_exponent.

  Returns (x / 2^(real_exponent + shift), shift, own_exponent): shift is 0
  unless x is so much larger than the reference that its squared distances
  would overflow in the reference's units; then both sets are computed in
  units 2^shift larger, just enough to keep x's values below
  2^LARGE_EXPONENT, and the reference's cached quantities are divided by
  2^shift (exact). own_exponent is round(log2(max |x|)) in those units: a
  set far smaller than the reference (own_exponent < -SMALL_EXPONENT) needs
  its own scale for quantities read from it alone (an LSH width).

  Raises:
    ValueError: bad input, a feature size other than `dim`, or magnitudes
      more than 2^MAX_EXPONENT_GAP apart.
  """
  arr, max_abs = host_embeddings(x, name)
  shift, own = fake_units(arr.shape[1], max_abs, dim, real_exponent, name)
  return to_units(arr, real_exponent + shift, x), shift, own


def fake_units(features: int, max_abs: float, dim: int, real_exponent: int,
               name: str = "fake") -> tuple[int, int]:
  """(shift, own exponent) of `fake_set` for a set of `features` columns
  and largest |value| max_abs (wherever it is held).

  Raises:
    ValueError: a feature size other than `dim`, or magnitudes more than
      2^MAX_EXPONENT_GAP apart.
  """
  if features != dim:
    raise ValueError(f"{name}: has {features} features per point, real "
                     f"has {dim}; feature sizes must match")
  relative = magnitude_exponent(max_abs) - real_exponent if max_abs else 0
  if abs(relative) > MAX_EXPONENT_GAP:
    raise ValueError(
        f"{name}: its largest value ({max_abs:.3g}) is about 2^{relative} in "
        f"the units the real set is computed in (2^{real_exponent}); beyond "
        f"2^±{MAX_EXPONENT_GAP} the two sets cannot be compared in float32")
  shift = max(0, relative - LARGE_EXPONENT)
  return shift, relative - shift


def positive_int(value, name: str) -> int:
  if not isinstance(value, numbers.Integral) or isinstance(value, bool) or (
      value < 1):
    raise ValueError(f"{name}={value!r} must be a positive integer")
  return int(value)


def positive_float(value, name: str) -> float:
  """A finite number > 0 as float; else ValueError naming it."""
  if not isinstance(value, numbers.Real) or isinstance(value, bool) or (
      not math.isfinite(value)) or value <= 0:
    raise ValueError(f"{name}={value!r} must be a finite number > 0")
  return float(value)


def fraction(value, name: str) -> float:
  """A number strictly between 0 and 1 as float; else ValueError naming it."""
  if not isinstance(value, numbers.Real) or isinstance(value, bool) or not (
      0 < value < 1):
    raise ValueError(f"{name}={value!r} must be a number in (0, 1)")
  return float(value)


def seed(value, name: str = "seed") -> int:
  """A seed: an integer >= 0 (numpy's generators refuse negative ones)."""
  if not isinstance(value, numbers.Integral) or isinstance(value, bool) or (
      value < 0):
    raise ValueError(f"{name}={value!r} must be an integer >= 0")
  return int(value)


def enough_points(n: int, k: int, name: str) -> None:
  if n < k + 1:
    raise ValueError(f"{name}: has {n} points; k={k} needs at least k + 1 = "
                     f"{k + 1}")
