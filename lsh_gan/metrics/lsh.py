"""LSH precision and recall: coverage read from hash buckets, not k-NN balls.

Hash family (p-stable, Datar et al. 2004): for table l = 1..L and function
j = 1..K, h_lj(x) = floor((a_lj . x + b_lj) / w), a ~ N(0, I), b ~ U[0, w).
A table's bucket key is its K integer codes combined by two independent
32-bit universal hashes (each code is first mixed by the murmur3 finalizer
with a per-function seed, then the mixed codes are summed with random odd
multipliers mod 2^32), so distinct code vectors share a key with probability
about 2^-64. Buckets are found by sorting each table's keys and a
lexicographic binary search over (key1, key2), with static shapes.

Two points at distance c share one function's code with probability
p(c) = 1 - 2 Phi(-w/c) - 2 / (sqrt(2 pi) w/c) (1 - exp(-(w/c)^2 / 2)), a
table with p(c)^K.

LSH precision and recall (this project's reading of Mordido et al. 2021, whose
text is not available to us; no distance to any reference point is computed):
with count_S,l(x) = number of points of S in x's bucket of table l,
  precision = 1/|G| sum_g 1[exists l: count_R,l(g) >= m]
  recall    = 1/|R| sum_r 1[exists l: count_G,l(r) >= m]
with m = `min_count`. Buckets have a fixed size, so an outlier covers only
its own cell, where a k-NN ball around an outlier grows with its isolation.

The width is data-driven by default and read per side, as the KNN radii are:
precision hashes with the real set's width, recall with the fake set's,
w = width_factor * median NND_k of the set (k = 3), estimated exactly on a
random sample of at most 1,000 of its points (sample x n x d work).

References:
  M. Datar et al., "Locality-Sensitive Hashing Scheme Based on p-Stable
  Distributions", SoCG 2004.
  G. Mordido, H. Yang, C. Meinel, "Evaluating Post-Training Compression in
  GANs using Locality-Sensitive Hashing", https://arxiv.org/abs/2103.11912
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.metrics import _checks
from lsh_gan.metrics import knn

NUM_TABLES = 16
NUM_HASHES = 8
WIDTH_FACTOR = 4.0
WIDTH_K = 3
WIDTH_SAMPLE = 1000
QUERY_BLOCK = 4096  # query points per jitted call


def collision_probability(distance, width):
  """p(c): probability that one p-stable hash agrees at distance c."""
  from scipy.special import ndtr  # pylint: disable=g-import-not-at-top
  r = np.asarray(width, np.float64) / np.maximum(
      np.asarray(distance, np.float64), 1e-300)
  return 1 - 2 * ndtr(-r) - 2 / (np.sqrt(2 * np.pi) * r) * (
      1 - np.exp(-r * r / 2))


def _fmix32(h):
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


@dataclasses.dataclass(frozen=True)
class HashFamily:
  """L tables of K p-stable hash functions on d-dimensional points.

  Attributes:
    projections: (d, L*K) float32, a ~ N(0, I).
    offsets: (L*K,) float32 in [0, 1): b / w.
    seeds, multipliers: (2, L, K) uint32 of the two key hashes.
  """
  projections: jax.Array
  offsets: jax.Array
  seeds: jax.Array
  multipliers: jax.Array
  num_tables: int
  num_hashes: int

  @classmethod
  def create(cls, dim: int, num_tables: int, num_hashes: int,
             seed: int) -> "HashFamily":
    rng = np.random.default_rng(seed)
    lk = num_tables * num_hashes
    words = rng.integers(0, 2 ** 32, size=(2, 2, num_tables, num_hashes),
                         dtype=np.uint64).astype(np.uint32)
    return cls(
        projections=jnp.asarray(rng.standard_normal((dim, lk), np.float32)),
        offsets=jnp.asarray(rng.random(lk, np.float32)),
        seeds=jnp.asarray(words[0]),
        multipliers=jnp.asarray(words[1] | np.uint32(1)),
        num_tables=num_tables, num_hashes=num_hashes)

  def keys(self, x: jax.Array, width: float):
    """(n, L) uint32 key pairs of points x."""
    return _keys(x, jnp.float32(width), self.projections, self.offsets,
                 self.seeds, self.multipliers)


@jax.jit
def _keys(x, width, projections, offsets, seeds, multipliers):
  num_tables, num_hashes = seeds.shape[1:]
  proj = jnp.dot(x, projections, precision=jax.lax.Precision.HIGHEST)
  codes = jnp.floor(proj / width + offsets).astype(jnp.int32)
  codes = jax.lax.bitcast_convert_type(codes, jnp.uint32).reshape(
      x.shape[0], num_tables, num_hashes)
  key = lambda i: jnp.sum(_fmix32(codes ^ seeds[i]) * multipliers[i], axis=-1,
                          dtype=jnp.uint32)
  return key(0), key(1)


@jax.jit
def _sort_tables(key1, key2):
  """Per table (rows of the result), keys sorted lexicographically."""
  return jax.lax.sort((key1.T, key2.T), dimension=1, num_keys=2)


def _bound(s1, s2, q1, q2, num_valid, upper: bool):
  """First index whose key is > (upper) or >= (lower) the query, per table.

  s1, s2: (L, n) sorted keys; q1, q2: (B, L) queries.
  """
  steps = max(1, math.ceil(math.log2(s1.shape[1] + 1)))
  lo = jnp.zeros(q1.shape, jnp.int32)
  hi = jnp.full(q1.shape, num_valid, jnp.int32)
  tables = jnp.arange(s1.shape[0])[None, :]

  def step(_, bounds):
    lo, hi = bounds
    mid = (lo + hi) // 2
    m1, m2 = s1[tables, mid], s2[tables, mid]
    before = (m1 < q1) | ((m1 == q1) & ((m2 <= q2) if upper else (m2 < q2)))
    active = lo < hi
    return (jnp.where(active & before, mid + 1, lo),
            jnp.where(active & ~before, mid, hi))

  lo, _ = jax.lax.fori_loop(0, steps, step, (lo, hi))
  return lo


@jax.jit
def _bucket_counts(s1, s2, num_valid, q1, q2):
  """(B, L) number of table points in each query's bucket."""
  return (_bound(s1, s2, q1, q2, num_valid, True) -
          _bound(s1, s2, q1, q2, num_valid, False))


class Tables:
  """One point set hashed into L sorted tables.

  Args:
    points: (n, d) float32 points.
    family: the hash family.
    width: bucket width w.
  """

  def __init__(self, points: jax.Array, family: HashFamily, width: float):
    self.n = points.shape[0]
    self.width = float(width)
    self.family = family
    key1, key2 = family.keys(points, width)
    self.sorted1, self.sorted2 = _sort_tables(key1, key2)

  def counts(self, queries: jax.Array) -> jax.Array:
    """(m, L) bucket sizes of each query point in each table."""
    out = []
    for start in range(0, queries.shape[0], QUERY_BLOCK):
      block = queries[start:start + QUERY_BLOCK]
      size = block.shape[0]
      block = jnp.pad(block, ((0, QUERY_BLOCK - size), (0, 0)))
      q1, q2 = self.family.keys(block, self.width)
      out.append(_bucket_counts(self.sorted1, self.sorted2, self.n, q1,
                                q2)[:size])
    return jnp.concatenate(out)


def default_width(points: jax.Array, *, factor: float = WIDTH_FACTOR,
                  k: int = WIDTH_K, sample: int = WIDTH_SAMPLE,
                  seed: int = 0) -> float:
  """`factor` times the median distance to the k-th nearest neighbour.

  The median is estimated exactly on a random sample of `sample` points.
  """
  if points.shape[0] < k + 1:
    raise ValueError(f"a set of {points.shape[0]} points is too small to read "
                     f"a default bucket width (needs {k + 1}); pass "
                     "bucket_width")
  radii = knn.sample_nearest_distances(points, k, sample, seed)
  width = factor * float(np.median(radii))
  if width <= 0:
    raise ValueError("the set's median k-NN distance is 0 (mostly duplicate "
                     "points); pass bucket_width")
  return width


def check_width(value, name: str = "bucket_width") -> float | None:
  """None, or a finite number > 0 as float; else ValueError naming it."""
  if value is None:
    return None
  if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(
      value, bool) or not math.isfinite(value) or value <= 0:
    raise ValueError(f"{name}={value!r} must be a finite number > 0")
  return float(value)


def prepare(real, fake, num_tables, num_hashes, bucket_width, seed):
  """The shared set-up of the LSH metrics, from validated sets.

  Returns both sets centred on the real mean (so codes stay small integers),
  the hash family, and the bucket width per side: `bucket_width` for both, or
  each set's own default width.
  """
  num_tables = _checks.positive_int(num_tables, "num_tables")
  num_hashes = _checks.positive_int(num_hashes, "num_hashes")
  bucket_width = check_width(bucket_width)
  centre = jnp.mean(real, axis=0)
  real, fake = real - centre, fake - centre
  family = HashFamily.create(real.shape[1], num_tables, num_hashes, seed)
  widths = {name: bucket_width or default_width(points, seed=seed)
            for name, points in (("real", real), ("fake", fake))}
  return real, fake, family, widths


def lsh_precision_recall(real, fake, *, num_tables: int = NUM_TABLES,
                         num_hashes: int = NUM_HASHES,
                         bucket_width: float | None = None, min_count: int = 1,
                         seed: int = 0) -> dict[str, float]:
  """LSH-only precision and recall: bucket occupancy instead of k-NN balls.

  precision = fraction of fake points whose bucket holds >= `min_count` real
  points in at least one of the L tables; recall = fraction of real points
  whose bucket holds >= `min_count` fake points in at least one table.

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    num_tables: L, independent hash tables (default 16).
    num_hashes: K, hash functions per table (default 8).
    bucket_width: w for both sides; None (default) reads it per side: the
      real set's for precision, the fake set's for recall, each 4 times the
      set's median 3-NN distance (estimated on up to 1,000 sampled points).
    min_count: m, points a bucket must hold to cover a query (default 1).
    seed: seed of the hash functions and the width sample.

  Returns:
    {"precision": float, "recall": float}.

  Raises:
    ValueError: NaN/inf, not 2-D, feature sizes differ, too few points for
      the default width, or a non-positive count or width.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(500, 8))
    >>> lsh_precision_recall(x, x)
    {'precision': 1.0, 'recall': 1.0}

  References:
    https://arxiv.org/abs/2103.11912
  """
  real, fake = _checks.pair(real, fake)
  min_count = _checks.positive_int(min_count, "min_count")
  real, fake, family, widths = prepare(real, fake, num_tables, num_hashes,
                                       bucket_width, seed)
  covered = lambda tables, queries: int(jnp.sum(
      jnp.any(tables.counts(queries) >= min_count, axis=1), dtype=jnp.int32))
  precision = covered(Tables(real, family, widths["real"]), fake)
  recall = covered(Tables(fake, family, widths["fake"]), real)
  return {"precision": precision / fake.shape[0],
          "recall": recall / real.shape[0]}
