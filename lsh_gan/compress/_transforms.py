"""The compression transforms: clip, quantize, prune."""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.compress import _base
from lsh_gan.compress import _order
from lsh_gan.compress import _packing
from lsh_gan.compress import _quantize
from lsh_gan.compress import _tree


def _is_real(value) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(
      value, (bool, np.bool_))


# -- clip ----------------------------------------------------------------------


def percentile_of_magnitude(x, percentile: float) -> jax.Array:
  """The `percentile` of |x|, with numpy's default (linear) interpolation.

  In x's compute dtype (`_order.compute_dtype`); x must not be empty.
  """
  n = x.size
  h = (n - 1) * percentile / 100.0
  i = math.floor(h)
  frac = h - i
  j = min(i + 1, n - 1)
  bits = _order.kth_smallest_bits([_order.magnitude_bits(x)], [i + 1, j + 1])
  a, b = _order.bits_to_float(bits)
  diff = b - a
  # numpy's _lerp: interpolate from the nearer end to stay monotone.
  return a + diff * frac if frac < 0.5 else b - diff * (1.0 - frac)


class _Clip(_base.LeafTransform):
  name = "clip"
  STRING_IS_STATE = True

  def __init__(self, args, threshold, percentile, num_std):
    super().__init__(args)
    self.threshold = threshold
    self.percentile = percentile
    self.num_std = num_std

  def _leaf(self, x, path):
    xc = x.astype(_order.compute_dtype(x.dtype))
    if self.threshold is not None:
      c = jnp.asarray(self.threshold, xc.dtype)
    elif self.percentile is not None:
      c = percentile_of_magnitude(xc, self.percentile)
    else:
      centred = xc - _quantize.accurate_mean(xc)
      c = self.num_std * jnp.sqrt(_quantize.accurate_mean(centred * centred))
    return jnp.clip(xc, -c, c).astype(x.dtype)


def clip(threshold: float | None = None, *, percentile: float | None = None,
         num_std: float | None = None) -> _base.Transform:
  """Clips each selected leaf to [-c, c].

  c is `threshold`, or per tensor the `percentile` of |w| (numpy's linear
  interpolation), or `num_std` times the tensor's standard deviation
  (population, ddof=0). Give exactly one. Computed in float32 (float64 for
  float64 leaves), cast back to the leaf dtype; zero-size leaves pass through.

  Args:
    threshold: absolute bound c >= 0.
    percentile: in (0, 100]; 100 leaves the tensor unchanged.
    num_std: > 0.

  Returns:
    The transform (default selection: floating leaves with ndim >= 2).

  Raises:
    ValueError: if not exactly one of the three is given, or one is out of
      range or not finite.

  Examples:
    >>> import numpy as np
    >>> w = {"kernel": np.array([[-3.0, 0.5], [1.0, 2.0]], np.float32)}
    >>> np.asarray(clip(1.5)(w)["kernel"]).tolist()
    [[-1.5, 0.5], [1.0, 1.5]]
  """
  given = {k: v for k, v in (("threshold", threshold),
                             ("percentile", percentile),
                             ("num_std", num_std)) if v is not None}
  if len(given) != 1:
    raise ValueError("clip: give exactly one of threshold, percentile, "
                     f"num_std; got {given or 'none'}")
  (name, value), = given.items()
  if not _is_real(value) or not math.isfinite(value):
    raise ValueError(f"{name}={value!r} must be a finite real number")
  value = _base.python_number(value)
  given = {name: value}
  threshold, percentile, num_std = (given.get(k) for k in (
      "threshold", "percentile", "num_std"))
  if name == "threshold" and value < 0:
    raise ValueError(f"threshold={value!r} must be >= 0")
  if name == "percentile" and not 0 < value <= 100:
    raise ValueError(f"percentile={value!r} must be in (0, 100]")
  if name == "num_std" and value <= 0:
    raise ValueError(f"num_std={value!r} must be > 0")
  return _Clip(given, threshold, percentile, num_std)


# -- quantize ------------------------------------------------------------------


class _Quantize(_base.LeafTransform):
  name = "quantize"
  STRING_IS_STATE = True

  def __init__(self, args, bits, symmetric, axis, grid):
    super().__init__(args)
    self.bits = bits
    self.symmetric = symmetric
    self.axis = axis
    self.grid = grid

  def _leaf(self, x, path):
    axis = _quantize.normalize_axis(self.axis, x.shape, path)
    return _quantize.fake_quantize(x, self.bits, self.symmetric, axis,
                                   self.grid)

  def _leaf_pack(self, x, path):
    axis = _quantize.normalize_axis(self.axis, x.shape, path)
    return _packing.pack_array(x, self.bits, self.symmetric, axis, self.grid)


def quantize(bits: int, *, symmetric: bool = True, axis: int | None = None,
             grid: str = "uniform") -> _base.Transform:
  """k-bit quantize-dequantize on a uniform, zero-free or k-means grid.

  grid="uniform", symmetric (default): s = max|w| / (2^(b-1) - 1),
  w -> s * clip(round(w/s), -(2^(b-1) - 1), 2^(b-1) - 1): 2^b - 1 levels,
  zero exact (so 2 bits is ternary, {-1, 0, 1} * max|w|). bits=1 is
  binarization with scale: w -> mean|w| * sign(w), two values.
  Asymmetric: the range [min(w, 0), max(w, 0)] on 2^b levels,
  s = (max - min) / (2^b - 1), integer zero point z = round(-min/s),
  w -> s * (clip(round(w/s) + z, 0, 2^b - 1) - z): zero exact.
  grid="zero_free": all 2^b codes used, symmetric about zero without a zero
  level: s = max|w| / (2^(b-1) - 1/2), w -> s * (floor(w/s) + 1/2) clipped to
  the outermost levels; at 2 bits {-3/2, -1/2, 1/2, 3/2} * s.
  grid="kmeans": a codebook of 2^b values per tensor (per channel with
  `axis`), fitted to the weights by Lloyd's algorithm (k-means in one
  dimension from centres spread evenly over [min, max], as Deep Compression
  initialises them, until no centre moves or 300 iterations); each weight
  takes the nearest value (a tie to the lower). bits 1..8.
  Grids without a zero level (1-bit, "zero_free", "kmeans") keep exact zeros
  at zero, so a pruned weight stays pruned, and fit their scale or codebook
  to the non-zero entries; `pack` then stores a mask of the zeros.
  Rounding is half to even. Computed in float32 (float64 for float64 leaves)
  and cast back to the leaf dtype; zero-size leaves pass through. As XLA
  does for a division by a broadcast scalar, w/s is evaluated as w * (1/s),
  which can differ from the exact quotient in the last bit (so at a rounding
  tie, rarely, by one level).

  Args:
    bits: 1..16 (1..8 for grid="kmeans").
    symmetric: symmetric or asymmetric uniform grid (the other grids are
      symmetric about zero or fitted: only True is valid with them).
    axis: keep one scale (codebook) per index along this axis (per-channel);
      Flax kernels are HWIO / (in, out), so output channels are
      ``axis=-1``. None: one per tensor.
    grid: "uniform", "zero_free" or "kmeans".

  Returns:
    The transform (default selection: floating leaves with ndim >= 2). Its
    `pack` method stores the selected leaves as bit-packed codes (with a
    mask of the exact zeros where that is smaller, or where the grid has no
    zero level).

  Raises:
    ValueError: for bits outside 1..16 (1..8 for "kmeans"), a non-bool
      `symmetric`, symmetric=False with another grid than "uniform", a
      non-int `axis`, an unknown grid; when applied, for an axis out of
      range for a leaf.

  Examples:
    >>> import numpy as np
    >>> w = {"kernel": np.array([[-1.0, -0.4], [0.1, 0.7]], np.float32)}
    >>> np.asarray(quantize(2)(w)["kernel"]).tolist()
    [[-1.0, 0.0], [0.0, 1.0]]
  """
  if not isinstance(bits, numbers.Integral) or isinstance(bits, bool) or not (
      1 <= bits <= 16):
    raise ValueError(f"bits={bits!r} must be an integer in 1..16")
  if not isinstance(symmetric, (bool, np.bool_)):
    raise ValueError(f"symmetric={symmetric!r} must be True or False")
  symmetric = bool(symmetric)
  if axis is not None and (not isinstance(axis, numbers.Integral) or
                           isinstance(axis, bool)):
    raise ValueError(f"axis={axis!r} must be an int or None")
  if grid not in _quantize.GRIDS:
    raise ValueError(f"grid={grid!r} must be one of "
                     f"{', '.join(map(repr, _quantize.GRIDS))}")
  if grid != "uniform" and not symmetric:
    raise ValueError(f"symmetric=False is a uniform grid's option; "
                     f"grid={grid!r} takes symmetric=True")
  if grid == "kmeans" and bits > _quantize.KMEANS_MAX_BITS:
    raise ValueError(f"bits={bits!r}: grid='kmeans' takes 1.."
                     f"{_quantize.KMEANS_MAX_BITS} bits (a codebook of at "
                     f"most {2 ** _quantize.KMEANS_MAX_BITS} values)")
  bits = int(bits)
  axis = None if axis is None else int(axis)
  args = _base._canonical_args(quantize, bits=bits, symmetric=symmetric,  # pylint: disable=protected-access
                               axis=axis, grid=grid)
  return _Quantize(args, bits, symmetric, axis, grid)


def pack(params, bits: int, *, symmetric: bool = True, axis: int | None = None,
         grid: str = "uniform", mask: _tree.Mask | None = None):
  """Quantizes the selected leaves into real low-bit storage.

  Same as ``masked(quantize(bits, symmetric=symmetric, axis=axis,
  grid=grid), mask).pack(params)`` (without `mask`: the default selection,
  floating leaves with ndim >= 2).

  Args:
    params: a parameter tree.
    bits: 1..16.
    symmetric: symmetric or asymmetric grid (see `quantize`).
    axis: per-channel scales along this axis; None for one scale per tensor.
    grid: "uniform", "zero_free" or "kmeans" (see `quantize`).
    mask: optional leaf selection (see `masked`).

  Returns:
    The tree with `PackedArray` in place of each selected leaf.

  Raises:
    ValueError: for bad arguments (see `quantize`) or non-finite weights.

  Examples:
    >>> import numpy as np
    >>> from lsh_gan import compress
    >>> params = {"w": np.ones((64, 64), np.float32), "b": np.zeros(64)}
    >>> packed = compress.pack(params, 4)
    >>> compress.size_bytes(packed) < compress.size_bytes(params) / 5
    True
  """
  t = quantize(bits, symmetric=symmetric, axis=axis, grid=grid)
  if mask is not None:
    t = _base.masked(t, mask)
  return t.pack(params)


# -- prune ---------------------------------------------------------------------


def _prune_group(xs, sparsity: float):
  """Zeroes exactly round(n * sparsity) smallest-|w| entries over `xs` jointly.

  Ties at the threshold go to the lowest index in the concatenation of `xs`
  (in order, each flattened row-major).
  """
  n = sum(x.size for x in xs)
  k = round(n * sparsity)
  if k == 0:
    return list(xs)
  dtype = _order.compute_dtype(*(x.dtype for x in xs))
  bits = [_order.magnitude_bits(x, dtype) for x in xs]
  threshold = _order.kth_smallest_bits(bits, [k])[0]
  n_below = sum(jnp.sum(b < threshold, dtype=jnp.int32) for b in bits)
  n_at_most = sum(jnp.sum(b <= threshold, dtype=jnp.int32) for b in bits)

  def without_ties(bits):
    return [b <= threshold for b in bits]

  def with_ties(bits):
    # Only `k - n_below` of the entries equal to the threshold go, by index.
    masks, offset = [], jnp.int32(0)
    for b in bits:
      equal = b == threshold
      rank = jnp.cumsum(equal, dtype=jnp.int32) + offset
      masks.append((b < threshold) | (equal & (rank <= k - n_below)))
      offset = offset + jnp.sum(equal, dtype=jnp.int32)
    return masks

  masks = jax.lax.cond(n_at_most == k, without_ties, with_ties, bits)
  return [jnp.where(m.reshape(x.shape), jnp.zeros((), x.dtype), x)
          for m, x in zip(masks, xs)]


class _Prune(_base.LeafTransform):
  name = "prune"
  STRING_IS_STATE = True

  def __init__(self, args, sparsity, scope):
    super().__init__(args)
    self.sparsity = sparsity
    self.scope = scope

  def _apply(self, leaves, ctx, selected, pack):
    chosen = self._touched(leaves, ctx, selected)
    out = list(leaves)
    dense = [_packing.dense(leaves[i]) for i in chosen]
    if self.scope == "leaf":
      pruned = [_prune_group([x], self.sparsity)[0] for x in dense]
    else:
      pruned = _prune_group(dense, self.sparsity)
    for i, y in zip(chosen, pruned):
      if pack and isinstance(leaves[i], _packing.PackedArray):
        # A quantized leaf keeps its codes; the pruned entries are masked.
        out[i] = _packing.with_zeros(leaves[i], y != 0)
      else:
        out[i] = y
    return out


def prune(sparsity: float, *, scope: str = "leaf") -> _base.Transform:
  """Zeroes the smallest-|w| entries: exactly round(n * sparsity) of them.

  With ``scope="leaf"`` n is each tensor's size; with ``scope="global"`` the
  selected tensors are ranked together by |w| (one threshold for the model).
  Ties at the threshold are broken by index (row-major, leaves in tree
  order): the lower index is pruned first. round() is half to even.
  Magnitudes are ranked in float32 (float64 if a selected leaf is float64);
  zero-size leaves pass through.

  Args:
    sparsity: fraction to zero, in [0, 1).
    scope: "leaf" or "global".

  Returns:
    The transform (default selection: floating leaves with ndim >= 2).

  Raises:
    ValueError: for sparsity outside [0, 1) or an unknown scope.

  Examples:
    >>> import numpy as np
    >>> w = {"kernel": np.array([[0.5, -0.25], [0.75, -1.0]], np.float32)}
    >>> np.asarray(prune(0.5)(w)["kernel"]).tolist()
    [[0.0, 0.0], [0.75, -1.0]]
  """
  if not _is_real(sparsity) or not 0 <= sparsity < 1:
    raise ValueError(f"sparsity={sparsity!r} must be a number in [0, 1)")
  sparsity = _base.python_number(sparsity)
  if scope not in ("leaf", "global"):
    raise ValueError(f"scope={scope!r} must be 'leaf' or 'global'")
  args = _base._canonical_args(prune, sparsity=sparsity, scope=scope)  # pylint: disable=protected-access
  return _Prune(args, sparsity, scope)


_base.register("clip", clip)
_base.register("quantize", quantize)
_base.register("prune", prune)
