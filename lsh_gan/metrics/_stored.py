"""A set read from batches into a memory-mapped file (private).

`Reference.from_batches` and `Reference.fake_from_batches` take an iterable
of (b, d) arrays (slices of memory-mapped `.npy` files, chunks of a
generator's output) and never hold the whole set in one array: each batch is
validated as it arrives and appended to a file of float32 rows in a private
temporary folder; the metrics then read that file block by block (a
read-only `np.memmap`, which every blocked pass in this package slices
without copying the set).

The file holds exactly what `_checks.reference_set` / `_checks.fake_set`
would hold in memory for the concatenated batches: float32 values divided by
the set's power of two (`_checks.unit_exponent` of the largest |value| over
all batches). That power is known only after the last batch, so rows are
written as they come (float32, or float64 as soon as a batch of a wider float
type arrives: the concatenation's type) and, unless the set is float32 at
unit scale (the usual case), converted in one more pass over the file.

Disk: n * d * 4 bytes; up to 12 per value while a float64 set is converted
(its float64 copy and the float32 result), 8 for a float32 set scaled by a
power of two. The folder is removed when the last array reading it is
collected, or at exit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref

import numpy as np

from lsh_gan.metrics import _checks

_CONVERT_BYTES = 1 << 26  # float64 bytes per step of a conversion pass


def _step_rows(dim: int) -> int:
  return max(1, _CONVERT_BYTES // (8 * dim))


def spill(batches, name: str, directory=None, *, dim: int | None = None,
          units=None) -> tuple[np.memmap, int, float]:
  """Reads `batches` once into a private file: (set in units 2^e, e, max |x|).

  Args:
    batches: an iterable of (b, d) arrays of numbers (b may vary; a batch of
      0 rows is skipped).
    name: the set's name in error messages ("real", "fake").
    directory: where the private folder is made (default: the system's
      temporary folder).
    dim: the feature size the set must have (the reference's), checked at
      the first batch.
    units: units(max_abs, d) -> the exponent e the set is stored in (may
      raise ValueError); default `_checks.unit_exponent(max_abs)`.

  Raises:
    ValueError: naming the set, the batch and its first row for NaN/inf, a
      batch that is not 2-D, a feature size unlike the first batch's, or no
      rows at all.
  """
  if isinstance(batches, np.ndarray) or hasattr(batches, "shape"):
    raise ValueError(f"{name}: from_batches takes an iterable of (b, d) "
                     "arrays, not one array (pass [x], or slices of it)")
  try:
    batches = iter(batches)
  except TypeError:
    raise ValueError(f"{name}: from_batches takes an iterable of (b, d) "
                     f"arrays, got {type(batches).__name__}") from None
  folder = tempfile.mkdtemp(prefix="lsh_gan-set-", dir=directory)
  try:
    return _spill(batches, name, folder, dim, units)
  except BaseException:
    shutil.rmtree(folder, ignore_errors=True)
    raise


def _spill(batches, name: str, folder: str, expected, units):
  raw = os.path.join(folder, "rows.raw")
  rows, dim, max_abs, wide = 0, None, 0.0, False
  out = open(raw, "wb")  # pylint: disable=consider-using-with
  try:
    for index, batch in enumerate(batches):
      label = f"{name}, batch {index} (rows from {rows})"
      shape = np.shape(batch)
      if len(shape) == 2 and shape[0] == 0:
        continue
      values, batch_max = _checks.host_embeddings(batch, label)
      if dim is None:
        dim = values.shape[1]
        if expected is not None and dim != expected:
          raise ValueError(f"{name}: has {dim} features per point, real has "
                           f"{expected}; feature sizes must match")
      elif values.shape[1] != dim:
        raise ValueError(f"{label}: has {values.shape[1]} features per point, "
                         f"the first batch has {dim}")
      if values.dtype != np.float32 and not wide:
        out.close()
        _widen(raw, rows, dim)
        out = open(raw, "ab")  # pylint: disable=consider-using-with
        wide = True
      values.astype(np.float64 if wide else np.float32,
                    copy=False).tofile(out)
      rows += values.shape[0]
      max_abs = max(max_abs, batch_max)
  finally:
    out.close()
  if not rows:
    raise ValueError(f"{name}: the batches hold no rows")
  exponent = (_checks.unit_exponent(max_abs) if units is None else
              units(max_abs, dim))
  path = raw
  if wide or exponent:
    path = os.path.join(folder, "rows.float32")
    _to_units(raw, np.float64 if wide else np.float32, path, rows, dim,
              exponent)
    os.remove(raw)
  # A plain read-only np.memmap (arrays computed from it are plain arrays);
  # the folder goes when the last array reading the file does.
  stored = np.memmap(path, dtype=np.float32, mode="r", shape=(rows, dim))
  weakref.finalize(stored, shutil.rmtree, folder, ignore_errors=True)
  return stored, exponent, max_abs


def _widen(path: str, rows: int, dim: int) -> None:
  """Rewrites a file of float32 rows as float64 (exact)."""
  if not rows:
    return
  wide = path + ".wide"
  narrow = np.memmap(path, np.float32, "r", shape=(rows, dim))
  with open(wide, "wb") as out:
    step = _step_rows(dim)
    for start in range(0, rows, step):
      narrow[start:start + step].astype(np.float64).tofile(out)
  del narrow
  os.replace(wide, path)


def _to_units(source: str, dtype, target: str, rows: int, dim: int,
              exponent: int) -> None:
  """float32 rows of source / 2^exponent, as `_checks.to_units` makes them."""
  values = np.memmap(source, dtype, "r", shape=(rows, dim))
  out = np.memmap(target, np.float32, "w+", shape=(rows, dim))
  step = _step_rows(dim)
  for start in range(0, rows, step):
    chunk = values[start:start + step]
    if exponent:
      np.ldexp(chunk, -exponent, out=out[start:start + step],
               casting="same_kind")
    else:
      out[start:start + step] = chunk
  out.flush()
  del values, out
