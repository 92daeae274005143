"""Uniform k-bit quantizer math: integer codes, scales, and dequantization.

Both the fake-quantizing transform and real packed storage go through
`quantize_codes` then `dequantize`, so ``unpack(pack(w))`` and ``quantize(w)``
are the same float operations on the same integers: bit-identical.

Codes are unsigned: symmetric b >= 2 stores q + Q with q in [-Q, Q] and
Q = 2^(b-1) - 1; asymmetric stores q in [0, 2^b - 1] with an integer zero point;
1-bit stores the sign bit (w >= 0).
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


def accurate_mean(x, axis: int | None = None) -> jax.Array:
  """Mean over all axes but `axis` (shape () or (C,)), summed blockwise.

  Computed in `_order.compute_dtype` of x (float32, or float64 for float64).
  XLA's CPU reductions accumulate almost sequentially, so a float32 mean over
  n entries drifts like n * eps (8e-6 relative at n = 1,200 already). Summing
  blocks of 256, then blocks of the block sums, keeps the error near
  sqrt(256) * eps per level at any n.
  """
  x = x.astype(_order.compute_dtype(x.dtype))
  rows = x.reshape(1, -1) if axis is None else jnp.moveaxis(x, axis, 0).reshape(
      x.shape[axis], -1)
  n = rows.shape[1]
  while rows.shape[1] > _BLOCK:
    blocks = -(-rows.shape[1] // _BLOCK)
    rows = jnp.pad(rows, ((0, 0), (0, blocks * _BLOCK - rows.shape[1])))
    rows = rows.reshape(rows.shape[0], blocks, _BLOCK).sum(axis=2)
  mean = rows.sum(axis=1) / n
  return mean.reshape(()) if axis is None else mean


def quantize_codes(x, bits: int, symmetric: bool, axis: int | None):
  """Integer codes and scale (and zero point) of a tensor.

  Args:
    x: the tensor (any float dtype; computed in float32, or in float64 for a
      float64 tensor).
    bits: 1..16.
    symmetric: symmetric (zero-centred) or asymmetric (affine) grid.
    axis: a normalized axis with one scale per index along it, or None for one
      scale per tensor.

  Returns:
    (codes uint32 of x's shape, scale of the compute dtype and shape () or
    (C,), zero point int32 of the scale's shape or None when symmetric).
  """
  x = x.astype(_order.compute_dtype(x.dtype))
  axes = _reduce_axes(x.ndim, axis)
  zero_point = None
  if symmetric and bits == 1:
    # Binarization with scale: w -> mean|w| * sign(w), where sign(0) = +1 so
    # that the result has two values and fits one bit.
    scale = _broadcast(accurate_mean(jnp.abs(x), axis), x.ndim, axis)
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
               axis: int | None) -> jax.Array:
  """Values of integer codes in the scale's dtype (inverse of `quantize_codes`)."""
  ndim = codes.ndim
  s = _broadcast(scale, ndim, axis)
  if symmetric and bits == 1:
    return jnp.where(codes == 1, s, -s)
  if symmetric:
    offset = 2 ** (bits - 1) - 1
  else:
    offset = _broadcast(zero_point, ndim, axis)
  # Integer subtraction, exact conversion, one rounding in the product.
  return (codes.astype(jnp.int32) - offset).astype(s.dtype) * s


def fake_quantize(x, bits: int, symmetric: bool, axis: int | None):
  """Quantize-dequantize in x's dtype."""
  codes, scale, zero_point = quantize_codes(x, bits, symmetric, axis)
  return dequantize(codes, scale, zero_point, bits, symmetric,
                    axis).astype(x.dtype)
