"""What compression did to a parameter tree: sizes, bits, sparsity, error."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from lsh_gan.compress import _packing
from lsh_gan.compress import _tree


@dataclasses.dataclass(frozen=True)
class LeafReport:
  """One row of a `Report`.

  Attributes:
    path: '/'-joined leaf path ("total" for the sum row).
    shape: the dense shape (None in the total row).
    storage: how the compressed leaf is stored ("float32", "int4 sym", ...).
    num_params: number of entries.
    original_bytes: bytes of the original leaf.
    stored_bytes: bytes the compressed leaf really stores (packed codes,
      scales and zero points for a `PackedArray`; the dense buffer otherwise).
    effective_bits: 8 * stored_bytes / num_params, overheads included.
    compression_ratio: original_bytes / stored_bytes.
    sparsity: fraction of entries exactly zero after compression.
    distinct_values: distinct values after compression (None in the total).
    relative_l2_error: ||w_hat - w|| / ||w|| (0 when both are zero).
    code_bits: bits per stored code of a quantized leaf (a `PackedArray`);
      None for a dense leaf and in the total row.
  """
  path: str
  shape: tuple[int, ...] | None
  storage: str
  num_params: int
  original_bytes: int
  stored_bytes: int
  effective_bits: float
  compression_ratio: float
  sparsity: float
  distinct_values: int | None
  relative_l2_error: float
  code_bits: int | None = None


@dataclasses.dataclass(frozen=True)
class Report:
  """Per-leaf rows and their total; ``str(report)`` is a printable table."""
  leaves: tuple[LeafReport, ...]
  total: LeafReport

  @property
  def fewest_bits(self) -> int | None:
    """The fewest bits per code of any quantized leaf; None if no leaf is
    stored quantized."""
    bits = [r.code_bits for r in self.leaves if r.code_bits is not None]
    return min(bits) if bits else None

  def to_dict(self) -> dict[str, Any]:
    return {"leaves": [dataclasses.asdict(r) for r in self.leaves],
            "total": dataclasses.asdict(self.total)}

  def table(self) -> str:
    header = ("path", "shape", "storage", "params", "bytes", "bits/w",
              "ratio", "sparsity", "distinct", "rel L2 err")
    rows = []
    for r in (*self.leaves, self.total):
      rows.append((
          r.path, "" if r.shape is None else "x".join(map(str, r.shape)) or
          "scalar", r.storage, f"{r.num_params:,}", f"{r.stored_bytes:,}",
          f"{r.effective_bits:.2f}", f"{r.compression_ratio:.2f}x",
          f"{r.sparsity:.3f}",
          "-" if r.distinct_values is None else f"{r.distinct_values:,}",
          f"{r.relative_l2_error:.2e}"))
    widths = [max(len(h), *(len(row[i]) for row in rows))
              for i, h in enumerate(header)]
    def fmt(row):
      return "  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths)))
    rule = "-" * len(fmt(header))
    lines = [fmt(header), rule, *map(fmt, rows[:-1]), rule, fmt(rows[-1])]
    return "\n".join(lines)

  def __str__(self) -> str:
    return self.table()


def report(original, compressed) -> Report:
  """Compares a parameter tree with its compressed version, leaf by leaf.

  Args:
    original: the uncompressed tree.
    compressed: the same tree after a transform, dense (``t(params)``) or
      packed (``t.pack(params)``); a dense tree stores what its dtype stores,
      so only packed leaves show a size reduction.

  Returns:
    A `Report` with one `LeafReport` per leaf and a total row (sums, and the
    total relative L2 error over all leaves).

  Raises:
    ValueError: if the trees differ in structure or a leaf in shape.

  Examples:
    >>> import numpy as np
    >>> from lsh_gan import compress
    >>> params = {"w": np.random.default_rng(0).normal(size=(256, 256))
    ...           .astype(np.float32)}
    >>> r = compress.report(params, compress.pack(params, 8))
    >>> round(r.total.compression_ratio, 2)
    4.0
  """
  orig_leaves, paths, orig_def = _tree.flatten(original)
  comp_leaves, _, comp_def = _tree.flatten(compressed,
                                           is_leaf=_packing.is_packed)
  if orig_def != comp_def:
    raise ValueError("compressed: its tree structure differs from original's: "
                     f"{comp_def} vs {orig_def}")
  rows = []
  sums = dict(num_params=0, original_bytes=0, stored_bytes=0, zeros=0,
              err2=0.0, norm2=0.0)
  for path, w, c in zip(paths, orig_leaves, comp_leaves):
    dense = c.unpack() if _packing.is_packed(c) else c
    w_np = np.asarray(w)
    c_np = np.asarray(dense)
    if w_np.shape != c_np.shape:
      raise ValueError(f"compressed: leaf {path!r} has shape {c_np.shape}, "
                       f"original has {w_np.shape}")
    if _is_numeric(w_np) and _is_numeric(c_np):
      w64 = w_np.astype(np.float64)
      c64 = c_np.astype(np.float64)
      err2 = float(np.sum((c64 - w64) ** 2))
      norm2 = float(np.sum(w64 ** 2))
    else:  # a string or object leaf: no magnitude, only changed or not
      err2, norm2 = (0.0 if np.array_equal(w_np, c_np) else math.inf), 0.0
    size = int(w_np.size)
    stored = _packing.size_bytes(c)
    orig_bytes = _packing.size_bytes(w)
    zeros = int(np.count_nonzero(c_np == 0))
    rows.append(LeafReport(
        path=path, shape=tuple(w_np.shape),
        storage=c.storage() if _packing.is_packed(c) else c_np.dtype.name,
        num_params=size, original_bytes=orig_bytes, stored_bytes=stored,
        effective_bits=8 * stored / max(size, 1),
        compression_ratio=orig_bytes / stored if stored else math.inf,
        sparsity=zeros / max(size, 1),
        distinct_values=int(np.unique(c_np).size),
        relative_l2_error=_relative(err2, norm2),
        code_bits=(c.bits if isinstance(c, _packing.PackedArray) else None)))
    for key, value in (("num_params", size), ("original_bytes", orig_bytes),
                       ("stored_bytes", stored), ("zeros", zeros),
                       ("err2", err2), ("norm2", norm2)):
      sums[key] += value
  total = LeafReport(
      path="total", shape=None, storage="",
      num_params=sums["num_params"], original_bytes=sums["original_bytes"],
      stored_bytes=sums["stored_bytes"],
      effective_bits=8 * sums["stored_bytes"] / max(sums["num_params"], 1),
      compression_ratio=(sums["original_bytes"] / sums["stored_bytes"]
                         if sums["stored_bytes"] else math.inf),
      sparsity=sums["zeros"] / max(sums["num_params"], 1),
      distinct_values=None,
      relative_l2_error=_relative(sums["err2"], sums["norm2"]))
  return Report(tuple(rows), total)


def _is_numeric(x: np.ndarray) -> bool:
  # bfloat16 is kind "V" to numpy; its floating-ness is JAX's to tell.
  return x.dtype.kind in "biufc" or _tree.is_floating(x)


def _relative(err2: float, norm2: float) -> float:
  if norm2 == 0:
    return 0.0 if err2 == 0 else math.inf
  return math.sqrt(err2 / norm2)

