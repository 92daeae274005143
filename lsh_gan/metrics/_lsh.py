"""LSH-only precision and recall: coverage read from hash buckets (private).

The hash family and tables are in `_hashing`; the public function is
`lsh.lsh_precision_recall`, and `reference.Reference` keeps the real side.

This project's reading of Mordido et al. 2021 (whose exact rule is not
available to us); no distance between a fake and a real point is computed.
With L tables of K p-stable hashes at width w, and count_S,l(x) the number
of points of S in x's bucket of table l (x itself not counted when x is in
S), a point's hits against S are

  hits_S(x) = #{l : count_S,l(x) >= m},   m = `min_count`,

the number of tables in which x finds company in S: a density estimate at
the scale of the buckets (the expected count is a sum over S of an
exponential-like kernel of the distance).

Coverage rule (`coverage`):
  "calibrated" (default): x is covered by S when hits_S(x) >= t_S, where
      t_S is the largest threshold that at least 1 - q of S's own
      non-isolated points reach (their hits against the rest of S;
      isolated: 0 hits, outliers of S), q = CALIBRATION_QUANTILE = 0.1.
      The score is the covered fraction divided by the fraction c_S of S's
      non-isolated points that reach t_S (about 1 - q), capped at 1:
        precision = min(1, #{g : hits_R(g) >= t_R} / (|G| c_R))
        recall    = min(1, #{r : hits_G(r) >= t_G} / (|R| c_G))
      So a fresh sample of the real distribution reads about 1, a sample
      that is 20% noise about 0.8, and S's own outliers move nothing (they
      are left out of t_S and c_S, and their buckets hold nothing else).
  "any": covered when hits >= 1, no normalisation (the rule of the first
      version of this project: with many tables, or wide buckets, nearly
      everything is covered).
  "majority": covered when hits > L / 2, no normalisation.

Width (per side, as the KNN radii are: precision hashes at the real set's
width, recall at the fake set's): the width at which the median (point,
table) pair of the set has BUCKET_MATES = 2 bucket-mates, found by bisection
on log w over [r / 8, 64 r], r the set's median 3-NN distance read from a
random sample of WIDTH_SAMPLE points (keys and one sort per table and step;
no distances beyond the sample). A multiple of r alone does not serve every
embedding: a bucket is unbounded in d - K directions, so how many points it
holds at a fixed multiple depends on the intrinsic dimension (1.2 r in
2,048-d Gaussians, 3 r in the digit embeddings, 5 r in 2-d). A median 3-NN
distance of 0 at float32 resolution (a collapsed set) raises
`DegenerateError`.

Defaults (L = 32, K = 8, 2 bucket-mates, calibrated, q = 0.1) are the best
of a measured grid (L in {16, 32}, K in {4, 8, 12, 16}, mates in {1, 2, 4,
8}, the three rules, q in {0.1, 0.2}; docs/metrics.md) on known-truth sets
built from real digit embeddings and on Gaussian mode mixtures.

Cost: a set is projected (n x d x L*K) once, or once per pass for a large
set at d < L*K (`_hashing.Projected`); a query is L binary searches: O(1)
per evaluated point, and no n x n work anywhere.

References:
  G. Mordido, H. Yang, C. Meinel, "Evaluating Post-Training Compression in
  GANs using Locality-Sensitive Hashing", https://arxiv.org/abs/2103.11912
  A. Alaa et al., "How Faithful is your Synthetic Data? Sample-level Metrics
  for Evaluating and Auditing Generative Models", ICML 2022 (precision and
  recall against a quantile-calibrated support of each distribution).
"""

from __future__ import annotations

import dataclasses
import fractions
import math

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.metrics import _checks
from lsh_gan.metrics import _hashing

NUM_TABLES = 32
NUM_HASHES = 8
BUCKET_MATES = 2
CALIBRATION_QUANTILE = 0.1
COVERAGE_RULES = ("calibrated", "any", "majority")
# The bisection bracket of the default width, around the median 3-NN
# distance r (measured widths: 1.2 r to 5 r), and its steps (0.15% apart).
WIDTH_BRACKET = (1 / 8, 64.0)
WIDTH_STEPS = 12
WIDTH_TABLES = _hashing.STORED_TABLES  # tables the width search counts mates in


def check_coverage(value) -> str:
  if value not in COVERAGE_RULES:
    raise ValueError(f"coverage={value!r} must be one of "
                     f"{', '.join(map(repr, COVERAGE_RULES))}")
  return value


@dataclasses.dataclass(frozen=True)
class Calibration:
  """The hits a set's own points reach against the rest of it.

  Attributes:
    threshold: t, the largest number of tables that at least 1 - q of the
      non-isolated points reach (at least 1).
    num_reaching: how many non-isolated points reach t.
    num_non_isolated: points with at least one hit (all points if none has).
  """
  threshold: int
  num_reaching: int
  num_non_isolated: int

  @classmethod
  def from_hits(cls, hits: np.ndarray, quantile: float | None = None
                ) -> "Calibration":
    return cls.from_histogram(np.bincount(hits), quantile)

  @classmethod
  def from_histogram(cls, histogram: np.ndarray,
                     quantile: float | None = None) -> "Calibration":
    """`from_hits`, given how many points have each number of hits
    (histogram[t]: points with hits == t)."""
    quantile = CALIBRATION_QUANTILE if quantile is None else quantile
    if not 0 <= quantile < 1:
      raise ValueError(f"quantile={quantile!r} must be in [0, 1)")
    histogram = np.array(histogram, np.int64)
    histogram[:1] = 0  # isolated points: outliers of the set, left out
    total = int(histogram.sum())
    if total == 0:  # no point has company: nothing to calibrate on
      return cls(1, 1, 1)
    # reach[t] = number of non-isolated points with hits >= t.
    reach = np.cumsum(histogram[::-1])[::-1]
    need = math.ceil((1 - quantile) * total)
    threshold = max(t for t in range(1, reach.size) if reach[t] >= need)
    return cls(threshold, int(reach[threshold]), total)


class Tables:
  """One point set hashed into L sorted tables.

  Args:
    projected: the set's projections (`_hashing.HashFamily.project`).
    family: the hash family.
    width: bucket width w.
  """

  def __init__(self, projected: _hashing.Projected,
               family: _hashing.HashFamily, width: float):
    self.n = projected.n
    self.width = float(width)
    self.family = family
    key1, key2 = projected.keys(family, width)
    host = _hashing.host_sorted(key1, key2, self.n)
    if host is None:
      (self.sorted1, self.sorted2, self.run_end,
       self.own_counts) = _sort_and_count(key1, key2, self.n)
    else:
      self.sorted1, self.sorted2, order = map(jax.device_put, host)
      self.run_end, self.own_counts = _count(self.sorted1, self.sorted2,
                                             order, self.n)

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
    for _, block in queries.blocks():
      q1, q2 = self.family.keys(block, self.width)
      out.append(_hashing.bucket_counts(self.sorted1, self.sorted2,
                                        self.run_end, self.n, q1, q2))
    return jnp.concatenate(out)[:queries.n]

  def hits(self, queries: _hashing.Projected, min_count: int) -> np.ndarray:
    """(m,) int32: in how many tables each query's bucket holds >= min_count
    points of this set."""
    out = []
    for _, block in queries.blocks():
      q1, q2 = self.family.keys(block, self.width)
      out.append(_hits(self.sorted1, self.sorted2, self.run_end, self.n, q1,
                       q2, min_count))
    return np.asarray(jnp.concatenate(out))[:queries.n]

  def own_hits(self, min_count: int) -> np.ndarray:
    """(n,) int32: `hits` of the set's own points, each not counting itself
    (read from the sorted runs: no search)."""
    return np.asarray(_own_hits(self.own_counts, min_count))[:self.n]

  def histogram(self, queries: _hashing.Projected,
                min_count: int) -> np.ndarray:
    """How many queries have each number of `hits` (0..L)."""
    return np.bincount(self.hits(queries, min_count),
                       minlength=self.family.num_tables + 1)

  def own_histogram(self, min_count: int) -> np.ndarray:
    """How many of the set's own points have each number of `own_hits`."""
    return np.bincount(self.own_hits(min_count),
                       minlength=self.family.num_tables + 1)


@jax.jit
def _sort_and_count(key1, key2, num_valid):
  """The sorted keys (`_hashing.sort_tables`), where each run ends, and each
  row's bucket size per table, (L, rows) in the rows' own order (0 for
  padding and for a row with no bucket)."""
  size = key1.shape[0]
  index = jnp.arange(size, dtype=jnp.int32)
  pad = (index >= num_valid)[:, None]
  k1 = jnp.where(pad, jnp.uint32(_hashing.NO_KEY), key1).T
  k2 = jnp.where(pad, jnp.uint32(_hashing.NO_KEY), key2).T
  rows = jnp.broadcast_to(index[None, :], k1.shape)
  s1, s2, order = jax.lax.sort((k1, k2, rows), dimension=1, num_keys=2)
  return (s1, s2) + _count(s1, s2, order, num_valid)


@jax.jit
def _count(s1, s2, order, num_valid):
  """(run_end, own counts) of sorted tables (see `_sort_and_count`).

  A point outside the code range in a table (key (NO_KEY, NO_KEY), shared
  with the padding) has no bucket there: count 0, as a query with that key
  gets (`_hashing.bucket_counts`), whatever the order of that run.
  """
  run_start, run_end = _hashing.run_bounds(s1, s2)
  index = jnp.arange(s1.shape[1], dtype=jnp.int32)
  no_key = jnp.uint32(_hashing.NO_KEY)
  bucket = (index[None, :] < num_valid) & ((s1 != no_key) | (s2 != no_key))
  count = jnp.where(bucket, jnp.minimum(run_end, num_valid) - run_start, 0)
  tables = jnp.arange(s1.shape[0])[:, None]
  own = jnp.zeros_like(count).at[tables, order].set(count)
  return run_end, own


@jax.jit
def _own_hits(own_counts, min_count):
  return jnp.sum(own_counts - 1 >= min_count, axis=0, dtype=jnp.int32)


@jax.jit
def _hits(s1, s2, run_end, num_valid, q1, q2, min_count):
  counts = _hashing.bucket_counts(s1, s2, run_end, num_valid, q1, q2)
  return jnp.sum(counts >= min_count, axis=1, dtype=jnp.int32)


def covered_fraction(hits: np.ndarray, coverage: str, num_tables: int,
                     calibration: Calibration | None) -> float:
  """The score of a set of queries from their hits (see the module doc)."""
  return covered_fraction_of_histogram(
      np.bincount(hits, minlength=num_tables + 1), coverage, num_tables,
      calibration)


def covered_fraction_of_histogram(histogram: np.ndarray, coverage: str,
                                  num_tables: int,
                                  calibration: Calibration | None) -> float:
  """`covered_fraction`, given how many queries have each number of hits."""
  histogram = np.asarray(histogram, np.int64)
  size = int(histogram.sum())
  hits = np.arange(histogram.size)
  if coverage == "any":
    return int(histogram[hits >= 1].sum()) / size
  if coverage == "majority":
    return int(histogram[2 * hits > num_tables].sum()) / size
  covered = int(histogram[hits >= calibration.threshold].sum())
  # Exact rational arithmetic: the same counts give the same float.
  value = fractions.Fraction(covered * calibration.num_non_isolated,
                             size * calibration.num_reaching)
  return float(min(value, 1))


@jax.jit
def _mates_reached(keys, num_valid, target):
  """Whether the median (point, table) pair has >= target bucket-mates;
  keys (rows, T), rows past num_valid are padding."""
  size, num_tables = keys.shape
  pad = (jnp.arange(size) >= num_valid)[None, :]
  ordered = jnp.sort(jnp.where(pad, jnp.uint32(_hashing.NO_KEY), keys.T),
                     axis=1)
  hits = _hashing.pairs_with_mates((ordered,), num_valid, target)
  return 2 * hits >= num_valid * num_tables


def default_width(projected: _hashing.Projected, family: _hashing.HashFamily,
                  name: str, mates_reached=None) -> float:
  """The width at which the set's median (point, table) pair has
  BUCKET_MATES bucket-mates (see the module doc).

  `projected` must carry the sample radii (`HashFamily.project(...,
  radii_seed=seed)`). `mates_reached(keys, n, target)` decides a step (the
  set on a mesh counts its buckets there); by default `_mates_reached`.

  Raises:
    ValueError: a set too small to read a width from.
    DegenerateError: a median sampled 3-NN distance of 0.
  """
  if projected.n < _hashing.WIDTH_K + 1:
    raise ValueError(f"{name}: a set of {projected.n} points is too small to "
                     "read a default bucket width (needs "
                     f"{_hashing.WIDTH_K + 1}); pass bucket_width")
  radius = float(np.median(projected.sample_radii))
  if radius <= 0:
    raise _checks.DegenerateError(
        f"{name}: the set's median k-NN distance is 0 at float32 resolution "
        "(mostly duplicate points, or most points within rounding of each "
        "other next to far larger ones); pass bucket_width")
  if mates_reached is None:
    mates_reached = lambda keys, n, target: bool(_mates_reached(keys, n,
                                                                target))
  # The search runs on the factor over the radius, so a set times 2^e gets
  # exactly the width times 2^e (and the same keys).
  lo, hi = math.log(WIDTH_BRACKET[0]), math.log(WIDTH_BRACKET[1])
  for _ in range(WIDTH_STEPS):
    mid = (lo + hi) / 2
    keys = family.first_keys(projected.values, radius * math.exp(mid),
                             min(WIDTH_TABLES, family.num_tables))
    if mates_reached(keys, projected.n, BUCKET_MATES):
      hi = mid
    else:
      lo = mid
  return radius * math.exp(hi)
