"""Real low-bit storage: bit-packed integer codes plus float32 scales.

A `PackedArray` stores a b-bit quantized tensor in ceil(n / 32) * b 32-bit
words (b bits per weight, not one byte each), its scale(s) (float32, float64
for a float64 tensor) and, for
the asymmetric grid, int32 zero point(s). It is a pytree node, so a packed
parameter tree still flattens, jits and moves between devices; `size_bytes`
counts what it really stores. `save` / `restore` write and read packed trees
with Orbax, self-describing, so restoring needs no template.
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


@jax.tree_util.register_pytree_node_class
class PackedArray:
  """A quantized tensor in real low-bit storage.

  Attributes:
    codes: uint32 words holding the bit-packed codes.
    scale: float32 scale (float64 for a float64 tensor), shape () or (C,)
      with one per channel along `axis`.
    zero_point: int32 zero point(s) of the asymmetric grid, else None.
    shape, dtype: the dense tensor's shape and dtype.
    bits, symmetric, axis: the quantizer (see `lsh_gan.compress.quantize`).
  """

  def __init__(self, codes, scale, zero_point, *, shape, dtype, bits,
               symmetric, axis):
    self.codes = codes
    self.scale = scale
    self.zero_point = zero_point
    self.shape = tuple(int(s) for s in shape)
    self.dtype = jnp.dtype(dtype)
    self.bits = int(bits)
    self.symmetric = bool(symmetric)
    self.axis = axis if axis is None else int(axis)

  @property
  def ndim(self) -> int:
    return len(self.shape)

  @property
  def size(self) -> int:
    return int(np.prod(self.shape, dtype=np.int64))

  def _aux(self):
    return (self.shape, self.dtype.name, self.bits, self.symmetric, self.axis)

  def tree_flatten(self):
    return (self.codes, self.scale, self.zero_point), self._aux()

  @classmethod
  def tree_unflatten(cls, aux, children):
    shape, dtype, bits, symmetric, axis = aux
    return cls(*children, shape=shape, dtype=dtype, bits=bits,
               symmetric=symmetric, axis=axis)

  def unpack(self) -> jax.Array:
    """The dense tensor, bit-identical to the fake-quantized one.

    Raises:
      ValueError: if the fields are inconsistent (see `check`).
    """
    self.check()
    return self._dense()

  def _dense(self) -> jax.Array:
    """`unpack` of fields already checked."""
    with _tree.x64_scope([self.scale]):
      return _unpack_jit(self)

  def check(self, path: str | None = None) -> None:
    """Checks that the fields describe one packed tensor.

    Args:
      path: the leaf's path, for the message.

    Raises:
      ValueError: naming the leaf and the inconsistent field: bits outside
        1..16, a non-float dtype, an axis out of range, a codes length that
        does not match the shape and bits, a scale or zero point of the wrong
        shape, or a zero point missing or present against `symmetric`.
    """
    def fail(what):
      where = "PackedArray" if path is None else f"packed leaf {path!r}"
      raise ValueError(f"{where} is inconsistent (damaged?): {what}")

    if not 1 <= self.bits <= 16:
      fail(f"bits={self.bits} is outside 1..16")
    if not jnp.issubdtype(self.dtype, jnp.floating):
      fail(f"dtype={self.dtype.name} is not a floating-point type")
    if any(s < 0 for s in self.shape):
      fail(f"shape={self.shape} has a negative size")
    if self.axis is not None and not 0 <= self.axis < self.ndim:
      fail(f"axis={self.axis} is out of range for shape {self.shape}")
    for name in ("codes", "scale"):
      if not _tree.is_array(getattr(self, name)):
        fail(f"{name} is a {type(getattr(self, name)).__name__}, not an array")
    words = -(-self.size // _WORD) * self.bits
    if self.codes.dtype != jnp.uint32 or self.codes.size != words:
      fail(f"codes hold {self.codes.size} words of {self.codes.dtype}; shape "
           f"{self.shape} at bits={self.bits} needs {words} uint32 words")
    scale_shape = () if self.axis is None else (self.shape[self.axis],)
    if tuple(self.scale.shape) != scale_shape:
      fail(f"scale has shape {tuple(self.scale.shape)}, expected "
           f"{scale_shape} for shape {self.shape} and axis={self.axis}")
    if not jnp.issubdtype(self.scale.dtype, jnp.floating):
      fail(f"scale has dtype {self.scale.dtype}, not floating-point")
    if self.symmetric != (self.zero_point is None):
      fail("a zero point is stored with a symmetric grid" if self.symmetric
           else "the asymmetric grid's zero point is missing")
    if self.zero_point is not None and (
        not _tree.is_array(self.zero_point) or
        tuple(self.zero_point.shape) != scale_shape):
      fail(f"zero_point has shape {tuple(getattr(self.zero_point, 'shape', ()))}"
           f", expected {scale_shape}")

  def storage(self) -> str:
    """A short description such as ``int4 sym axis=3``."""
    kind = "sign" if self.symmetric and self.bits == 1 else (
        "sym" if self.symmetric else "asym")
    where = f" axis={self.axis}" if self.axis is not None else ""
    return f"int{self.bits} {kind}{where}"

  def __repr__(self):
    return (f"PackedArray({self.storage()}, shape={self.shape}, "
            f"dtype={self.dtype.name})")


def _unpack_array(p: PackedArray) -> jax.Array:
  codes = bitunpack(p.codes, p.bits, p.size).reshape(p.shape)
  return _quantize.dequantize(codes, p.scale, p.zero_point, p.bits,
                              p.symmetric, p.axis).astype(p.dtype)


_unpack_jit = jax.jit(_unpack_array)


def pack_array(x, bits: int, symmetric: bool, axis: int | None) -> PackedArray:
  """Quantizes one (traceable) tensor into a `PackedArray`; axis normalized."""
  codes, scale, zero_point = _quantize.quantize_codes(x, bits, symmetric, axis)
  return PackedArray(bitpack(codes, bits), scale, zero_point, shape=x.shape,
                     dtype=x.dtype, bits=bits, symmetric=symmetric, axis=axis)


def is_packed(x) -> bool:
  return isinstance(x, PackedArray)


def dense(x):
  """`x`, unpacked if it is a `PackedArray`."""
  return x.unpack() if is_packed(x) else x


def unpack(tree):
  """Replaces every `PackedArray` in a tree with its dense tensor.

  Args:
    tree: a tree from `pack` / `Transform.pack` / `restore`.

  Returns:
    The same tree with dense leaves; for ``tree = t.pack(params)`` it is
    bit-identical to ``t(params)``.

  Raises:
    ValueError: for a `PackedArray` whose fields are inconsistent (the
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

  A `PackedArray` counts its packed words, scales and zero points; dense
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


def _to_storable(p: PackedArray) -> dict[str, Any]:
  if p.dtype.name not in _DTYPES:
    raise ValueError(f"cannot store a PackedArray of dtype {p.dtype.name}")
  layout = [p.bits, int(p.symmetric), -1 if p.axis is None else p.axis,
            _DTYPES.index(p.dtype.name), *p.shape]
  out = {_MARKER: np.asarray(layout, np.int64), "codes": p.codes,
         "scale": p.scale}
  if p.zero_point is not None:
    out["zero_point"] = p.zero_point
  return out


def _from_storable(d: dict[str, Any], path: str) -> PackedArray:
  """Rebuilds a `PackedArray`; raises ValueError naming `path` if inconsistent."""
  layout = np.asarray(d[_MARKER])
  extra = set(d) - {_MARKER, "codes", "scale", "zero_point"}
  if (layout.ndim != 1 or layout.size < 4 or
      not np.issubdtype(layout.dtype, np.integer) or "codes" not in d or
      "scale" not in d or extra):
    raise ValueError(f"packed leaf {path!r} is inconsistent (damaged?): "
                     f"layout {layout.tolist()} with fields {sorted(d)}")
  bits, symmetric, axis, dtype = (int(v) for v in layout[:4])
  if not 0 <= dtype < len(_DTYPES):
    raise ValueError(f"packed leaf {path!r} is inconsistent (damaged?): "
                     f"dtype index {dtype} is not one of 0..{len(_DTYPES) - 1}")
  packed = PackedArray(jnp.asarray(d["codes"]), jnp.asarray(d["scale"]),
                       None if "zero_point" not in d else jnp.asarray(
                           d["zero_point"]),
                       shape=[int(v) for v in layout[4:]], dtype=_DTYPES[dtype],
                       bits=bits, symmetric=bool(symmetric),
                       axis=None if axis < 0 else axis)
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
      if _MARKER in node:
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
