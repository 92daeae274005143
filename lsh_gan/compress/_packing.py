"""Real low-bit and sparse storage.

A `PackedArray` stores a b-bit quantized tensor in ceil(n / 32) * b 32-bit
words (b bits per weight, not one byte each), its scale(s) (float32, float64
for a float64 tensor) or codebook and, for the asymmetric grid, int32 zero
point(s); with a mask (one bit per entry) it stores codes only for the
entries that are not exactly zero, so a pruned and quantized tensor costs
1 + (1 - sparsity) * b bits per weight. A `SparseArray` stores a pruned
float tensor as the mask plus the non-zero values. Both are pytree nodes,
so a packed parameter tree still flattens, jits and moves between devices;
`size_bytes` counts what they really store. `save` / `restore` write and read
packed trees with Orbax, self-describing, so restoring needs no template.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.compress import _quantize
from lsh_gan.compress import _tree

_WORD = 32


def bitpack(codes, bits: int) -> jax.Array:
  """Packs unsigned b-bit codes (any shape) into uint32 words.

  Codes are laid out little-endian as one bit stream: code j occupies stream
  bits [j*b, (j+1)*b). Each group of 32 codes fills exactly b words, so the
  whole thing is a fixed-size reshape of the (group, code, bit) bit array.
  """
  flat = codes.reshape(-1).astype(jnp.uint32)
  groups = -(-flat.size // _WORD)
  flat = jnp.pad(flat, (0, groups * _WORD - flat.size))
  stream = (flat.reshape(groups, _WORD, 1) >> jnp.arange(bits, dtype=jnp.uint32)) & 1
  stream = stream.reshape(groups, bits, _WORD)
  return jnp.sum(stream << jnp.arange(_WORD, dtype=jnp.uint32), axis=-1,
                 dtype=jnp.uint32).reshape(-1)


def bitunpack(words, bits: int, size: int) -> jax.Array:
  """Inverse of `bitpack`: the first `size` codes as uint32."""
  groups = words.size // bits
  stream = (words.reshape(groups, bits, 1) >> jnp.arange(_WORD, dtype=jnp.uint32)) & 1
  stream = stream.reshape(groups, _WORD, bits)
  return jnp.sum(stream << jnp.arange(bits, dtype=jnp.uint32), axis=-1,
                 dtype=jnp.uint32).reshape(-1)[:size]


def np_bitpack(codes, bits: int) -> np.ndarray:
  """`bitpack` on the host, in numpy: the same words."""
  flat = np.asarray(codes, np.uint32).reshape(-1)
  groups = -(-flat.size // _WORD)
  flat = np.pad(flat, (0, groups * _WORD - flat.size))
  stream = ((flat[:, None] >> np.arange(bits, dtype=np.uint32)) & 1).astype(
      np.uint8)
  return np.packbits(stream.reshape(-1), bitorder="little").view("<u4").astype(
      np.uint32)


def np_bit_stream(words) -> np.ndarray:
  """The bits of uint32 words on the host, stream order (padding included)."""
  return np.unpackbits(np.ascontiguousarray(np.asarray(words), "<u4").view(
      np.uint8), bitorder="little")


def np_bitunpack(words, bits: int, size: int) -> np.ndarray:
  """`bitunpack` on the host, in numpy: the first `size` codes as uint32."""
  stream = np_bit_stream(words)[:size * bits]
  return (stream.reshape(size, bits).astype(np.uint32) <<
          np.arange(bits, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)


def _words(count: int, bits: int) -> int:
  """uint32 words holding `count` codes of `bits` bits."""
  return -(-count // _WORD) * bits


def _scatter_kept(stored, keep, count: int):
  """Codes or values of the kept entries (flat `keep`) in place, 0 elsewhere."""
  if count == 0:
    return jnp.zeros(keep.shape, stored.dtype)
  index = jnp.clip(jnp.cumsum(keep, dtype=jnp.int32) - 1, 0, count - 1)
  return jnp.where(keep, stored[index], jnp.zeros((), stored.dtype))


class _Stored:
  """What stored leaves share: the dense tensor's shape, and `unpack`."""

  shape: tuple[int, ...]

  @property
  def ndim(self) -> int:
    return len(self.shape)

  @property
  def size(self) -> int:
    return int(np.prod(self.shape, dtype=np.int64))

  def check(self, path: str | None = None) -> None:
    raise NotImplementedError

  def _dense(self) -> jax.Array:
    """The dense tensor of fields already checked."""
    raise NotImplementedError

  def unpack(self) -> jax.Array:
    """The dense tensor, bit-identical to the transform's output.

    Raises:
      ValueError: if the fields are inconsistent (see `check`).
    """
    self.check()
    return self._dense()


@jax.tree_util.register_pytree_node_class
class PackedArray(_Stored):
  """A quantized tensor in real low-bit storage.

  Attributes:
    codes: uint32 words holding the bit-packed codes of `count` entries:
      every entry, or with a `mask` only the entries it keeps (row-major).
    scale: float32 scale (float64 for a float64 tensor), shape () or (C,)
      with one per channel along `axis`; for the "kmeans" grid the codebook,
      shape (2^bits,) or (C, 2^bits).
    zero_point: int32 zero point(s) of the asymmetric grid, else None.
    mask: uint32 words of one bit per entry (1: stored, 0: exactly zero), or
      None when every entry is stored.
    shape, dtype: the dense tensor's shape and dtype.
    bits, symmetric, axis, grid: the quantizer (see
      `lsh_gan.compress.quantize`).
    count: how many codes `codes` holds: the tensor's size, or with a mask
      the number of entries it keeps (the compact layout).
  """

  def __init__(self, codes, scale, zero_point, mask=None, *, shape, dtype,
               bits, symmetric, axis, grid="uniform", count=None):
    self.codes = codes
    self.scale = scale
    self.zero_point = zero_point
    self.mask = mask
    self.shape = tuple(int(s) for s in shape)
    self.dtype = jnp.dtype(dtype)
    self.bits = int(bits)
    self.symmetric = bool(symmetric)
    self.axis = axis if axis is None else int(axis)
    self.grid = str(grid)
    self.count = self.size if count is None else int(count)

  def _aux(self):
    return (self.shape, self.dtype.name, self.bits, self.symmetric, self.axis,
            self.grid, self.count)

  def tree_flatten(self):
    return (self.codes, self.scale, self.zero_point, self.mask), self._aux()

  @classmethod
  def tree_unflatten(cls, aux, children):
    shape, dtype, bits, symmetric, axis, grid, count = aux
    return cls(*children, shape=shape, dtype=dtype, bits=bits,
               symmetric=symmetric, axis=axis, grid=grid, count=count)

  def replace(self, **fields) -> "PackedArray":
    """A copy with some fields changed (unchecked)."""
    children, aux = self.tree_flatten()
    names = ("codes", "scale", "zero_point", "mask")
    kw = dict(zip(names, children))
    kw.update(zip(("shape", "dtype", "bits", "symmetric", "axis", "grid",
                   "count"), aux))
    kw.update(fields)
    children = [kw.pop(n) for n in names]
    return PackedArray(*children, **kw)

  def _dense(self) -> jax.Array:
    with _tree.x64_scope([self.scale]):
      return _unpack_jit(self)

  def check(self, path: str | None = None) -> None:
    """Checks that the fields describe one packed tensor.

    Args:
      path: the leaf's path, for the message.

    Raises:
      ValueError: naming the leaf and the inconsistent field: bits outside
        1..16, an unknown grid, a non-float dtype, an axis out of range, a
        codes length that does not match the count and bits, a mask of the
        wrong length or keeping another number of entries than the count, a
        scale, codebook or zero point of the wrong shape, or a zero point
        missing or present against `symmetric`.
    """
    def fail(what):
      where = "PackedArray" if path is None else f"packed leaf {path!r}"
      raise ValueError(f"{where} is inconsistent (damaged?): {what}")

    if not 1 <= self.bits <= 16:
      fail(f"bits={self.bits} is outside 1..16")
    if self.grid not in _quantize.GRIDS:
      fail(f"grid={self.grid!r} is not one of {_quantize.GRIDS}")
    if not jnp.issubdtype(self.dtype, jnp.floating):
      fail(f"dtype={self.dtype.name} is not a floating-point type")
    if any(s < 0 for s in self.shape):
      fail(f"shape={self.shape} has a negative size")
    if self.axis is not None and not 0 <= self.axis < self.ndim:
      fail(f"axis={self.axis} is out of range for shape {self.shape}")
    for name in ("codes", "scale"):
      if not _tree.is_array(getattr(self, name)):
        fail(f"{name} is a {type(getattr(self, name)).__name__}, not an array")
    if not 0 <= self.count <= self.size or (
        self.mask is None and self.count != self.size):
      fail(f"count={self.count} for {self.size} entries"
           f"{'' if self.mask is not None else ' without a mask'}")
    words = _words(self.count, self.bits)
    if self.codes.dtype != jnp.uint32 or self.codes.size != words:
      fail(f"codes hold {self.codes.size} words of {self.codes.dtype}; "
           f"{self.count} codes at bits={self.bits} need {words} uint32 words")
    if self.mask is not None:
      _check_mask(self.mask, self.size, self.count, fail)
    channels = () if self.axis is None else (self.shape[self.axis],)
    scale_shape = channels + ((2 ** self.bits,) if self.grid == "kmeans"
                              else ())
    what = "codebook" if self.grid == "kmeans" else "scale"
    if tuple(self.scale.shape) != scale_shape:
      fail(f"{what} has shape {tuple(self.scale.shape)}, expected "
           f"{scale_shape} for shape {self.shape}, axis={self.axis} and "
           f"grid={self.grid!r}")
    if not jnp.issubdtype(self.scale.dtype, jnp.floating):
      fail(f"{what} has dtype {self.scale.dtype}, not floating-point")
    asymmetric = self.grid == "uniform" and not self.symmetric
    if asymmetric != (self.zero_point is not None):
      fail("the asymmetric grid's zero point is missing" if asymmetric
           else "a zero point is stored with a symmetric grid")
    if self.zero_point is not None and (
        not _tree.is_array(self.zero_point) or
        tuple(self.zero_point.shape) != channels):
      fail(f"zero_point has shape {tuple(getattr(self.zero_point, 'shape', ()))}"
           f", expected {channels}")

  def storage(self) -> str:
    """A short description such as ``int4 sym axis=3`` or
    ``int2 kmeans, 10.0% stored``."""
    if self.grid != "uniform":
      kind = self.grid
    else:
      kind = "sign" if self.symmetric and self.bits == 1 else (
          "sym" if self.symmetric else "asym")
    where = f" axis={self.axis}" if self.axis is not None else ""
    return f"int{self.bits} {kind}{where}{_stored_share(self)}"

  def __repr__(self):
    return (f"PackedArray({self.storage()}, shape={self.shape}, "
            f"dtype={self.dtype.name})")


def _check_mask(mask, size: int, count: int, fail,
                every_code: bool = True) -> None:
  """A mask's dtype and length; where concrete, that it keeps `count` of
  `size` entries (or, if `every_code`, all `size` codes are stored) and no
  padding bit is set."""
  if not _tree.is_array(mask) or mask.dtype != jnp.uint32 or (
      mask.size != _words(size, 1)):
    fail(f"mask holds {getattr(mask, 'size', '?')} words of "
         f"{getattr(mask, 'dtype', type(mask).__name__)}; {size} entries "
         f"need {_words(size, 1)} uint32 words")
  if isinstance(mask, jax.core.Tracer):
    return
  bits = np_bit_stream(mask)
  kept = int(bits[:size].sum())
  if bits[size:].any():
    fail("mask has bits set past the last entry")
  if count != kept and not (every_code and count == size):
    fail(f"mask keeps {kept} of {size} entries but count={count}")


def _stored_share(x) -> str:
  if x.mask is None or x.count == x.size:
    return ", masked" if x.mask is not None else ""
  return f", {100 * x.count / max(x.size, 1):.1f}% stored"


@jax.tree_util.register_pytree_node_class
class SparseArray(_Stored):
  """A tensor stored as a bitmask of its non-zero entries plus their values.

  What `pack` stores for a pruned leaf that is not quantized, when that is
  smaller than the dense buffer (signed zeros count as values).

  Attributes:
    mask: uint32 words of one bit per entry (1: stored).
    values: the stored entries, row-major, 1-D of `dtype`.
    shape, dtype: the dense tensor's shape and dtype.
  """

  def __init__(self, mask, values, *, shape, dtype):
    self.mask = mask
    self.values = values
    self.shape = tuple(int(s) for s in shape)
    self.dtype = jnp.dtype(dtype)

  @property
  def count(self) -> int:
    return int(self.values.shape[0]) if self.values.ndim else -1

  def tree_flatten(self):
    return (self.mask, self.values), (self.shape, self.dtype.name)

  @classmethod
  def tree_unflatten(cls, aux, children):
    return cls(*children, shape=aux[0], dtype=aux[1])

  def _dense(self) -> jax.Array:
    with _tree.x64_scope([self.values]):
      return _unpack_sparse_jit(self)

  def check(self, path: str | None = None) -> None:
    """Checks the fields (see `PackedArray.check`); raises ValueError."""
    def fail(what):
      where = "SparseArray" if path is None else f"sparse leaf {path!r}"
      raise ValueError(f"{where} is inconsistent (damaged?): {what}")

    if not jnp.issubdtype(self.dtype, jnp.floating):
      fail(f"dtype={self.dtype.name} is not a floating-point type")
    if any(s < 0 for s in self.shape):
      fail(f"shape={self.shape} has a negative size")
    if not _tree.is_array(self.values) or self.values.ndim != 1 or (
        self.values.dtype != self.dtype) or not 0 <= self.count <= self.size:
      fail(f"values must be 1-D {self.dtype.name} of at most {self.size} "
           f"entries, got {getattr(self.values, 'dtype', '?')} of shape "
           f"{getattr(self.values, 'shape', '?')}")
    _check_mask(self.mask, self.size, self.count, fail, every_code=False)

  def storage(self) -> str:
    return f"{self.dtype.name} sparse{_stored_share(self)}"

  def __repr__(self):
    return (f"SparseArray({self.storage()}, shape={self.shape}, "
            f"dtype={self.dtype.name})")


def _unpack_array(p: PackedArray) -> jax.Array:
  if p.mask is None:
    codes = bitunpack(p.codes, p.bits, p.size)
  else:
    keep = bitunpack(p.mask, 1, p.size).astype(bool)
    codes = bitunpack(p.codes, p.bits, p.count)
    if p.count != p.size:
      codes = _scatter_kept(codes, keep, p.count)
  values = _quantize.dequantize(codes.reshape(p.shape), p.scale, p.zero_point,
                                p.bits, p.symmetric, p.axis, p.grid)
  if p.mask is not None:
    values = jnp.where(keep.reshape(p.shape), values,
                       jnp.zeros((), values.dtype))
  return values.astype(p.dtype)


def _unpack_sparse(p: SparseArray) -> jax.Array:
  keep = bitunpack(p.mask, 1, p.size).astype(bool)
  return _scatter_kept(p.values, keep, p.count).reshape(p.shape)


_unpack_jit = jax.jit(_unpack_array)
_unpack_sparse_jit = jax.jit(_unpack_sparse)


def pack_array(x, bits: int, symmetric: bool, axis: int | None,
               grid: str = "uniform") -> PackedArray:
  """Quantizes one (traceable) tensor into a `PackedArray`; axis normalized.

  Grids without a zero level get a mask of the non-zero entries (all codes
  stored; `smallest_layout` drops the masked ones' codes on the host).
  """
  codes, scale, zero_point = _quantize.quantize_codes(x, bits, symmetric, axis,
                                                      grid)
  mask = (bitpack(x != 0, 1) if _quantize.needs_mask(bits, symmetric, grid)
          else None)
  return PackedArray(bitpack(codes, bits), scale, zero_point, mask,
                     shape=x.shape, dtype=x.dtype, bits=bits,
                     symmetric=symmetric, axis=axis, grid=grid)


def with_zeros(p: PackedArray, keep) -> PackedArray:
  """`p` with the entries where `keep` (traceable, p's shape) is False
  stored as exact zeros: its mask narrowed (all codes kept)."""
  old = (jnp.ones(p.shape, bool) if p.mask is None else
         bitunpack(p.mask, 1, p.size).astype(bool).reshape(p.shape))
  codes = p.codes
  if p.count != p.size:  # back to one code per entry
    codes = bitpack(_scatter_kept(bitunpack(p.codes, p.bits, p.count),
                                  old.reshape(-1), p.count), p.bits)
  return p.replace(codes=codes, mask=bitpack(old & keep, 1), count=p.size)


def _zero_code(p: PackedArray) -> np.ndarray | None:
  """Per entry, the code whose value is exactly zero (None: no such level)."""
  if _quantize.needs_mask(p.bits, p.symmetric, p.grid):
    return None
  if p.symmetric:
    return np.full(p.shape, 2 ** (p.bits - 1) - 1, np.uint32)
  zp = np.asarray(p.zero_point).astype(np.uint32)
  if p.axis is not None:
    shape = [1] * p.ndim
    shape[p.axis] = -1
    zp = zp.reshape(shape)
  return np.broadcast_to(zp, p.shape)


def smallest_layout(x):
  """A concrete packed or dense leaf in its smallest exact layout.

  A `PackedArray` is stored with all its codes, or as a mask of the entries
  that are not exactly zero plus their codes, whichever takes fewer bytes
  (a grid without a zero level always keeps its mask where an entry is
  zero). A float array becomes a `SparseArray` when that is smaller. The
  unpacked values are bit for bit the same.
  """
  if isinstance(x, PackedArray):
    n = x.size
    if x.mask is None:
      keep = np.ones(n, bool)
    else:
      keep = np_bit_stream(x.mask)[:n].astype(bool)
    codes = np_bitunpack(np.asarray(x.codes), x.bits, x.count)
    if x.count != n:
      full = np.zeros(n, np.uint32)
      full[keep] = codes
      codes = full
    zero = _zero_code(x)
    if zero is not None:  # entries on the zero level need no code
      zero = zero.reshape(-1)
      codes = np.where(keep, codes, zero)
      keep = codes != zero
    nnz = int(keep.sum())
    dense_ok = zero is not None or nnz == n
    dense_bytes = 4 * _words(n, x.bits)
    sparse_bytes = 4 * (_words(n, 1) + _words(nnz, x.bits))
    if dense_ok and dense_bytes <= sparse_bytes:
      return x.replace(codes=jnp.asarray(np_bitpack(codes, x.bits)),
                       mask=None, count=n)
    return x.replace(codes=jnp.asarray(np_bitpack(codes[keep], x.bits)),
                     mask=jnp.asarray(np_bitpack(keep, 1)), count=nnz)
  if not (_tree.is_array(x) and _tree.is_floating(x)) or x.size == 0:
    return x
  values = np.asarray(x).reshape(-1)
  keep = values.view(f"u{values.dtype.itemsize}") != 0
  nnz = int(keep.sum())
  itemsize = values.dtype.itemsize
  if 4 * _words(x.size, 1) + nnz * itemsize >= x.size * itemsize:
    return x
  return SparseArray(jnp.asarray(np_bitpack(keep, 1)),
                     jnp.asarray(values[keep]), shape=x.shape, dtype=x.dtype)


def is_packed(x) -> bool:
  """Whether `x` is a stored leaf (`PackedArray` or `SparseArray`)."""
  return isinstance(x, (PackedArray, SparseArray))


def dense(x):
  """`x`, unpacked if it is a stored leaf."""
  return x.unpack() if is_packed(x) else x


def unpack(tree):
  """Replaces every `PackedArray` and `SparseArray` in a tree with its dense
  tensor.

  Args:
    tree: a tree from `pack` / `Transform.pack` / `restore`.

  Returns:
    The same tree with dense leaves; for ``tree = t.pack(params)`` it is
    bit-identical to ``t(params)``.

  Raises:
    ValueError: for a stored leaf whose fields are inconsistent (the
      message names the leaf's path and the field).
  """
  def one(path, x):
    if not is_packed(x):
      return x
    x.check(_tree.path_str(path))
    return x._dense()  # pylint: disable=protected-access

  return jax.tree_util.tree_map_with_path(one, tree, is_leaf=is_packed)


def size_bytes(tree) -> int:
  """Bytes actually stored by a tree: every array leaf's buffer.

  A `PackedArray` counts its packed words, mask, scales or codebook and
  zero points, a `SparseArray` its mask and values; dense
  leaves count ``size * itemsize``; Python scalars count as 8 bytes.
  """
  total = 0
  for leaf in jax.tree_util.tree_leaves(tree):
    if hasattr(leaf, "dtype") and hasattr(leaf, "size"):
      total += int(leaf.size) * jnp.dtype(leaf.dtype).itemsize
    else:
      total += 8
  return total


# -- Orbax storage -------------------------------------------------------------

# A packed leaf is written as a dict with this marker key, so a restore without
# a template can tell it from the user's own dicts.
_MARKER = "__lsh_gan_packed__"
_DTYPES = ("float32", "bfloat16", "float16", "float64")


_SPARSE_MARKER = "__lsh_gan_sparse__"


def _to_storable(p) -> dict[str, Any]:
  if p.dtype.name not in _DTYPES:
    raise ValueError(f"cannot store a {type(p).__name__} of dtype "
                     f"{p.dtype.name}")
  if isinstance(p, SparseArray):
    return {_SPARSE_MARKER: np.asarray([_DTYPES.index(p.dtype.name),
                                        *p.shape], np.int64),
            "mask": p.mask, "values": _storable_array(p.values)}
  layout = [p.bits, int(p.symmetric), -1 if p.axis is None else p.axis,
            _DTYPES.index(p.dtype.name), *p.shape]
  out = {_MARKER: np.asarray(layout, np.int64),
         "codes": _storable_array(p.codes), "scale": p.scale}
  if p.zero_point is not None:
    out["zero_point"] = p.zero_point
  if p.grid != "uniform":  # checkpoints written before grids had no field
    out["grid"] = np.asarray([_quantize.GRIDS.index(p.grid)], np.int64)
  if p.mask is not None:
    out["mask"] = p.mask
    out["count"] = np.asarray([p.count], np.int64)
  return out


def _storable_array(x):
  """Orbax saves no zero-size array: an empty one (a leaf whose every entry
  is zero stores no code or value) is written as one zero, which
  `_from_storable` drops again where the mask keeps nothing."""
  return np.zeros(1, np.asarray(x).dtype) if x.size == 0 else x


def _stored_empty(x, mask):
  """`x` read back, emptied if it is `_storable_array`'s placeholder for a
  mask that keeps nothing."""
  x = jnp.asarray(x)
  if x.size == 1 and mask is not None and not np.asarray(mask).any():
    return x[:0]
  return x


def _damaged(path: str, what: str) -> ValueError:
  return ValueError(f"packed leaf {path!r} is inconsistent (damaged?): {what}")


def _from_storable(d: dict[str, Any], path: str):
  """Rebuilds a `PackedArray` or `SparseArray`; raises ValueError naming
  `path` if inconsistent."""
  if _SPARSE_MARKER in d:
    layout = np.asarray(d[_SPARSE_MARKER])
    if (layout.ndim != 1 or layout.size < 1 or set(d) != {
        _SPARSE_MARKER, "mask", "values"} or
        not np.issubdtype(layout.dtype, np.integer) or
        not 0 <= layout[0] < len(_DTYPES)):
      raise _damaged(path, f"sparse layout {layout.tolist()} with fields "
                     f"{sorted(d)}")
    sparse = SparseArray(jnp.asarray(d["mask"]),
                         _stored_empty(d["values"], d["mask"]),
                         shape=[int(v) for v in layout[1:]],
                         dtype=_DTYPES[int(layout[0])])
    sparse.check(path)
    return sparse
  layout = np.asarray(d[_MARKER])
  extra = set(d) - {_MARKER, "codes", "scale", "zero_point", "grid", "mask",
                    "count"}
  if (layout.ndim != 1 or layout.size < 4 or
      not np.issubdtype(layout.dtype, np.integer) or "codes" not in d or
      "scale" not in d or extra or ("mask" in d) != ("count" in d)):
    raise _damaged(path, f"layout {layout.tolist()} with fields {sorted(d)}")
  bits, symmetric, axis, dtype = (int(v) for v in layout[:4])
  if not 0 <= dtype < len(_DTYPES):
    raise _damaged(path, f"dtype index {dtype} is not one of "
                   f"0..{len(_DTYPES) - 1}")
  grid = int(np.asarray(d.get("grid", [0])).reshape(-1)[0])
  if not 0 <= grid < len(_quantize.GRIDS):
    raise _damaged(path, f"grid index {grid} is not one of "
                   f"0..{len(_quantize.GRIDS) - 1}")
  count = None if "count" not in d else int(
      np.asarray(d["count"]).reshape(-1)[0])
  packed = PackedArray(
      _stored_empty(d["codes"], d.get("mask")) if count == 0 else
      jnp.asarray(d["codes"]), jnp.asarray(d["scale"]),
      None if "zero_point" not in d else jnp.asarray(d["zero_point"]),
      None if "mask" not in d else jnp.asarray(d["mask"]),
      shape=[int(v) for v in layout[4:]], dtype=_DTYPES[dtype], bits=bits,
      symmetric=bool(symmetric), axis=None if axis < 0 else axis,
      grid=_quantize.GRIDS[grid], count=count)
  packed.check(path)
  return packed


class DamagedCheckpointError(ValueError):
  """A checkpoint folder that `restore` cannot read back.

  Attributes:
    path: the checkpoint folder.
  """

  def __init__(self, path: str, reason: str):
    super().__init__(f"checkpoint {path!r} is damaged or was not written by "
                     f"lsh_gan.compress.save: {reason}; write it again with "
                     "lsh_gan.compress.save")
    self.path = path


def save(directory: str | os.PathLike, tree, *, force: bool = False) -> None:
  """Writes a (packed or dense) parameter tree with Orbax.

  Orbax writes to a temporary folder and renames it when done, so an
  interrupted save leaves no half-written checkpoint.

  Args:
    directory: the checkpoint folder (made absolute).
    tree: the tree, e.g. from `pack`.
    force: overwrite an existing checkpoint.

  Raises:
    ValueError: if `directory` exists and `force` is False.
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top  # slow import; only storage needs it
  directory = os.path.abspath(os.fspath(directory))
  if os.path.exists(directory) and not force:
    raise ValueError(f"directory={directory!r} exists; pass force=True to "
                     "overwrite it")
  storable = jax.tree_util.tree_map(
      lambda x: _to_storable(x) if is_packed(x) else x, tree,
      is_leaf=is_packed)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(directory, storable, force=force)
  checkpointer.wait_until_finished()


def restore(directory: str | os.PathLike):
  """Reads a tree written by `save`, with its `PackedArray` leaves rebuilt.

  Containers come back as Orbax restores them without a template (nested
  dicts and lists); leaves come back as arrays of their stored dtypes
  (64-bit ones included).

  Raises:
    ValueError: if `directory` is not a folder.
    DamagedCheckpointError: (a ValueError) if the checkpoint cannot be read
      or a packed leaf in it is inconsistent; the message names the folder.
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top  # slow import; only storage needs it
  directory = os.path.abspath(os.fspath(directory))
  if not os.path.isdir(directory):
    raise ValueError(f"directory={directory!r} is not a checkpoint folder")

  def rebuild(node, path):
    if isinstance(node, dict):
      if _MARKER in node or _SPARSE_MARKER in node:
        return _from_storable(node, "/".join(path))
      return {k: rebuild(v, path + (str(k),)) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
      return type(node)(rebuild(v, path + (str(i),))
                        for i, v in enumerate(node))
    return jnp.asarray(node)

  # Stored float64 scales and leaves stay float64, as the dtype contract says.
  with jax.enable_x64(True):
    try:
      tree = ocp.StandardCheckpointer().restore(directory)
    except Exception as e:  # pylint: disable=broad-except  # Orbax, tensorstore and json raise many types
      raise DamagedCheckpointError(
          directory, f"{type(e).__name__}: {e}") from e
    try:
      return rebuild(tree, ())
    except ValueError as e:
      raise DamagedCheckpointError(directory, str(e)) from e
