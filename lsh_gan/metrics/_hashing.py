"""The p-stable hash family and sorted bucket tables the LSH metrics share.

Hash family (Datar et al. 2004): for table l = 1..L and function j = 1..K,
h_lj(x) = floor((a_lj . x + b_lj) / w), a ~ N(0, I), b ~ U[0, w). A table's
bucket key is its K integer codes combined by two independent 32-bit
universal hashes (each code is first mixed by the murmur3 finalizer with a
per-function seed, then the mixed codes are summed with random odd
multipliers mod 2^32), so distinct code vectors share a key with probability
about 2^-64. Buckets are found by sorting each table's keys and a
lexicographic binary search over (key1, key2), with static shapes.

Two points at distance c share one function's code with probability
p(c) = 1 - 2 Phi(-w/c) - 2 / (sqrt(2 pi) w/c) (1 - exp(-(w/c)^2 / 2)), a
table with p(c)^K.

Shapes: a set is projected (n x d x L*K work; `Projected` says how often)
in fixed blocks of rows and padded to a size class (at most max(1023, n/8) more rows, eight classes
per doubling), so a new n reuses compiled code unless it crosses a class.
A projection pass can also compute the exact k-NN distances (k = WIDTH_K) of
a random sample of WIDTH_SAMPLE points of the set, which default widths read.

Private: the public metrics are `lsh.lsh_precision_recall`,
`lsh_knn.lsh_knn_precision_recall` and `reference.Reference`.

References:
  M. Datar et al., "Locality-Sensitive Hashing Scheme Based on p-Stable
  Distributions", SoCG 2004.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.metrics import knn

WIDTH_K = 3
WIDTH_SAMPLE = 32
WIDTH_CANDIDATES = 32  # float32 candidates per sample point, checked in float64
ROW_BLOCK = 4096  # rows per projection and query call (at most)
MIN_ROW_BLOCK = 256  # ... at least (a smaller set gets a smaller block)
NO_KEY = 0xFFFFFFFF  # the key of padding rows, sorted last


def padded_size(n: int) -> int:
  """Rows a set of n points is padded to: a multiple of 2^(floor(log2 n)-3).

  At most max(1023, n/8) rows more than n (a multiple of 1,024 below 8,192
  points), eight sizes per doubling above, so a new n rarely compiles anything
  new.
  """
  granule = max(1024, 1 << max(0, n.bit_length() - 4))
  return -(-n // granule) * granule


def _host_view(x: jax.Array) -> np.ndarray | None:
  """A numpy view of x's buffer if it lives on the CPU (no copy), else None.
  A numpy array (a set gathered from a mesh) is its own view."""
  if isinstance(x, np.ndarray):
    return x
  if all(device.platform == "cpu" for device in x.devices()):
    return np.asarray(x)
  return None


def row_block(n: int) -> int:
  """Rows per block for a set of n rows: the smallest power of two holding
  n, between MIN_ROW_BLOCK and ROW_BLOCK (five sizes in all: 1,000 points
  are not padded to 4,096)."""
  return min(ROW_BLOCK, max(MIN_ROW_BLOCK, 1 << max(0, n - 1).bit_length()))


def row_blocks(x: jax.Array, block: int | None = None):
  """Yields (start, rows) blocks of `block` rows (default `row_block(n)`),
  the last zero-padded.

  On CPU the blocks are numpy views of x's buffer (no copy, and no
  operation whose shape depends on n, so a new n compiles nothing here
  unless it crosses a power of two below ROW_BLOCK).
  """
  block = block or row_block(x.shape[0])
  host = _host_view(x)
  x, pad = (x, jnp.pad) if host is None else (host, np.pad)
  for start in range(0, x.shape[0], block):
    rows = x[start:start + block]
    if rows.shape[0] < block:
      rows = pad(rows, ((0, block - rows.shape[0]), (0, 0)))
    yield start, rows


def take_rows(x: jax.Array, index: np.ndarray):
  """x[index] (on CPU gathered by numpy: nothing compiled per n)."""
  host = _host_view(x)
  return x[jnp.asarray(index)] if host is None else host[index]


@jax.jit
def _sum_rows(total, rows):
  return total + jnp.sum(rows, axis=0)


def mean_rows(x: jax.Array) -> jax.Array:
  """Mean over the rows of x, in fixed row blocks (nothing compiled per n)."""
  total = jnp.zeros(x.shape[1], jnp.float32)
  for _, rows in row_blocks(x):
    total = _sum_rows(total, rows)
  return total / x.shape[0]


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


STORED_TABLES = 4  # tables whose projections a large Projected keeps
KEEP_ALL_BYTES = 1 << 28  # ... a set in memory keeps all below this size


@dataclasses.dataclass(frozen=True)
class _Source:
  """What recomputes a set's projections: the set, the centre's projection,
  the directions, and a power of two applied to the result."""
  x: jax.Array
  shift: jax.Array
  projections: jax.Array
  exponent: int = 0


@dataclasses.dataclass(frozen=True)
class Projected:
  """A point set's projections a.(x - centre) on a family's directions.

  A set held in memory keeps every table's projections when they are no
  larger than the set itself (L*K <= d) or than KEEP_ALL_BYTES: it is then
  projected once. Otherwise (the LSH-only defaults' 256 projections per
  point are 4 times a 64-dimensional set; and always for a set in a
  memory-mapped file, `Reference.from_batches`) only the first
  STORED_TABLES tables' columns are kept (the default widths search those,
  many times) and every pass that needs all tables (`blocks`, `keys`)
  recomputes them from the set, one row block at a time: one n x d x L*K
  product per pass, the same numbers in every pass.

  Attributes:
    values: (padded_size(n), T*K) float32, the first T tables' columns (T =
      L when all are kept, else min(L, STORED_TABLES)); rows past n are
      padding.
    n: number of points.
    sample_radii: exact NND_k (k = WIDTH_K) of up to WIDTH_SAMPLE random
      points of the set, read in the same pass, or None.
    source: what recomputes the projections.
  """
  values: jax.Array
  n: int
  sample_radii: np.ndarray | None = None
  source: _Source | None = None

  def rescaled(self, exponent: int) -> "Projected":
    """The same projections (and sample radii) times 2^exponent."""
    radii = (None if self.sample_radii is None else
             np.ldexp(self.sample_radii, exponent))
    source = dataclasses.replace(self.source,
                                 exponent=self.source.exponent + exponent)
    return Projected(knn.times_power_of_two(self.values, exponent), self.n,
                     radii, source)

  @property
  def keeps_all(self) -> bool:
    return self.values.shape[1] == self.source.projections.shape[1]

  def blocks(self):
    """Yields (start, (block, L*K) projections) by row blocks of the set
    (`row_blocks`; rows past n are padding)."""
    source = self.source
    if self.keeps_all:
      yield from row_blocks(self.values, row_block(self.n))
      return
    for start, rows in row_blocks(source.x):
      out = _project(jax.device_put(rows), source.shift, source.projections)
      if source.exponent:
        out = knn.times_power_of_two(out, source.exponent)
      yield start, out

  def keys(self, family: "HashFamily", width: float):
    """(padded_size(n), L) key pairs of every table at `width`, computed
    block by block (rows past n hold no valid key: callers mask them)."""
    if self.keeps_all:
      return family.keys(self.values, width)
    parts = [family.keys(block, width) for _, block in self.blocks()]
    return tuple(_fit_rows(jnp.concatenate([p[i] for p in parts]),
                           padded_size(self.n)) for i in range(2))

  def all_values(self) -> jax.Array:
    """(padded_size(n), L*K): every table's projections in one array."""
    if self.keeps_all:
      return self.values
    return _fit_rows(jnp.concatenate([b for _, b in self.blocks()]),
                     padded_size(self.n))


def _fit_rows(x: jax.Array, size: int) -> jax.Array:
  """x cut or zero-padded to `size` rows."""
  if x.shape[0] >= size:
    return x[:size]
  return jnp.pad(x, ((0, size - x.shape[0]),) + ((0, 0),) * (x.ndim - 1))


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

  def project(self, x: jax.Array, centre: jax.Array | None = None, *,
              radii_seed: int | None = None) -> Projected:
    """Projections of the points x - centre (x is not copied or padded).

    With `radii_seed`, also the exact NND_k of WIDTH_SAMPLE points drawn by
    that seed (the default width's input; `sample_radii`).
    """
    n, dim = x.shape
    if centre is None:
      centre = jnp.zeros(dim, jnp.float32)
    # a.(x - c) = a.x - a.c: the rows go to the product as they are (XLA on
    # CPU would otherwise write a centred copy of each block first).
    shift = jnp.dot(centre, self.projections,
                    precision=jax.lax.Precision.HIGHEST)
    search = None if radii_seed is None else _RadiusSearch(x, radii_seed)
    every = self.num_tables * self.num_hashes
    kept = min(self.num_tables, STORED_TABLES) * self.num_hashes
    if not isinstance(x, np.memmap) and (
        every <= dim or padded_size(n) * every * 4 <= KEEP_ALL_BYTES):
      kept = every
    blocks = []
    for start, rows in row_blocks(x):
      rows = jax.device_put(rows)  # once, for both passes over the block
      # The whole product, then its first columns: the numbers `blocks`
      # recomputes (a narrower product may round differently).
      blocks.append(_project(rows, shift, self.projections)[:, :kept])
      if search is not None:
        search.update(start, rows)
    radii = None if search is None else search.radii()
    return Projected(_fit_rows(jnp.concatenate(blocks), padded_size(n)), n,
                     radii, _Source(x, shift, self.projections))

  def keys(self, projected: jax.Array, width: float):
    """(rows, L) uint32 key pairs from projections (see `project`)."""
    return _keys(projected, jnp.float32(width), self.offsets, self.seeds,
                 self.multipliers)

  def first_keys(self, projected: jax.Array, width: float, num_tables: int):
    """The first key of each of the first `num_tables` tables, (rows, T):
    enough to count bucket sizes (two distinct buckets share a first key
    with probability 2^-32), at a fraction of the work."""
    lk = num_tables * self.num_hashes
    return _keys(projected[:, :lk], jnp.float32(width), self.offsets[:lk],
                 self.seeds[:1, :num_tables],
                 self.multipliers[:1, :num_tables])[0]


@jax.jit
def _project(rows, shift, projections):
  return jnp.dot(rows, projections, precision=jax.lax.Precision.HIGHEST) - shift


def sample_radii(x: jax.Array, seed: int) -> np.ndarray:
  """Exact NND_k (k = WIDTH_K) of WIDTH_SAMPLE points of x drawn by `seed`
  (`HashFamily.project` computes them in its own pass over x).

  Two steps, exact in the end:
  1. One float32 pass over x (jitted, in fixed row blocks, about the
     sample's mean) keeps each sample point's WIDTH_CANDIDATES + 1 smallest
     squared distances by the expansion |s|^2 + |x|^2 - 2 s.x, and a bound B
     on that expansion's rounding error (below).
  2. The candidates' distances are recomputed on the host in float64 from
     the differences (exact for float32 inputs up to float64 rounding: a
     copy of a point is at distance 0; below float64's resolution of the
     points' norms, `_RESOLUTION`, a distance counts as 0). The k-th of them
     is the true NND_k when the (WIDTH_CANDIDATES + 1)-th expansion value,
     less B, is no smaller than it plus that resolution: no point left out
     can be closer. The sample points for which that does not hold (a dense
     set far from the mean: ring8's 3-NN distances are 1.4e-3 of its
     radius) are measured against every point in one float64 pass.
  The bound: with s' = s - c and x' = x - c, the expansion
  |s'|^2 + |x'|^2 - 2 (s'.x - s'.c) errs by at most about (d + 4) eps
  ((|s'| + |x'|)^2 + 2 |s'| (|x| + |c|)) in float32 (Higham's dot-product
  bound, any summation order; centring rounds each coordinate by eps |x'|),
  so B = 2 (d + 8) eps ((|s'| + max |x'|)^2 + 2 |s'| (max |x| + |c|)), with
  eps = 2^-24, leaves a margin of 2x. (IEEE float32 products: on TPU,
  HIGHEST precision is emulated in bfloat16 passes, also within it.)
  """
  search = _RadiusSearch(x, seed)
  for start, rows in row_blocks(x):
    search.update(start, rows)
  return search.radii()


class _RadiusSearch:
  """`sample_radii`, fed one row block at a time."""

  def __init__(self, x: jax.Array, seed: int):
    self.x = x
    n = x.shape[0]
    self.index = np.sort(np.random.default_rng(seed).choice(
        n, min(n, WIDTH_SAMPLE), replace=False))
    self.sample = np.asarray(take_rows(x, self.index), np.float64)
    self.centre = self.sample.mean(axis=0).astype(np.float32)
    self.keep = min(WIDTH_CANDIDATES + 1, n)
    size = (self.index.size, self.keep)
    self.best = (jnp.full(size, jnp.inf, jnp.float32),
                 jnp.zeros(size, jnp.int32), jnp.zeros(2, jnp.float32))
    self.args = (np.int32(n), jnp.asarray(self.sample.astype(np.float32)),
                 jnp.asarray(self.index, jnp.int32), jnp.asarray(self.centre))

  def update(self, start: int, rows) -> None:
    self.best = _nearest_candidates(*self.best, rows, np.int32(start),
                                    *self.args)

  def radii(self) -> np.ndarray:
    return radii_from_candidates(
        *(np.asarray(v) for v in self.best), self.sample, self.index,
        self.centre, self.x.shape, lambda index: take_rows(self.x, index),
        lambda: self.x)


def radii_from_candidates(approx, candidates, max_sq, sample, index, centre,
                        shape, take, all_rows) -> np.ndarray:
  """`sample_radii` from the float32 pass's results (each sample point's
  WIDTH_CANDIDATES + 1 smallest expansion d^2 and their rows, and the
  largest squared norms): `take(index)` returns rows of the set, and
  `all_rows()` the set itself, read only for the rare points the
  candidates cannot settle."""
  n, dim = shape
  keep = approx.shape[1]
  num = min(WIDTH_CANDIDATES, n)
  centred = sample - centre
  sample_norm = np.sqrt(np.einsum("ij,ij->i", centred, centred))
  max_centred, max_norm = np.sqrt(max_sq.astype(np.float64))
  bound = 2 * (dim + 8) * 2.0 ** -24 * (
      (sample_norm + max_centred) ** 2 +
      2 * sample_norm * (max_norm + np.linalg.norm(centre)))
  resolution = 2 * _RESOLUTION * (dim + 2) * (sample_norm ** 2 +
                                               max_centred ** 2)
  kth, fail = _checked_kth(
      shape, take, sample, centre, approx[:, :num], candidates[:, :num],
      approx[:, num] if keep > num else None, bound + resolution)
  if fail.size:
    kth[fail] = _exact_kth(all_rows(), sample[fail], index[fail], centre)
  return np.sqrt(kth)


# A squared distance under 8 (d + 2) float64 epsilons of the points' squared
# norms about the sample's mean counts as 0: below the resolution of
# anything computed from the points' coordinates (a bulk of points next to
# ones 1e25 times as far is one point, and a set of them is degenerate).
_RESOLUTION = 8 * float(np.finfo(np.float64).eps)


def _resolved_sq_dists(a: np.ndarray, b: np.ndarray, centre: np.ndarray):
  """Float64 squared distances between broadcast rows a and b, from their
  differences; those under the resolution above are 0."""
  diff = a - b
  d2 = np.sum(diff * diff, axis=-1)
  a, b = a - centre, b - centre
  norms = np.sum(a * a, axis=-1) + np.sum(b * b, axis=-1)
  d2[d2 <= _RESOLUTION * (a.shape[-1] + 2) * norms] = 0.0
  return d2


def _exact_kth(x: jax.Array, points: np.ndarray, self_index: np.ndarray,
               centre: np.ndarray) -> np.ndarray:
  """The WIDTH_K-th smallest `_resolved_sq_dists` from each of `points`
  (float64, rows `self_index` of x, left out) to the rows of x.

  One float64 pass for all of them keeps each point's `keep` nearest by the
  expansion about `centre`; those are recomputed from the differences, and
  the k-th is final when the next expansion value, less its float64
  rounding bound, cannot be nearer (the float32 argument of `sample_radii`
  with eps = 2^-53); a point where it could is measured from the
  differences against every row.
  """
  n, dim = x.shape
  keep = min(n, 2 * WIDTH_K + 2)
  centred = points - centre
  centred_sq = np.einsum("ij,ij->i", centred, centred)
  best = np.full((points.shape[0], keep), np.inf)
  best_index = np.zeros((points.shape[0], keep), np.int64)
  max_sq = 0.0
  for start, rows in row_blocks(x):
    rows = np.array(rows, np.float64)
    rows -= centre
    rows_sq = np.einsum("ij,ij->i", rows, rows)
    index = start + np.arange(rows.shape[0])
    max_sq = max(max_sq, float(np.max(rows_sq[index < n], initial=0.0)))
    d2 = centred_sq[:, None] + rows_sq[None, :] - 2.0 * (centred @ rows.T)
    d2[:, index >= n] = np.inf
    d2[index[None, :] == self_index[:, None]] = np.inf  # self, by index
    d2 = np.concatenate([best, d2], axis=1)
    both = np.concatenate(
        [best_index, np.broadcast_to(index, (points.shape[0], index.size))],
        axis=1)
    pick = np.argpartition(d2, keep - 1, axis=1)[:, :keep]
    best = np.take_along_axis(d2, pick, axis=1)
    best_index = np.take_along_axis(both, pick, axis=1)
  order = np.argsort(best, axis=1)
  best = np.take_along_axis(best, order, axis=1)
  norm = np.sqrt(centred_sq) + math.sqrt(max_sq)
  margin = (2 * (dim + 8) * 2.0 ** -53 * norm ** 2 +
            2 * _RESOLUTION * (dim + 2) * (centred_sq + max_sq))
  # The last kept value bounds every point left out from below.
  kth, fail = _checked_kth(
      x.shape, lambda index: take_rows(x, index), points, centre, best,
      np.take_along_axis(best_index, order, axis=1),
      best[:, -1] if keep < n - 1 else None, margin)
  for i in fail:
    kth[i] = _kth_by_differences(x, points[i], self_index[i], centre)
  return kth


def _checked_kth(shape, take, points: np.ndarray, centre: np.ndarray,
                 approx: np.ndarray, candidates: np.ndarray, next_approx,
                 margin) -> tuple[np.ndarray, np.ndarray]:
  """The WIDTH_K-th smallest `_resolved_sq_dists` from each of `points` to
  its candidate rows of x (`approx`: their approximate d^2, inf for a slot
  with no point), and the points where a row left out could still be nearer:
  `next_approx` (a lower bound of the approximate d^2 of every row left
  out; None if none is) less `margin` below that k-th."""
  n, dim = shape
  num = candidates.shape[1]
  # Clamped: a slot with no point (inf) may hold any index.
  rows = np.asarray(take(np.minimum(candidates, n - 1).ravel()),
                    np.float64).reshape(points.shape[0], num, dim)
  d2 = _resolved_sq_dists(points[:, None, :], rows, centre)
  d2[~np.isfinite(approx)] = np.inf  # padding and self
  kth = (np.sort(d2, axis=1)[:, WIDTH_K - 1] if num >= WIDTH_K else
         np.full(points.shape[0], np.inf))
  if next_approx is None:
    return kth, np.zeros(0, np.int64)
  return kth, np.flatnonzero(next_approx - margin < kth)


def _kth_by_differences(x: jax.Array, point: np.ndarray, self_index: int,
                        centre: np.ndarray) -> float:
  """`_exact_kth` of one point, from its differences to every row."""
  n = x.shape[0]
  best = np.full(WIDTH_K, np.inf)
  for start, rows in row_blocks(x):
    d2 = _resolved_sq_dists(point, np.asarray(rows, np.float64), centre)
    index = start + np.arange(rows.shape[0])
    d2[(index >= n) | (index == self_index)] = np.inf
    best = np.sort(np.concatenate([best, d2]))[:WIDTH_K]
  return float(best[-1])


@jax.jit
def _nearest_candidates(best_d2, best_index, max_sq, rows, start, num_valid,
                        sample, sample_index, centre):
  """The running smallest expansion d^2 of each sample point (see
  `sample_radii`), merged with one block of rows; max_sq holds the largest
  |x - c|^2 and |x|^2 so far.

  The centred block is never written out: s'.(x - c) = s'.x - s'.c, with
  s' = s - c, and |x - c|^2 is a fused reduction.
  """
  sample = sample - centre
  centred_sq = jnp.sum(jnp.square(rows - centre), axis=1)
  sample_sq = jnp.sum(sample * sample, axis=1)
  dots = jnp.dot(sample, rows.T, precision=jax.lax.Precision.HIGHEST)
  shift = jnp.dot(sample, centre, precision=jax.lax.Precision.HIGHEST)
  d2 = sample_sq[:, None] + centred_sq[None, :] - 2 * (dots - shift[:, None])
  index = start + jnp.arange(rows.shape[0], dtype=jnp.int32)
  valid = index < num_valid
  d2 = jnp.where(valid[None, :] & (index[None, :] != sample_index[:, None]),
                 d2, jnp.inf)
  all_d2 = jnp.concatenate([best_d2, d2], axis=1)
  all_index = jnp.concatenate(
      [best_index, jnp.broadcast_to(index, d2.shape)], axis=1)
  neg, pos = jax.lax.top_k(-all_d2, best_d2.shape[1])
  block_max = jnp.stack([
      jnp.max(jnp.where(valid, centred_sq, 0)),
      jnp.max(jnp.where(valid, jnp.sum(rows * rows, axis=1), 0))])
  return (-neg, jnp.take_along_axis(all_index, pos, axis=1),
          jnp.maximum(max_sq, block_max))


@jax.jit
def _keys(projected, width, offsets, seeds, multipliers):
  """Key pairs; NO_KEY for a point outside the int32 code range in a table.

  A point 2^31 widths from the centre along a direction would get a
  saturated code, shared with every other point that far out on the same
  side however far apart they are; it gets no bucket in that table instead
  (NO_KEY never matches a query).
  """
  num_tables, num_hashes = seeds.shape[1:]
  codes = jnp.floor(projected / width + offsets)
  outside = jnp.any((jnp.abs(codes) >= 2.0 ** 31).reshape(
      projected.shape[0], num_tables, num_hashes), axis=-1)
  codes = jax.lax.bitcast_convert_type(codes.astype(jnp.int32), jnp.uint32)
  codes = codes.reshape(projected.shape[0], num_tables, num_hashes)
  key = lambda i: jnp.sum(_fmix32(codes ^ seeds[i]) * multipliers[i], axis=-1,
                          dtype=jnp.uint32)
  no_key = jnp.uint32(NO_KEY)
  return (jnp.where(outside, no_key, key(0)),
          jnp.where(outside, no_key, key(1)))


def run_bounds(*sorted_keys):
  """(run_start, run_end), (L, size) int32: the run [start, end) of equal
  keys (equal in every one of `sorted_keys`, each (L, size) and sorted
  along axis 1) that each position lies in. Traceable."""
  num_tables, size = sorted_keys[0].shape
  differs = functools.reduce(
      operator.or_, [k[:, 1:] != k[:, :-1] for k in sorted_keys])
  edge = jnp.ones((num_tables, 1), bool)
  position = jnp.arange(size, dtype=jnp.int32)[None, :]
  run_start = jax.lax.cummax(
      jnp.where(jnp.concatenate([edge, differs], axis=1), position, 0), axis=1)
  run_end = jax.lax.cummin(
      jnp.where(jnp.concatenate([differs, edge], axis=1), position + 1, size),
      axis=1, reverse=True)
  return run_start, run_end


def pairs_with_mates(sorted_keys, num_valid, target):
  """How many (point, table) pairs share their run with >= target others;
  `sorted_keys` as for `run_bounds`, padding (past num_valid) sorted last.
  Traceable."""
  run_start, run_end = run_bounds(*sorted_keys)
  position = jnp.arange(run_start.shape[1], dtype=jnp.int32)[None, :]
  mates = jnp.minimum(run_end, num_valid) - run_start - 1
  return jnp.sum((mates >= target) & (position < num_valid), dtype=jnp.int32)


def host_sorted(key1, key2, num_valid: int):
  """Per table, the (key1, key2) pairs sorted with padding last and the rows
  in that order, as numpy (L, size) uint32, uint32 and int32 arrays (within
  a run of equal keys in no set order); None unless the keys live on the
  CPU.

  XLA's CPU sort of several operands calls a comparator per comparison and
  runs 3-6x slower than numpy's sort of one 64-bit key (a 32 x 57,344
  table set: 0.48 s against 0.10-0.16 s); on GPU and TPU the jitted sort
  is used.
  """
  host1, host2 = _host_view(key1), _host_view(key2)
  if host1 is None or host2 is None:
    return None
  packed = np.ascontiguousarray(host1.T, np.uint64) << np.uint64(32)
  packed |= host2.T
  packed[:, num_valid:] = np.uint64(2 ** 64 - 1)  # (NO_KEY, NO_KEY): last
  order = np.argsort(packed, axis=1)
  packed = np.take_along_axis(packed, order, axis=1)
  return ((packed >> np.uint64(32)).astype(np.uint32),
          packed.astype(np.uint32), order.astype(np.int32))


@jax.jit
def sort_tables(key1, key2, num_valid):
  """Per table (rows of the result): keys sorted, and where each run ends.

  Padding rows get the largest key and sort last; `run_end[i]` is the first
  position after the run of keys equal to key i.
  """
  pad = (jnp.arange(key1.shape[0]) >= num_valid)[:, None]
  k1 = jnp.where(pad, jnp.uint32(NO_KEY), key1).T
  k2 = jnp.where(pad, jnp.uint32(NO_KEY), key2).T
  s1, s2 = jax.lax.sort((k1, k2), dimension=1, num_keys=2)
  return s1, s2, run_bounds(s1, s2)[1]


@jax.jit
def bucket_counts(s1, s2, run_end, num_valid, q1, q2):
  """(B, L) number of table points in each query's bucket.

  One lexicographic binary search per query and table finds the first key
  >= the query; the run starting there is the bucket, if its key matches.
  """
  size = s1.shape[1]
  steps = max(1, math.ceil(math.log2(size + 1)))
  tables = jnp.arange(s1.shape[0])[None, :]
  lo = jnp.zeros(q1.shape, jnp.int32)
  hi = jnp.full(q1.shape, size, jnp.int32)

  def step(_, bounds):
    lo, hi = bounds
    mid = (lo + hi) // 2
    m1, m2 = s1[tables, mid], s2[tables, mid]
    before = (m1 < q1) | ((m1 == q1) & (m2 < q2))
    active = lo < hi
    return (jnp.where(active & before, mid + 1, lo),
            jnp.where(active & ~before, mid, hi))

  lo, _ = jax.lax.fori_loop(0, steps, step, (lo, hi))
  at = jnp.minimum(lo, size - 1)
  match = (lo < num_valid) & (s1[tables, at] == q1) & (s2[tables, at] == q2) & (
      (q1 != jnp.uint32(NO_KEY)) | (q2 != jnp.uint32(NO_KEY)))  # `_keys`
  return jnp.where(match, jnp.minimum(run_end[tables, at], num_valid) - lo, 0)



def check_width(value, name: str = "bucket_width") -> float | None:
  """None, or a finite number > 0 as float; else ValueError naming it."""
  from lsh_gan.metrics import _checks  # pylint: disable=g-import-not-at-top
  return None if value is None else _checks.positive_float(value, name)


def check_family(num_tables, num_hashes) -> tuple[int, int]:
  from lsh_gan.metrics import _checks  # pylint: disable=g-import-not-at-top
  return (_checks.positive_int(num_tables, "num_tables"),
          _checks.positive_int(num_hashes, "num_hashes"))
