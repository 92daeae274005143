"""k-bit quantizer math: integer codes, scales or codebooks, dequantization.

Both the fake-quantizing transform and real packed storage go through
`quantize_codes` then `dequantize`, so ``unpack(pack(w))`` and ``quantize(w)``
are the same float operations on the same integers: bit-identical.

Codes are unsigned. Grids:
- "uniform", symmetric, b >= 2: q + Q with q in [-Q, Q], Q = 2^(b-1) - 1
  (zero is a level); asymmetric: q in [0, 2^b - 1] with an integer zero
  point (zero is a level); symmetric at b = 1: the sign bit (w >= 0), value
  mean|w| * sign.
- "zero_free": 2^b levels (c - H + 1/2) * s, c in [0, 2^b - 1], H = 2^(b-1),
  s = max|w| / (H - 1/2): at 2 bits {-3/2, -1/2, 1/2, 3/2} * s.
- "kmeans": a codebook of 2^b values fitted by Lloyd's algorithm (linear
  initialisation over [min, max], as Deep Compression does), codes index it.

Grids without a zero level (the sign grid, "zero_free", "kmeans") keep
exact zeros at zero (a pruned weight stays pruned) and fit their scale or
codebook to the non-zero entries alone; their storage carries a mask of the
non-zero entries (`needs_mask`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lsh_gan.compress import _order


def normalize_axis(axis: int | None, shape, path: str) -> int | None:
  if axis is None:
    return None
  ndim = len(shape)
  if not -ndim <= axis < ndim:
    raise ValueError(f"axis={axis} is out of range for leaf {path!r} with "
                     f"shape {tuple(shape)}")
  return axis % ndim


def _reduce_axes(ndim: int, axis: int | None):
  if axis is None:
    return None
  return tuple(i for i in range(ndim) if i != axis)


def _broadcast(v, ndim: int, axis: int | None):
  """A stored scale or zero point, shaped to broadcast against the tensor."""
  if axis is None:
    return v
  shape = [1] * ndim
  shape[axis] = -1
  return v.reshape(shape)


_BLOCK = 256


def channel_rows(x, axis: int | None):
  """x as rows: one row of everything (axis None), or one per index along
  `axis` (the channel's entries in row-major order of the other axes)."""
  if axis is None:
    return x.reshape(1, -1)
  return jnp.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)


def from_channel_rows(rows, shape, axis: int | None):
  """Inverse of `channel_rows` for a tensor of `shape`."""
  if axis is None:
    return rows.reshape(shape)
  moved = (shape[axis],) + tuple(s for i, s in enumerate(shape) if i != axis)
  return jnp.moveaxis(rows.reshape(moved), 0, axis)


def accurate_mean(x, axis: int | None = None) -> jax.Array:
  """Mean over all axes but `axis` (shape () or (C,)), summed blockwise.

  Computed in `_order.compute_dtype` of x (float32, or float64 for float64).
  XLA's CPU reductions accumulate almost sequentially, so a float32 mean over
  n entries drifts like n * eps (8e-6 relative at n = 1,200 already). Summing
  blocks of 256, then blocks of the block sums, keeps the error near
  sqrt(256) * eps per level at any n.
  """
  rows = channel_rows(x.astype(_order.compute_dtype(x.dtype)), axis)
  n = rows.shape[1]
  while rows.shape[1] > _BLOCK:
    blocks = -(-rows.shape[1] // _BLOCK)
    rows = jnp.pad(rows, ((0, 0), (0, blocks * _BLOCK - rows.shape[1])))
    rows = rows.reshape(rows.shape[0], blocks, _BLOCK).sum(axis=2)
  mean = rows.sum(axis=1) / n
  return mean.reshape(()) if axis is None else mean


GRIDS = ("uniform", "zero_free", "kmeans")
# Most Lloyd iterations of the k-means codebook; it stops earlier at a fixed
# point (no centre moves). 1-D Lloyd converges slowly with many clusters
# (16 clusters on 3,200 Gaussian weights: about 100 iterations).
KMEANS_ITERATIONS = 300
KMEANS_MAX_BITS = 8


def needs_mask(bits: int, symmetric: bool, grid: str) -> bool:
  """Whether the grid lacks a zero level (exact zeros are then masked)."""
  return grid != "uniform" or (symmetric and bits == 1)


def midpoints(centres):
  """Boundaries between sorted centres (halved first: no overflow)."""
  return centres[:-1] * 0.5 + centres[1:] * 0.5


def _kmeans_codebook(x, keep, bits: int):
  """Lloyd's k-means codebook of the `keep` entries of flat `x`: (K,) sorted."""
  k = 2 ** bits
  w = keep.astype(x.dtype)
  big = jnp.asarray(jnp.finfo(x.dtype).max, x.dtype)
  lo = jnp.min(jnp.where(keep, x, big))
  hi = jnp.max(jnp.where(keep, x, -big))
  any_kept = jnp.any(keep)
  lo, hi = jnp.where(any_kept, lo, 0), jnp.where(any_kept, hi, 0)
  centres = lo + (hi - lo) * (jnp.arange(k, dtype=x.dtype) / (k - 1))

  def step(state):
    i, centres, _ = state
    codes = jnp.searchsorted(midpoints(centres), x)
    sums = jax.ops.segment_sum(x * w, codes, k)
    counts = jax.ops.segment_sum(w, codes, k)
    moved = jnp.sort(jnp.where(counts > 0, sums / jnp.maximum(counts, 1),
                               centres))
    return i + 1, moved, jnp.any(moved != centres)

  _, centres, _ = jax.lax.while_loop(
      lambda s: (s[0] < KMEANS_ITERATIONS) & s[2], step,
      (jnp.int32(0), centres, jnp.bool_(True)))
  return centres + jnp.zeros((), x.dtype)  # -0.0 -> +0.0: no signed zero level


def kmeans_codes(x, keep, bits: int):
  """Codes (flat int) and codebook of the k-means grid for flat `x`."""
  codebook = _kmeans_codebook(x, keep, bits)
  codes = jnp.searchsorted(midpoints(codebook), x)
  return codes, codebook


def quantize_codes(x, bits: int, symmetric: bool, axis: int | None,
                   grid: str = "uniform"):
  """Integer codes and scale (and zero point) of a tensor.

  Args:
    x: the tensor (any float dtype; computed in float32, or in float64 for a
      float64 tensor).
    bits: 1..16 (1..8 for "kmeans").
    symmetric: symmetric (zero-centred) or asymmetric (affine) uniform grid.
    axis: a normalized axis with one scale per index along it, or None for one
      scale per tensor.
    grid: one of `GRIDS`.

  Returns:
    (codes uint32 of x's shape, scale of the compute dtype and shape () or
    (C,) -- for "kmeans" the codebook, shape (2^b,) or (C, 2^b) --, zero
    point int32 of the scale's shape or None when symmetric).
  """
  x = x.astype(_order.compute_dtype(x.dtype))
  axes = _reduce_axes(x.ndim, axis)
  zero_point = None
  if grid == "kmeans":
    codes, codebook = jax.vmap(lambda r: kmeans_codes(r, r != 0, bits))(
        channel_rows(x, axis))
    codes = from_channel_rows(codes, x.shape, axis)
    return (codes.astype(jnp.uint32),
            codebook[0] if axis is None else codebook, None)
  if grid == "zero_free":
    half = 2 ** (bits - 1)
    scale = jnp.max(jnp.abs(x), axis=axes, keepdims=True) / (half - 0.5)
    safe = jnp.where(scale > 0, scale, 1.0)
    codes = (jnp.clip(jnp.floor(x / safe), -half, half - 1) + half).astype(
        jnp.uint32)
  elif symmetric and bits == 1:
    # Binarization with scale: w -> mean|w| * sign(w) (sign(0) = +1; exact
    # zeros are masked by the caller), mean|w| over the non-zero entries.
    mean = accurate_mean(jnp.abs(x), axis)
    n = x.size if axis is None else x.size // x.shape[axis]
    nonzero = jnp.sum(x != 0, axis=axes, dtype=jnp.int32)
    # n / nnz is exactly 1 without zeros: the plain mean, bit for bit.
    mean = mean * (n / jnp.maximum(nonzero, 1).astype(mean.dtype))
    scale = _broadcast(mean, x.ndim, axis)
    codes = (x >= 0).astype(jnp.uint32)
  elif symmetric:
    qmax = 2 ** (bits - 1) - 1
    scale = jnp.max(jnp.abs(x), axis=axes, keepdims=True) / qmax
    safe = jnp.where(scale > 0, scale, 1.0)
    codes = (jnp.clip(jnp.round(x / safe), -qmax, qmax) + qmax).astype(
        jnp.uint32)
  else:
    levels = 2 ** bits - 1
    # Widen the range to include 0 so that zero is exactly representable.
    low = jnp.minimum(jnp.min(x, axis=axes, keepdims=True), 0.0)
    high = jnp.maximum(jnp.max(x, axis=axes, keepdims=True), 0.0)
    scale = (high - low) / levels
    safe = jnp.where(scale > 0, scale, 1.0)
    zp = jnp.clip(jnp.round(-low / safe), 0, levels)
    codes = jnp.clip(jnp.round(x / safe) + zp, 0, levels).astype(jnp.uint32)
    zero_point = zp.astype(jnp.int32).reshape(-1 if axis is not None else ())
  scale = scale.reshape(-1 if axis is not None else ())
  return codes, scale, zero_point


def dequantize(codes, scale, zero_point, bits: int, symmetric: bool,
               axis: int | None, grid: str = "uniform") -> jax.Array:
  """Values of integer codes in the scale's dtype (inverse of `quantize_codes`).

  Masked entries (grids without zero) are the caller's to zero.
  """
  ndim = codes.ndim
  if grid == "kmeans":
    if axis is None:
      return scale[codes]
    rows = channel_rows(codes, axis).astype(jnp.int32)
    return from_channel_rows(jnp.take_along_axis(scale, rows, axis=1),
                             codes.shape, axis)
  s = _broadcast(scale, ndim, axis)
  if grid == "zero_free":
    # (c - H + 1/2) * s = (2c - 2H + 1) * (s / 2): exact integers, one
    # rounding in the product.
    odd = 2 * codes.astype(jnp.int32) - 2 ** bits + 1
    return odd.astype(s.dtype) * (s * 0.5)
  if symmetric and bits == 1:
    return jnp.where(codes == 1, s, -s)
  if symmetric:
    offset = 2 ** (bits - 1) - 1
  else:
    offset = _broadcast(zero_point, ndim, axis)
  # Integer subtraction, exact conversion, one rounding in the product.
  return (codes.astype(jnp.int32) - offset).astype(s.dtype) * s


def fake_quantize(x, bits: int, symmetric: bool, axis: int | None,
                  grid: str = "uniform"):
  """Quantize-dequantize in x's dtype (exact zeros kept where the grid has no
  zero level)."""
  codes, scale, zero_point = quantize_codes(x, bits, symmetric, axis, grid)
  values = dequantize(codes, scale, zero_point, bits, symmetric, axis, grid)
  if needs_mask(bits, symmetric, grid):
    values = jnp.where(x != 0, values, jnp.zeros((), values.dtype))
  return values.astype(x.dtype)
