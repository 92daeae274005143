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
blocks (rows x columns, padded, with the valid count passed as data so a new n
compiles nothing new), as squared distances |a|^2 + |b|^2 - 2 a.b in float32
with full matmul precision, on data centred on the real set's mean (which
keeps the norms, and so the cancellation error, small). A squared distance
below the expansion's float32 resolution, (d + 2) * eps * (|a|^2 + |b|^2),
is set to 0, so exact duplicates are at distance 0 rather than at rounding
noise (about 3e-4 of the norm). Each pass
over a pair of sets is three n x n x d products in total: R x R and G x G for
the radii, and one G x R pass that yields all four metrics: per fake point the
minimum of d^2 - rho_R^2 (precision) and the count of d^2 <= rho_R^2 (density),
per real point the minimum d^2 (coverage) and the minimum of d^2 - rho_G^2
(recall).

References:
  T. Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing
  Generative Models", NeurIPS 2019, https://arxiv.org/abs/1904.06991
  M. F. Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative
  Models", ICML 2020, https://arxiv.org/abs/2002.09797
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.metrics import _checks

BLOCK = 1024  # rows and columns per distance block


def times_power_of_two(x: jax.Array, exponent: int) -> jax.Array:
  """x * 2^exponent, exact for normal results (the factor in two halves, so
  each stays a normal float32 for |exponent| up to 2 * 126)."""
  half = exponent // 2
  return x * np.float32(2.0 ** half) * np.float32(2.0 ** (exponent - half))


def _pad(x: jax.Array, block: int) -> jax.Array:
  return jnp.pad(x, ((0, -x.shape[0] % block), (0, 0)))


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


@jax.jit
def _nearest_block(best, rows, rows_sq, row_index, cols, cols_sq, col_start,
                   num_valid):
  """Merges one column block into each row's k smallest squared distances.

  `row_index` holds the rows' indices among the columns' set (-1 for rows
  that are not in it), so a point never counts as its own neighbour.
  """
  d2 = _sq_dists(rows, rows_sq, cols, cols_sq)
  col_index = col_start + jnp.arange(cols.shape[0])
  excluded = (col_index[None, :] >= num_valid) | (
      col_index[None, :] == row_index[:, None])  # self, by index
  d2 = jnp.where(excluded, jnp.inf, d2)
  neg_smallest, _ = jax.lax.top_k(-jnp.concatenate([best, d2], axis=1),
                                  best.shape[1])
  return -neg_smallest


@jax.jit
def _cross_block(fake, fake_sq, fake_rho2, fake_pad, real, real_sq,
                 real_rho2_pr, real_rho2_dc, real_pad):
  """Block statistics of the fake x real distances (see the module doc).

  `fake_pad` / `real_pad` are 0 for real points and +inf for padding rows, so
  padding never wins a minimum or passes a test.
  """
  d2 = _sq_dists(fake, fake_sq, real, real_sq) + fake_pad[:, None] + real_pad[
      None, :]
  fake_margin = jnp.min(d2 - real_rho2_pr[None, :], axis=1)
  fake_count = jnp.sum(d2 <= real_rho2_dc[None, :], axis=1, dtype=jnp.int32)
  real_min_d2 = jnp.min(d2, axis=0)
  real_margin = jnp.min(d2 - fake_rho2[:, None], axis=0)
  return fake_margin, fake_count, real_min_d2, real_margin


class _Points:
  """A padded, centred point set, its squared norms and its padding mask."""

  def __init__(self, x: jax.Array, centre: jax.Array, block: int):
    self.n = x.shape[0]
    self.x = _pad(x - centre, block)
    self.sq = jnp.sum(self.x * self.x, axis=1)
    self.pad = jnp.where(jnp.arange(self.x.shape[0]) < self.n, 0.0, jnp.inf)
    self.block = block

  def rescaled(self, exponent: int) -> "_Points":
    """The same points times 2^exponent (their padding kept)."""
    out = object.__new__(_Points)
    out.n, out.block, out.pad = self.n, self.block, self.pad
    out.x = times_power_of_two(self.x, exponent)
    out.sq = times_power_of_two(self.sq, 2 * exponent)
    return out

  def blocks(self):
    for start in range(0, self.x.shape[0], self.block):
      end = start + self.block
      yield start, self.x[start:end], self.sq[start:end], self.pad[start:end]


def nearest_sq_distances(points: _Points, k: int) -> jax.Array:
  """(n, k) ascending squared distances to the k nearest others (by index)."""
  out = []
  for row_start, rows, rows_sq, _ in points.blocks():
    out.append(_nearest_to(points, rows, rows_sq,
                           row_start + jnp.arange(rows.shape[0]), k))
  return jnp.concatenate(out)[:points.n]


def _nearest_to(points: _Points, rows, rows_sq, row_index, k: int):
  best = jnp.full((rows.shape[0], k), jnp.inf, jnp.float32)
  for col_start, cols, cols_sq, _ in points.blocks():
    best = _nearest_block(best, rows, rows_sq, row_index, cols, cols_sq,
                          col_start, points.n)
  return best


def _cross(fake: _Points, fake_rho2, real: _Points, real_rho2_pr,
           real_rho2_dc):
  pad_to = lambda v, points: jnp.pad(v, (0, points.x.shape[0] - points.n))
  fake_rho2 = pad_to(fake_rho2, fake)
  real_rho2_pr = pad_to(real_rho2_pr, real)
  real_rho2_dc = pad_to(real_rho2_dc, real)
  real_min_d2 = jnp.full(real.x.shape[:1], jnp.inf, jnp.float32)
  real_margin = jnp.full(real.x.shape[:1], jnp.inf, jnp.float32)
  fake_margins, fake_counts = [], []
  fb, rb = fake.block, real.block
  for f_start, f, f_sq, f_pad in fake.blocks():
    margin = jnp.full((f.shape[0],), jnp.inf, jnp.float32)
    count = jnp.zeros((f.shape[0],), jnp.int32)
    for r_start, r, r_sq, r_pad in real.blocks():
      m, c, rmin, rmarg = _cross_block(
          f, f_sq, fake_rho2[f_start:f_start + fb], f_pad, r, r_sq,
          real_rho2_pr[r_start:r_start + rb], real_rho2_dc[r_start:r_start + rb],
          r_pad)
      margin = jnp.minimum(margin, m)
      count = count + c
      real_min_d2 = real_min_d2.at[r_start:r_start + rb].min(rmin)
      real_margin = real_margin.at[r_start:r_start + rb].min(rmarg)
    fake_margins.append(margin)
    fake_counts.append(count)
  return (jnp.concatenate(fake_margins)[:fake.n],
          jnp.concatenate(fake_counts)[:fake.n],
          real_min_d2[:real.n], real_margin[:real.n])


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
    self.centre = jnp.mean(real, axis=0)
    self.points = _Points(real, self.centre, block)
    self.nearest_sq = nearest_sq_distances(self.points, self.max_k)
    self.num_radius_passes = 1  # radius passes over the real set so far

  @property
  def n(self) -> int:
    return self.points.n

  @property
  def dim(self) -> int:
    return self.points.x.shape[1]

  def radii(self, k: int) -> np.ndarray:
    """NND_k of every real point (distances, not squared)."""
    self._check_k(k)
    return np.ldexp(np.sqrt(np.asarray(self.nearest_sq[:, k - 1], np.float64)),
                    self.exponent)

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
    real_points, nearest_sq, centre = self.points, self.nearest_sq, self.centre
    if shift:
      real_points = real_points.rescaled(-shift)
      nearest_sq = times_power_of_two(nearest_sq, -2 * shift)
      centre = times_power_of_two(centre, -shift)
    fake_points = _Points(fake, centre, self.block)
    fake_rho2 = nearest_sq_distances(fake_points, k)[:, k - 1]
    fake_margin, fake_count, real_min_d2, real_margin = _cross(
        fake_points, fake_rho2, real_points, nearest_sq[:, k - 1],
        nearest_sq[:, density_k - 1])
    real_rho2_dc = nearest_sq[:, density_k - 1]
    # Exact fractions: integer counts over Python ints.
    count = lambda mask: int(jnp.sum(mask, dtype=jnp.int32))
    m = fake.shape[0]
    return {
        "precision": count(fake_margin <= 0) / m,
        "recall": count(real_margin <= 0) / self.n,
        "density": count(fake_count) / (density_k * m),
        "coverage": count(real_min_d2 <= real_rho2_dc) / self.n,
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
