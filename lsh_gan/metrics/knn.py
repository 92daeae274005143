"""Exact k-nearest-neighbour precision, recall, density and coverage, blocked.

R = real embeddings, G = fake embeddings, d Euclidean, NND_k(x, S) the distance
from x to its k-th nearest neighbour in S excluding x itself (by index).

  precision = 1/|G| sum_g 1[exists r: d(g, r) <= NND_k(r, R)]
  recall    = 1/|R| sum_r 1[exists g: d(r, g) <= NND_k(g, G)]
  density   = 1/(k|G|) sum_g sum_r 1[d(g, r) <= NND_k(r, R)]
  coverage  = 1/|R| sum_r 1[min_g d(r, g) <= NND_k(r, R)]

Comparisons use <= as the official improved precision/recall code does; the
`prdc` package uses <. They agree unless a distance equals a radius exactly,
which happens with duplicate points: a set where every point has a copy has
k=1 radii of 0, and there these metrics count a copy inside its twin's ball
while prdc does not (identical such sets: precision 1 here, near 0 in prdc).
On identical tie-free sets both give precision = recall = coverage = 1 and
density = (k + 1) / k.

Embeddings of any scale give the same numbers: a set outside float32's
comfortable range is divided by a power of two first (see `_checks`).

Nothing of size n x n is ever built: distances are computed in fixed-size
blocks, as squared distances |a|^2 + |b|^2 - 2 a.b in float32 with full
matmul precision, on data centred on the real set's mean (which keeps the
norms, and so the cancellation error, small). A squared distance below the
expansion's float32 resolution, (d + 2) * eps * (|a|^2 + |b|^2), is set to 0,
so exact duplicates are at distance 0 rather than at rounding noise (about
3e-4 of the norm).

Each pass is one jitted loop (`lax.fori_loop`) over the blocks of a set
padded to a size class (`padded_size`: eight sizes per doubling), with the
number of points passed as data: a new n in a class compiles nothing, and
only the blocks that hold points are computed. A radius pass (R x R or
G x G) computes each pair of blocks once and reads it both ways, by rows
for one block and by columns for the other: half an n x n x d product. The
G x R pass yields all four metrics: per fake point the minimum of
d^2 - rho_R^2 (precision) and the count of d^2 <= rho_R^2 (density), per
real point the minimum d^2 (coverage) and the minimum of d^2 - rho_G^2
(recall). At d = 2,048 the products are nearly all the time; at small d the
k-smallest selection costs as much, so it runs XLA's top-k only on the few
chunks of each row that can hold the k smallest (`_k_smallest`).

References:
  T. Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing
  Generative Models", NeurIPS 2019, https://arxiv.org/abs/1904.06991
  M. F. Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative
  Models", ICML 2020, https://arxiv.org/abs/2002.09797
"""

from __future__ import annotations

import functools

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from lsh_gan.metrics import _checks

BLOCK = 1024  # rows and columns per distance block
# Columns per chunk in `_k_smallest`'s first stage: a row's k smallest values
# lie in the k chunks with the smallest minima, so only those k chunks reach
# the (costly) top-k.
_CHUNK = 32


def times_power_of_two(x: jax.Array, exponent: int) -> jax.Array:
  """x * 2^exponent, exact for normal results (the factor in two halves, so
  each stays a normal float32 for |exponent| up to 2 * 126)."""
  half = exponent // 2
  return x * np.float32(2.0 ** half) * np.float32(2.0 ** (exponent - half))


def padded_size(n: int, block: int = BLOCK) -> int:
  """Rows a set of n points is padded to: `lsh.padded_size`'s rule (a
  multiple of 2^(floor(log2 n) - 3), at least 1,024), rounded up to whole
  blocks, so a new n rarely compiles anything new. Only the blocks that hold
  points are computed: the padding costs memory, not time."""
  granule = max(1024, 1 << max(0, n.bit_length() - 4))
  size = -(-n // granule) * granule
  return -(-size // block) * block


def _padded(x: jax.Array, size: int) -> jax.Array:
  """x with zero rows appended up to `size` rows, without an operation whose
  shape depends on n on the CPU (a numpy pad of x's buffer)."""
  if x.shape[0] == size:
    return x
  if all(device.platform == "cpu" for device in x.devices()):
    return jax.device_put(np.pad(np.asarray(x),
                                 ((0, size - x.shape[0]), (0, 0))))
  return jnp.pad(x, ((0, size - x.shape[0]), (0, 0)))


def expand_sq_dists(norms, dots, dim: int, noise=None):
  """|a|^2 + |b|^2 - 2 a.b, with values below float32 resolution set to 0.

  The expansion cannot resolve squared distances under about
  (dim + 2) * eps * (|a|^2 + |b|^2); calling those 0 puts exact duplicates at
  distance 0 instead of at rounding noise. `noise`, if given, adds to
  |a|^2 + |b|^2 the magnitude of any other rounding in `dots` or `norms`
  (e.g. from points that entered a product uncentred), so the threshold is
  relative to the scale the data were computed at.
  """
  d2 = norms - 2.0 * dots
  resolution = (dim + 2) * float(np.finfo(np.float32).eps)
  floor = norms if noise is None else norms + noise
  return jnp.where(d2 <= resolution * floor, 0.0, d2)


def _sq_dists(a, a_sq, b, b_sq):
  dots = jnp.dot(a, b.T, precision=jax.lax.Precision.HIGHEST)
  return expand_sq_dists(a_sq[:, None] + b_sq[None, :], dots, a.shape[1])


def _k_smallest(best, d2, axis: int = 1):
  """The k = best.shape[1] smallest values of [best, d2] along d2's `axis`
  (1: per row, 0: per column), ascending: shape (len, k).

  XLA's CPU top-k costs several times a row's product at small d, so the
  rows (or columns) are first cut into chunks of `_CHUNK` values and only the
  k chunks with the smallest minima reach the top-k (they hold the k
  smallest values: a value outside them is at least each of their minima),
  k * _CHUNK + k values per row instead of a block's width.
  """
  size = d2.shape[axis]
  lines = d2.shape[1 - axis]
  k = best.shape[1]
  if size % _CHUNK or size // _CHUNK <= 2 * k:
    d2 = d2 if axis else d2.T
  elif axis:
    chunks = d2.reshape(lines, size // _CHUNK, _CHUNK)
    _, nearest = lax.top_k(-jnp.min(chunks, axis=2), k)
    d2 = jnp.take_along_axis(chunks, nearest[:, :, None], axis=1).reshape(
        lines, k * _CHUNK)
  else:  # columns, read in place (a transposed copy costs more)
    chunk_min = jnp.min(d2.reshape(size // _CHUNK, _CHUNK, lines), axis=1)
    _, nearest = lax.top_k(-chunk_min.T, k)
    rows = (nearest[:, :, None] * _CHUNK + jnp.arange(_CHUNK)).reshape(
        lines, k * _CHUNK)
    d2 = d2[rows, jnp.arange(lines)[:, None]]
  neg_smallest, _ = lax.top_k(-jnp.concatenate([best, d2], axis=1), k)
  return -neg_smallest


def _block(x, sq, start, block):
  return (lax.dynamic_slice_in_dim(x, start, block),
          lax.dynamic_slice_in_dim(sq, start, block))


@jax.jit
def _prepare(x, centre, n):
  """Centred points (padding rows 0) and their squared norms; the centre
  defaults to the points' mean."""
  valid = (jnp.arange(x.shape[0]) < n)[:, None]
  if centre is None:
    centre = jnp.sum(x, axis=0) / n.astype(x.dtype)
  x = jnp.where(valid, x - centre, 0.0)
  return x, jnp.sum(x * x, axis=1), centre


@functools.partial(jax.jit, static_argnames=("k", "block"))
def _nearest_block(x, sq, n, *, k, block):
  """(rows, k) ascending squared distances of each point to its k nearest
  others (by index); rows past n hold 0.

  Distances are symmetric: each pair of blocks (i <= j) is computed once and
  read both ways, by rows for block i and by columns for block j, so the
  pass costs half of an n x n x d product (plus the diagonal blocks).
  """
  index = jnp.arange(block)
  num_blocks = (n + block - 1) // block

  def distances(i, j):
    rows, rows_sq = _block(x, sq, i * block, block)
    cols, cols_sq = _block(x, sq, j * block, block)
    valid = ((i * block + index < n)[:, None] &
             (j * block + index < n)[None, :])
    return jnp.where(valid, _sq_dists(rows, rows_sq, cols, cols_sq), jnp.inf)

  def row_block(i, best):
    self_pair = index[:, None] == index[None, :]
    row_best = _k_smallest(lax.dynamic_slice_in_dim(best, i * block, block),
                           jnp.where(self_pair, jnp.inf, distances(i, i)))

    def col_block(j, carry):
      row_best, best = carry
      d2 = distances(i, j)
      col_best = _k_smallest(lax.dynamic_slice_in_dim(best, j * block, block),
                             d2, axis=0)
      best = lax.dynamic_update_slice_in_dim(best, col_best, j * block, 0)
      return _k_smallest(row_best, d2), best

    row_best, best = lax.fori_loop(i + 1, num_blocks, col_block,
                                   (row_best, best))
    return lax.dynamic_update_slice_in_dim(best, row_best, i * block, 0)

  best = lax.fori_loop(0, num_blocks, row_block,
                       jnp.full((x.shape[0], k), jnp.inf, jnp.float32))
  # Padding rows get radius 0 (never inf: inf - inf would be NaN in the
  # margins of `_cross_block`).
  return jnp.where((jnp.arange(x.shape[0]) < n)[:, None], best, 0.0)


@functools.partial(jax.jit,
                   static_argnames=("k", "density_k", "block", "rows"))
def _cross_block(fake, fake_sq, fake_nearest, fake_n, real, real_sq,
                 real_nearest, real_n, *, k, density_k, block, rows):
  """The four metrics' counts from one pass over the fake x real distances
  (see the module doc): (precise fakes, recalled reals, sum of density
  counts, covered reals). `*_nearest` are the sets' `nearest_sq_distances`;
  the radii are their columns k (fake; precision and recall) and density_k
  (real; density and coverage).

  Real points come in blocks of `block`, fake points in blocks of `rows`
  (each set's padded size a multiple of its block).
  """
  col_index, row_index = jnp.arange(block), jnp.arange(rows)
  fake_rho2 = fake_nearest[:, k - 1]
  real_rho2_pr = real_nearest[:, k - 1]
  real_rho2_dc = real_nearest[:, density_k - 1]

  def real_block(j, carry):
    fake_margin, fake_count, covered, recalled = carry
    r, r_sq = _block(real, real_sq, j * block, block)
    r_valid = j * block + col_index < real_n
    r_rho2_pr = lax.dynamic_slice_in_dim(real_rho2_pr, j * block, block)
    r_rho2_dc = lax.dynamic_slice_in_dim(real_rho2_dc, j * block, block)

    def fake_block(i, carry):
      fake_margin, fake_count, real_min_d2, real_margin = carry
      f, f_sq = _block(fake, fake_sq, i * rows, rows)
      f_rho2 = lax.dynamic_slice_in_dim(fake_rho2, i * rows, rows)
      valid = (i * rows + row_index < fake_n)[:, None] & r_valid[None, :]
      d2 = jnp.where(valid, _sq_dists(f, f_sq, r, r_sq), jnp.inf)
      margin = jnp.minimum(
          lax.dynamic_slice_in_dim(fake_margin, i * rows, rows),
          jnp.min(d2 - r_rho2_pr[None, :], axis=1))
      # Counted in float32 (exact up to 2^24 per block row): XLA's CPU sums
      # an int32 mask through a slower copy.
      count = lax.dynamic_slice_in_dim(fake_count, i * rows, rows) + jnp.sum(
          jnp.where(d2 <= r_rho2_dc[None, :], 1.0, 0.0), axis=1).astype(
              jnp.int32)
      return (lax.dynamic_update_slice_in_dim(fake_margin, margin,
                                              i * rows, 0),
              lax.dynamic_update_slice_in_dim(fake_count, count, i * rows, 0),
              jnp.minimum(real_min_d2, jnp.min(d2, axis=0)),
              jnp.minimum(real_margin,
                          jnp.min(d2 - f_rho2[:, None], axis=0)))

    inf = jnp.full((block,), jnp.inf, jnp.float32)
    fake_margin, fake_count, real_min_d2, real_margin = lax.fori_loop(
        0, (fake_n + rows - 1) // rows, fake_block,
        (fake_margin, fake_count, inf, inf))
    count = lambda mask: jnp.sum(mask & r_valid, dtype=jnp.int32)
    return (fake_margin, fake_count,
            covered + count(real_min_d2 <= r_rho2_dc),
            recalled + count(real_margin <= 0))

  zero = jnp.zeros((), jnp.int32)
  fake_margin, fake_count, covered, recalled = lax.fori_loop(
      0, (real_n + block - 1) // block, real_block,
      (jnp.full(fake.shape[:1], jnp.inf, jnp.float32),
       jnp.zeros(fake.shape[:1], jnp.int32), zero, zero))
  precise = jnp.sum((fake_margin <= 0) & (jnp.arange(fake.shape[0]) < fake_n),
                    dtype=jnp.int32)
  return precise, recalled, jnp.sum(fake_count), covered


class _Points:
  """A padded, centred point set and its squared norms (padding rows 0)."""

  def __init__(self, x: jax.Array, centre: jax.Array | None, block: int):
    self.n = x.shape[0]
    self.block = block
    self.valid_n = np.int32(self.n)  # data, not shape: no compile per n
    self.x, self.sq, self.centre = _prepare(
        _padded(x, padded_size(self.n, block)), centre, self.valid_n)

  def rescaled(self, exponent: int) -> "_Points":
    """The same points times 2^exponent (their padding kept)."""
    out = object.__new__(_Points)
    out.__dict__.update(self.__dict__)
    out.x = times_power_of_two(self.x, exponent)
    out.sq = times_power_of_two(self.sq, 2 * exponent)
    out.centre = times_power_of_two(self.centre, exponent)
    return out


def nearest_sq_distances(points: _Points, k: int) -> jax.Array:
  """(padded rows, k) ascending squared distances of each point to its k
  nearest others (by index); rows past points.n hold 0."""
  return _nearest_block(points.x, points.sq, points.valid_n, k=k,
                        block=points.block)


def _cross(fake: _Points, fake_nearest, real: _Points, real_nearest, k: int,
           density_k: int) -> tuple[int, int, int, int]:
  """(precise fakes, recalled reals, density count, covered reals)."""
  out = _cross_block(fake.x, fake.sq, fake_nearest, fake.valid_n, real.x,
                     real.sq, real_nearest, real.valid_n, k=k,
                     density_k=density_k, block=real.block, rows=fake.block)
  return tuple(int(v) for v in jax.device_get(out))


def _precompile(n_real: int, n_fake: int, dim: int, *, k: int = 3,
                density_k: int = 5, max_k: int = 5,
                block: int = BLOCK) -> None:
  """Compiles, without running them, the kernels that `KNNReference` of
  n_real points (max_k) and its `score` of n_fake points (k, density_k)
  run: for timings that leave compilation out (a size class compiles once)."""
  f32, i32 = jnp.float32, jnp.int32
  scalar = jax.ShapeDtypeStruct((), i32)
  centre = jax.ShapeDtypeStruct((dim,), f32)
  # The real set is centred on its own mean, the fake set on the real's.
  for n, neighbours, own in ((n_real, max_k, None), (n_fake, k, centre)):
    size = padded_size(n, block)
    x = jax.ShapeDtypeStruct((size, dim), f32)
    sq = jax.ShapeDtypeStruct((size,), f32)
    _prepare.lower(x, own, scalar).compile()
    _nearest_block.lower(x, sq, scalar, k=neighbours, block=block).compile()
  real = jax.ShapeDtypeStruct((padded_size(n_real, block), dim), f32)
  fake = jax.ShapeDtypeStruct((padded_size(n_fake, block), dim), f32)
  like = lambda a, cols: jax.ShapeDtypeStruct(a.shape[:1] + cols, f32)
  _cross_block.lower(fake, like(fake, ()), like(fake, (k,)), scalar, real,
                     like(real, ()), like(real, (max_k,)), scalar, k=k,
                     density_k=density_k, block=block, rows=block).compile()


class KNNReference:
  """The real side of the KNN metrics, computed once, scored many times.

  Holds the centred, padded real embeddings and the squared distances of
  each real point to its `max_k` nearest other real points, so any k <= max_k
  is free afterwards.

  Everything is held in units of 2^exponent (see `_checks.reference_set`).

  Args:
    real: (n, d) real embeddings.
    max_k: the largest k that will be asked for.
    block: rows/columns per distance block.

  Raises:
    ValueError: for non-finite or non-2-D input, or fewer than max_k + 1
      points.
  """

  exponent = 0  # the units of the held arrays: 2^exponent

  def __init__(self, real, *, max_k: int = 5, block: int = BLOCK):
    self._build(*_checks.reference_set(real, "real"), max_k, block)

  @classmethod
  def in_units(cls, real: jax.Array, exponent: int, *, max_k: int = 5,
               block: int = BLOCK) -> "KNNReference":
    """From a set already validated and held in units 2^exponent (by
    `Reference`), without a second validation pass and host copy."""
    ref = object.__new__(cls)
    ref._build(real, exponent, max_k, block)  # pylint: disable=protected-access
    return ref

  def _build(self, real, exponent: int, max_k: int, block: int) -> None:
    self.exponent = exponent
    self.max_k = _checks.positive_int(max_k, "max_k")
    self.block = _checks.positive_int(block, "block")
    _checks.enough_points(real.shape[0], self.max_k, "real")
    self.points = _Points(real, None, self.block)
    self.centre = self.points.centre  # the real set's mean
    # (padded rows, max_k); rows past n hold 0.
    self.padded_nearest_sq = nearest_sq_distances(self.points, self.max_k)
    self.num_radius_passes = 1  # radius passes over the real set so far

  @property
  def nearest_sq(self) -> jax.Array:
    """(n, max_k) ascending squared distances of each real point to its
    max_k nearest other real points."""
    return self.padded_nearest_sq[:self.n]

  @property
  def n(self) -> int:
    return self.points.n

  @property
  def dim(self) -> int:
    return self.points.x.shape[1]

  def radii(self, k: int) -> np.ndarray:
    """NND_k of every real point (distances, not squared)."""
    self._check_k(k)
    nearest_sq = np.asarray(self.padded_nearest_sq)[:self.n, k - 1]
    return np.ldexp(np.sqrt(nearest_sq.astype(np.float64)), self.exponent)

  def _check_k(self, k):
    k = _checks.positive_int(k, "k")
    if k > self.max_k:
      raise ValueError(f"k={k} is larger than this reference's max_k="
                       f"{self.max_k}; build it with max_k >= {k}")
    return k

  def score(self, fake, *, k: int = 3, density_k: int = 5) -> dict[str, float]:
    """All four KNN metrics of `fake` against this reference.

    Args:
      fake: (m, d) fake embeddings.
      k: neighbours for precision and recall.
      density_k: neighbours for density and coverage.

    Returns:
      {precision, recall, density, coverage} as Python floats.

    Raises:
      ValueError: for bad input (see `knn_precision_recall`).
    """
    k = self._check_k(k)
    density_k = self._check_k(density_k)
    fake, shift, _ = _checks.fake_set(fake, self.dim, self.exponent)
    _checks.enough_points(fake.shape[0], k, "fake")
    return self.score_in_units(fake, shift, k=k, density_k=density_k)

  def score_in_units(self, fake: jax.Array, shift: int, *, k: int,
                     density_k: int) -> dict[str, float]:
    """`score` of a validated fake set given in units 2^(exponent + shift).

    With shift > 0 (a fake set far larger than the reference), the
    reference's points and radii are divided by 2^shift for this call.
    """
    real_points, nearest_sq = self.points, self.padded_nearest_sq
    if shift:
      real_points = real_points.rescaled(-shift)
      nearest_sq = times_power_of_two(nearest_sq, -2 * shift)
    fake_points = _Points(fake, real_points.centre, self.block)
    precise, recalled, density_count, covered = _cross(
        fake_points, nearest_sq_distances(fake_points, k), real_points,
        nearest_sq, k, density_k)
    # Exact fractions: integer counts over Python ints.
    m = fake.shape[0]
    return {
        "precision": precise / m,
        "recall": recalled / self.n,
        "density": density_count / (density_k * m),
        "coverage": covered / self.n,
    }


def _all_four(real, fake, k) -> dict[str, float]:
  k = _checks.positive_int(k, "k")
  return KNNReference(real, max_k=k).score(fake, k=k, density_k=k)


def knn_precision_recall(real, fake, *, k: int = 3) -> dict[str, float]:
  """Improved precision and recall (Kynkäänniemi et al. 2019), exact.

  precision = fraction of fake points inside some real point's k-NN ball;
  recall = fraction of real points inside some fake point's k-NN ball (balls
  closed: d <= NND_k).

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    k: neighbours defining each ball (default 3, as in the paper).

  Returns:
    {"precision": float, "recall": float}, each in [0, 1].

  Raises:
    ValueError: NaN/inf, not 2-D, feature sizes differ, fewer than k + 1
      points in a set, or k < 1 (the message names the set or argument).

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 8))
    >>> knn_precision_recall(x, x)
    {'precision': 1.0, 'recall': 1.0}

  References:
    https://arxiv.org/abs/1904.06991
  """
  out = _all_four(real, fake, k)
  return {"precision": out["precision"], "recall": out["recall"]}


def density_coverage(real, fake, *, k: int = 5) -> dict[str, float]:
  """Density and coverage (Naeem et al. 2020), exact.

  density = mean over fake points of the number of real k-NN balls holding
  it, divided by k (1 when fake matches real; unbounded above);
  coverage = fraction of real points whose k-NN ball holds a fake point.

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    k: neighbours defining each real ball (default 5, as in the paper).

  Returns:
    {"density": float, "coverage": float}.

  Raises:
    ValueError: as for `knn_precision_recall`.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 8))
    >>> density_coverage(x, x + 100.0)
    {'density': 0.0, 'coverage': 0.0}

  References:
    https://arxiv.org/abs/2002.09797
  """
  out = _all_four(real, fake, k)
  return {"density": out["density"], "coverage": out["coverage"]}
