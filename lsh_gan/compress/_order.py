"""Exact order statistics of |w| without sorting.

Non-negative float32 values order like their int32 bit patterns (float64 like
int64), so the k-th smallest value is the smallest bit pattern t with
count(bits <= t) >= k: a bisection over 31 bits (63 for float64). Each step is
one streaming count over the data, which on CPU is several times cheaper than
sorting 100M values, and it works across many leaves at once (global pruning)
without concatenating them.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

# Per bit-pattern dtype: the float it encodes, the pattern of +inf (every
# finite |w| is below it) and the bisection steps that cover [0, inf].
_LAYOUT = {
    jnp.dtype(jnp.int32): (jnp.float32, 0x7F800000, 31),
    jnp.dtype(jnp.int64): (jnp.float64, 0x7FF0000000000000, 63),
}


def compute_dtype(*dtypes):
  """float64 if any of `dtypes` is float64, else float32 (the compute type)."""
  if any(jnp.dtype(d) == jnp.float64 for d in dtypes):
    return jnp.float64
  return jnp.float32


def magnitude_bits(x, dtype=None) -> jax.Array:
  """|x| as int bit patterns (monotone in |x|), flattened.

  Args:
    x: a float tensor.
    dtype: float32 (int32 patterns) or float64 (int64 patterns); default
      `compute_dtype` of x.
  """
  dtype = compute_dtype(x.dtype) if dtype is None else dtype
  a = jnp.abs(x.astype(dtype)).reshape(-1)
  return jax.lax.bitcast_convert_type(
      a, jnp.int64 if jnp.dtype(dtype) == jnp.float64 else jnp.int32)


def kth_smallest_bits(bit_arrays: Sequence[jax.Array], ks) -> jax.Array:
  """Bit patterns of the k-th smallest values (1-based) over several arrays.

  Args:
    bit_arrays: arrays from `magnitude_bits`, all of one dtype; they are
      treated as one concatenated array.
    ks: int or sequence of ints in [1, total size] (static).

  Returns:
    Array of shape (len(ks),), of the bit arrays' dtype: for each k the bit
    pattern of the k-th smallest value.
  """
  bits_dtype = jnp.dtype(bit_arrays[0].dtype)
  _, inf_bits, steps = _LAYOUT[bits_dtype]
  ks = jnp.asarray(ks, jnp.int32).reshape(-1)
  lo = jnp.zeros(ks.shape, bits_dtype)
  hi = jnp.full(ks.shape, inf_bits, bits_dtype)

  def count_le(t):
    total = jnp.zeros_like(ks)
    for b in bit_arrays:
      total = total + jnp.sum(b[None, :] <= t[:, None], axis=1, dtype=jnp.int32)
    return total

  def step(_, bounds):
    lo, hi = bounds
    mid = lo + (hi - lo) // 2
    enough = count_le(mid) >= ks
    return jnp.where(enough, lo, mid + 1), jnp.where(enough, mid, hi)

  lo, _ = jax.lax.fori_loop(0, steps, step, (lo, hi))
  return lo


def bits_to_float(bits) -> jax.Array:
  return jax.lax.bitcast_convert_type(bits, _LAYOUT[jnp.dtype(bits.dtype)][0])
