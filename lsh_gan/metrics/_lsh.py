"""LSH-only precision and recall: coverage read from hash buckets (private).

The hash family and tables are in `_hashing`; the public function is
`lsh.lsh_precision_recall`.

LSH precision and recall (this project's reading of Mordido et al. 2021, whose
text is not available to us; no distance to any reference point is computed):
with count_S,l(x) = number of points of S in x's bucket of table l,
  precision = 1/|G| sum_g 1[exists l: count_R,l(g) >= m]
  recall    = 1/|R| sum_r 1[exists l: count_G,l(r) >= m]
with m = `min_count`. Buckets have a fixed size, so an outlier covers only
its own cell, where a k-NN ball around an outlier grows with its isolation.

The width is data-driven by default and read per side, as the KNN radii are:
precision hashes with the real set's width, recall with the fake set's,
w = 4 * median NND_k of the set (k = 3), computed exactly for a random
sample of at most WIDTH_SAMPLE = 128 of its points (sample x n x d work), in
the same pass over the set as its projections. A median of 0 at float32
resolution (a collapsed set) raises `DegenerateError`.

References:
  M. Datar et al., "Locality-Sensitive Hashing Scheme Based on p-Stable
  Distributions", SoCG 2004.
  G. Mordido, H. Yang, C. Meinel, "Evaluating Post-Training Compression in
  GANs using Locality-Sensitive Hashing", https://arxiv.org/abs/2103.11912
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.metrics import _checks
from lsh_gan.metrics import _hashing

NUM_TABLES = 8
NUM_HASHES = 8
WIDTH_FACTOR = 4.0


class Tables:
  """One point set hashed into L sorted tables.

  Args:
    projected: the set's projections (`_hashing.HashFamily.project`).
    family: the hash family.
    width: bucket width w.
  """

  def __init__(self, projected: _hashing.Projected, family: _hashing.HashFamily, width: float):
    self.n = projected.n
    self.width = float(width)
    self.family = family
    key1, key2 = family.keys(projected.values, width)
    self.sorted1, self.sorted2, self.run_end = _hashing.sort_tables(key1, key2, self.n)

  def rescaled(self, exponent: int) -> "Tables":
    """The same tables for queries in units 2^-exponent times as large.

    Keys depend only on projection / width, so only the width changes.
    """
    out = object.__new__(Tables)
    out.__dict__.update(self.__dict__)
    out.width = math.ldexp(self.width, exponent)
    return out

  def counts(self, queries: _hashing.Projected) -> jax.Array:
    """(m, L) bucket sizes of each query point in each table."""
    out = []
    for _, block in _hashing.row_blocks(queries.values):
      q1, q2 = self.family.keys(block, self.width)
      out.append(_hashing.bucket_counts(self.sorted1, self.sorted2, self.run_end,
                                self.n, q1, q2))
    return jnp.concatenate(out)[:queries.n]

  def covered(self, queries: _hashing.Projected, min_count: int) -> int:
    """Number of queries whose bucket holds >= min_count points in a table."""
    total = jnp.zeros((), jnp.int32)
    for start, block in _hashing.row_blocks(queries.values):
      q1, q2 = self.family.keys(block, self.width)
      total = _count_covered(total, self.sorted1, self.sorted2, self.run_end,
                             self.n, q1, q2, min_count, queries.n - start)
    return int(total)


@jax.jit
def _count_covered(total, s1, s2, run_end, num_valid, q1, q2, min_count,
                   rows_left):
  counts = _hashing.bucket_counts(s1, s2, run_end, num_valid, q1, q2)
  hit = jnp.any(counts >= min_count, axis=1) & (
      jnp.arange(q1.shape[0]) < rows_left)
  return total + jnp.sum(hit, dtype=jnp.int32)


def default_width(projected: _hashing.Projected, name: str,
                  factor: float | None = None) -> float:
  """`factor` times the median sampled NND_k of a projected set.

  The sample (WIDTH_SAMPLE points, each one's NND_k exact against the whole
  set) is read by `_hashing.HashFamily.project(..., radii_seed=seed)`.
  """
  factor = WIDTH_FACTOR if factor is None else factor
  if projected.n < _hashing.WIDTH_K + 1:
    raise ValueError(f"{name}: a set of {projected.n} points is too small to "
                     f"read a default bucket width (needs {_hashing.WIDTH_K + 1}); "
                     "pass bucket_width")
  width = factor * float(np.median(projected.sample_radii))
  if width <= 0:
    raise _checks.DegenerateError(
        f"{name}: the set's median k-NN distance is 0 at float32 resolution "
        "(mostly duplicate points, or most points within rounding of each "
        "other next to far larger ones); pass bucket_width")
  return width
