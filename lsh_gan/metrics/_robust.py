"""The robust precision/recall peers, blocked: kernels and real sides.

Every metric here is one or two passes over pairs of blocks of the same
centred, padded blocks the exact KNN metrics use (`knn._Points`), each block
pair one jitted call that merges its result into per-point running sums,
counts or maxima; nothing of size n x n is built. Definitions, defaults and
our reading of each paper: `robust` and docs/metrics.md.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.metrics import _checks
from lsh_gan.metrics import knn

HIGHEST = jax.lax.Precision.HIGHEST


def _points(x, centre, block: int | None = None) -> knn._Points:  # pylint: disable=protected-access
  return knn._Points(x, centre, block or knn.block_size(*x.shape))  # pylint: disable=protected-access


CENTRE_ROWS = 4096  # rows whose median centres a set's own passes


def own_points(x) -> knn._Points:  # pylint: disable=protected-access
  """A set's points centred within its bulk, for distances within it: on
  the coordinate-wise median of up to CENTRE_ROWS evenly spaced rows (not
  the mean, which a few huge outliers would pull out of the bulk; not the
  other set's centre, which may be far from this set and cost it its
  float32 resolution)."""
  step = max(1, -(-x.shape[0] // CENTRE_ROWS))
  centre = np.median(np.asarray(x[::step], np.float64), axis=0)
  return _points(x, centre.astype(np.float32))


def _sq_dists(a, b):
  return knn._block_sq_dists(*a, *b)  # pylint: disable=protected-access


def _host(accs, n: int) -> np.ndarray:
  return knn._host_rows(accs, n)  # pylint: disable=protected-access


def _zeros(points: knn._Points, *shape, dtype=jnp.float32):  # pylint: disable=protected-access
  return [jnp.zeros((points.block, *shape), dtype)] * len(points.blocks)


def resolvable(sq_length: float) -> np.float32:
  """A positive squared radius or bandwidth in float32, at least its
  smallest normal number: one read at a set's own scale (far smaller than
  the reference) may underflow in the reference's units, where the other
  set's points then lie outside it unless they coincide with its centre."""
  return np.float32(max(sq_length, np.finfo(np.float32).tiny))


def _rescaled(points, sq_lengths, shift: int):
  """Points and squared lengths of a real side in units 2^shift larger."""
  if not shift:
    return points, sq_lengths
  return points.rescaled(-shift), sq_lengths * 4.0 ** -shift


# TopP&R (Kim et al. 2023).

TOP_KNN_PER_DIM = 5  # the bandwidth's neighbour: 5 x the (projected) dimension
TOP_PROJECTION_DIM = 32
TOP_SEED = 42


@jax.jit
def _later_kth_diagonal(best, rows, rows_sq, rows_pad):
  """Merges a block's distances to its own later rows (j > i) into best."""
  d2 = _sq_dists((rows, rows_sq, rows_pad), (rows, rows_sq, rows_pad))
  size = rows.shape[0]
  later = jnp.arange(size)[None, :] > jnp.arange(size)[:, None]
  return knn._merge_smallest(best, jnp.where(later, d2, jnp.inf))  # pylint: disable=protected-access


@jax.jit
def _later_kth_pair(best, rows, rows_sq, rows_pad, cols, cols_sq, cols_pad):
  d2 = _sq_dists((rows, rows_sq, rows_pad), (cols, cols_sq, cols_pad))
  return knn._merge_smallest(best, d2)  # pylint: disable=protected-access


def top_bandwidth_sq(points: knn._Points, k: int, name: str) -> float:  # pylint: disable=protected-access
  """The squared bandwidth of TopP&R's KDE: the median, over the points i
  of index below n - k, of the distance to i's k-th nearest point among
  those of index above i (the published code's balloon estimate; its
  median is the element int((n - k) / 2) - 1 of the sorted values)."""
  n = points.n
  if n - k < 2:
    raise ValueError(
        f"{name}: has {n} points; TopP&R's bandwidth (the distance to the "
        f"{k}-th neighbour, {TOP_KNN_PER_DIM} x the dimension) needs at "
        f"least {k + 2}")
  blocks = points.blocks
  best = []
  for i, block in enumerate(blocks):
    acc = jnp.full((points.block, k), jnp.inf, jnp.float32)
    acc = _later_kth_diagonal(acc, *block)
    for j in range(i + 1, len(blocks)):
      acc = _later_kth_pair(acc, *block, *blocks[j])
    best.append(acc[:, k - 1])
  kth = np.sort(_host(best, n)[:n - k].astype(np.float64))
  h2 = float(kth[int((n - k) * 0.5) - 1])
  if not h2 > 0:
    raise _checks.DegenerateError(
        f"{name}: TopP&R's bandwidth (the median distance to the {k}-th "
        "later neighbour) is 0 at float32 resolution: too many identical "
        "points")
  return h2


def _cosine(d2, h2):
  """The cosine kernel cos(pi/2 d/h) on d <= h, 0 beyond (and at padding),
  without its normalising constant (which every comparison shares)."""
  inside = d2 <= h2
  ratio = jnp.sqrt(jnp.where(inside, d2, 0.0) / h2)
  return jnp.where(inside, jnp.cos(0.5 * jnp.pi * ratio), 0.0)


@jax.jit
def _kde_diagonal(acc, rows, rows_sq, rows_pad, weights, h2):
  d2 = _sq_dists((rows, rows_sq, rows_pad), (rows, rows_sq, rows_pad))
  return acc + jnp.dot(_cosine(d2, h2), weights, precision=HIGHEST)


@jax.jit
def _kde_pair(acc_rows, acc_cols, rows, rows_sq, rows_pad, rows_weights, cols,
              cols_sq, cols_pad, cols_weights, h2):
  kernel = _cosine(
      _sq_dists((rows, rows_sq, rows_pad), (cols, cols_sq, cols_pad)), h2)
  return (acc_rows + jnp.dot(kernel, cols_weights, precision=HIGHEST),
          acc_cols + jnp.dot(kernel.T, rows_weights, precision=HIGHEST))


def self_kde(points: knn._Points, weights: np.ndarray, h2: float) -> np.ndarray:  # pylint: disable=protected-access
  """(n, w) sums over the set's points j of weights[j] * K(d(i, j)), per
  point i (itself included): one product per pair of blocks on and above
  the diagonal."""
  n, block = points.n, points.block
  padded = np.zeros((len(points.blocks) * block, weights.shape[1]),
                    np.float32)
  padded[:n] = weights
  w = [padded[s:s + block] for s in range(0, padded.shape[0], block)]
  acc = _zeros(points, weights.shape[1])
  h2 = np.float32(h2)
  blocks = points.blocks
  for i, block_i in enumerate(blocks):
    acc[i] = _kde_diagonal(acc[i], *block_i, w[i], h2)
    for j in range(i + 1, len(blocks)):
      acc[i], acc[j] = _kde_pair(acc[i], acc[j], *block_i, w[i], *blocks[j],
                                 w[j], h2)
  return _host(acc, n).astype(np.float64)


@jax.jit
def _kde_cross(fake_acc, real_acc, fake, fake_sq, fake_pad, real, real_sq,
               real_pad, real_h2, fake_h2):
  d2 = _sq_dists((fake, fake_sq, fake_pad), (real, real_sq, real_pad))
  return (fake_acc + jnp.sum(_cosine(d2, real_h2), axis=1),
          real_acc + jnp.sum(_cosine(d2, fake_h2), axis=0))


def cross_kde(fake: knn._Points, real: knn._Points, real_h2: float,  # pylint: disable=protected-access
              fake_h2: float):
  """(the real KDE at each fake point, the fake KDE at each real point),
  as kernel sums."""
  fake_acc, real_acc = _zeros(fake), _zeros(real)
  real_h2, fake_h2 = resolvable(real_h2), resolvable(fake_h2)
  for i, f in enumerate(fake.blocks):
    for j, r in enumerate(real.blocks):
      fake_acc[i], real_acc[j] = _kde_cross(fake_acc[i], real_acc[j], *f, *r,
                                            real_h2, fake_h2)
  return (_host(fake_acc, fake.n).astype(np.float64),
          _host(real_acc, real.n).astype(np.float64))


@dataclasses.dataclass(frozen=True)
class TopSide:
  """One set's side of TopP&R: its projected points, squared bandwidth,
  kernel sums at its own points, and confidence band (in kernel-sum units:
  the published p_hat and band times n / the kernel's constant)."""
  points: knn._Points  # pylint: disable=protected-access
  h2: float
  own: np.ndarray
  band: float

  @property
  def significant(self) -> np.ndarray:
    return self.own > self.band

  def in_units(self, shift: int) -> "TopSide":
    points, h2 = _rescaled(self.points, self.h2, shift)
    return dataclasses.replace(self, points=points, h2=h2)

  def with_bandwidth(self, h2: float) -> "TopSide":
    """The side with its squared bandwidth in other units (its kernel sums
    and band do not depend on the units). Its points keep theirs: only the
    bandwidth, sums and band of a fake side are read after this
    (`top_score`)."""
    return dataclasses.replace(self, h2=h2)


def top_projection(dim: int, projection_dim: int, seed: int):
  """The random linear map of TopP&R: (dim, projection_dim) Gaussian with
  Xavier-normal scale, or None when dim <= projection_dim (no projection,
  as published)."""
  if dim <= projection_dim:
    return None
  scale = math.sqrt(2.0 / (dim + projection_dim))
  return np.asarray(jax.random.normal(jax.random.key(seed),
                                      (dim, projection_dim)), np.float32) * (
                                          np.float32(scale))


def project(x, projection) -> np.ndarray:
  """x @ projection in row blocks (a memory-mapped set read a block at a
  time), float32 on the host."""
  if projection is None:
    return x
  out = np.empty((x.shape[0], projection.shape[1]), np.float32)
  step = 1 << 14
  for start in range(0, x.shape[0], step):
    out[start:start + step] = np.asarray(x[start:start + step],
                                         np.float32) @ projection
  return out


def top_side(x, centre, name: str, *, alpha: float, bootstraps: int,
             rng: np.random.RandomState) -> TopSide:
  """TopP&R's side of one (projected) set: bandwidth, KDE at its own points
  and the confidence band from `bootstraps` resamples drawn from `rng`
  (consumed as the published code consumes numpy's global generator); its
  points centred on `centre` (None: its own mean)."""
  n, dim = x.shape
  points = own_points(x) if centre is None else _points(x, centre)
  h2 = top_bandwidth_sq(points, TOP_KNN_PER_DIM * dim, name)
  weights = np.ones((n, 1 + bootstraps), np.float32)
  for b in range(bootstraps):
    weights[:, 1 + b] = np.bincount(rng.choice(n, size=n, replace=True),
                                    minlength=n)
  sums = self_kde(points, weights, h2)
  deviations = np.max(np.abs(sums[:, :1] - sums[:, 1:]), axis=0)
  band = float(np.quantile(deviations, 1.0 - alpha)) if bootstraps else 0.0
  return TopSide(points, h2, sums[:, 0], band)


def top_score(real: TopSide, fake: TopSide,
              fake_points: knn._Points) -> dict[str, float]:  # pylint: disable=protected-access
  """TopP&R from both sides (fake_points: the fake set centred as the real
  side's points): precision = the share of significant fake points where
  the real KDE passes the real band, recall the converse."""
  real_at_fake, fake_at_real = cross_kde(fake_points, real.points, real.h2,
                                         fake.h2)
  out = {}
  for key, side, other, name in (
      ("precision", fake, real_at_fake > real.band, "fake"),
      ("recall", real, fake_at_real > fake.band, "real")):
    significant = side.significant
    total = int(np.sum(significant))
    if not total:
      raise _checks.DegenerateError(
          f"{name}: no point's KDE passes its own confidence band, so "
          f"TopP&R's {key} is undefined")
    out[key] = int(np.sum(significant & other)) / total
  return out


# Clipped density and coverage (Salvy et al. 2025).


def _valid(values, pad):
  """Per-point values with padding rows at 0 (so they pass no test)."""
  return jnp.where(pad == 0, values, 0.0)


@jax.jit
def _in_balls_diagonal(acc, rows, rows_sq, rows_pad, rows_r2):
  """Counts, per row, the other rows whose (closed) ball holds it."""
  d2 = _sq_dists((rows, rows_sq, rows_pad), (rows, rows_sq, rows_pad))
  inside = (d2 <= _valid(rows_r2, rows_pad)[None, :]) & ~jnp.eye(
      rows.shape[0], dtype=bool)
  return acc + jnp.sum(inside, axis=1, dtype=jnp.int32)


@jax.jit
def _in_balls_pair(acc_rows, acc_cols, rows, rows_sq, rows_pad, rows_r2, cols,
                   cols_sq, cols_pad, cols_r2):
  d2 = _sq_dists((rows, rows_sq, rows_pad), (cols, cols_sq, cols_pad))
  return (acc_rows + jnp.sum(d2 <= _valid(cols_r2, cols_pad)[None, :], axis=1,
                             dtype=jnp.int32),
          acc_cols + jnp.sum(d2 <= _valid(rows_r2, rows_pad)[:, None], axis=0,
                             dtype=jnp.int32))


def _per_block(points, values: np.ndarray, fill=0.0) -> list:
  """Per-point host values cut into the blocks of `points` (padded)."""
  padded = np.full(len(points.blocks) * points.block, fill, np.float32)
  padded[:points.n] = values
  return [padded[s:s + points.block]
          for s in range(0, padded.size, points.block)]


def in_other_balls(points: knn._Points, r2: np.ndarray) -> np.ndarray:  # pylint: disable=protected-access
  """Per point, how many of the set's other points' closed balls (squared
  radii r2) hold it: one product per pair of blocks on and above the
  diagonal."""
  r2 = _per_block(points, r2)
  acc = _zeros(points, dtype=jnp.int32)
  blocks = points.blocks
  for i, block_i in enumerate(blocks):
    acc[i] = _in_balls_diagonal(acc[i], *block_i, r2[i])
    for j in range(i + 1, len(blocks)):
      acc[i], acc[j] = _in_balls_pair(acc[i], acc[j], *block_i, r2[i],
                                      *blocks[j], r2[j])
  return _host(acc, points.n)


@jax.jit
def _clipped_cross(fake_acc, real_acc, fake, fake_sq, fake_pad, real, real_sq,
                   real_pad, clipped_r2, r2):
  d2 = _sq_dists((fake, fake_sq, fake_pad), (real, real_sq, real_pad))
  return (fake_acc + jnp.sum(d2 <= _valid(clipped_r2, real_pad)[None, :],
                             axis=1, dtype=jnp.int32),
          real_acc + jnp.sum(d2 < _valid(r2, real_pad)[None, :], axis=0,
                             dtype=jnp.int32))


def clipped_counts(fake: knn._Points, real: knn._Points, clipped_r2, r2):  # pylint: disable=protected-access
  """(per fake point: real clipped balls holding it (closed); per real
  point: fake points strictly inside its unclipped ball)."""
  clipped_r2, r2 = _per_block(real, clipped_r2), _per_block(real, r2)
  fake_acc = _zeros(fake, dtype=jnp.int32)
  real_acc = _zeros(real, dtype=jnp.int32)
  for i, f in enumerate(fake.blocks):
    for j, r in enumerate(real.blocks):
      fake_acc[i], real_acc[j] = _clipped_cross(fake_acc[i], real_acc[j], *f,
                                                *r, clipped_r2[j], r2[j])
  return _host(fake_acc, fake.n), _host(real_acc, real.n)


def expected_clipped_coverage(n: int, m: int, k: int) -> np.ndarray:
  """f[j], j = 0..m: the expected unnormalised clipped coverage when j of
  the m fake points follow the real distribution and the others fall in no
  real ball; 0 for j < k, as published.

  A real point's k-NN ball holds a fraction p ~ Beta(k, n - k) of the real
  distribution, so the number of the j good fake points inside it is
  beta-binomial(j, k, n - k), and the ball's score is E[min(count, k)] / k.
  """
  from scipy import stats  # pylint: disable=g-import-not-at-top
  j = np.arange(k, m + 1)[:, None]
  counts = np.arange(k)[None, :]
  law = stats.betabinom(j, k, n - k)
  below = np.sum(counts * law.pmf(counts), axis=1)
  out = np.zeros(m + 1)
  out[k:] = (below + k * law.sf(k - 1)[:, 0]) / k
  return out


@dataclasses.dataclass(frozen=True)
class ClippedSide:
  """The real side of clipped density and coverage: squared k-NN radii,
  their median-clipped values, and the real set's own clipped density (each
  real point scored against the others' clipped balls)."""
  k: int
  r2: np.ndarray
  clipped_r2: np.ndarray
  real_density: float

  def in_units(self, shift: int) -> "ClippedSide":
    if not shift:
      return self
    scale = 4.0 ** -shift
    return dataclasses.replace(self, r2=self.r2 * scale,
                               clipped_r2=self.clipped_r2 * scale)


def clipped_side(points: knn._Points, nearest_sq: np.ndarray,  # pylint: disable=protected-access
                 k: int) -> ClippedSide:
  r2 = nearest_sq[:, k - 1].astype(np.float32)
  # The median of the radii, squared: the same order as the radii's.
  clipped_r2 = np.minimum(r2, np.float32(
      np.median(np.sqrt(r2.astype(np.float64))) ** 2))
  inside = in_other_balls(points, clipped_r2)
  real_density = float(np.mean(np.minimum(inside / k, 1.0)))
  return ClippedSide(k, r2, clipped_r2, real_density)


def clipped_score(side: ClippedSide, real: knn._Points, fake: knn._Points  # pylint: disable=protected-access
                  ) -> dict[str, float]:
  k, m = side.k, fake.n
  fake_count, real_count = clipped_counts(fake, real, side.clipped_r2,
                                          side.r2)
  fake_density = float(np.mean(np.minimum(fake_count / k, 1.0)))
  if not side.real_density > 0:
    raise _checks.DegenerateError(
        "real: no real point lies in another's clipped k-NN ball, so the "
        "clipped density's normalisation is 0")
  unnormalised = float(np.mean(np.minimum(real_count, k) / k))
  expected = expected_clipped_coverage(real.n, m, k)
  return {
      "density": min(fake_density / side.real_density, 1.0),
      "coverage": int(np.searchsorted(expected, unnormalised)) / (m + 1),
  }


# The realism score (Kynkäänniemi et al. 2019).


@jax.jit
def _realism_cross(best, fake, fake_sq, fake_pad, real, real_sq, real_pad,
                   kept_r2):
  """Merges, per fake point, the largest rho^2 / d^2 over the kept real
  points (kept_r2 = rho^2 there, -1 elsewhere and at padding)."""
  d2 = _sq_dists((fake, fake_sq, fake_pad), (real, real_sq, real_pad))
  kept = kept_r2[None, :] >= 0
  ratio = jnp.where(d2 > 0, kept_r2[None, :] / jnp.where(d2 > 0, d2, 1.0),
                    jnp.inf)
  return jnp.maximum(best, jnp.max(jnp.where(kept, ratio, 0.0), axis=1))


def realism_kept_r2(nearest_sq: np.ndarray, k: int) -> np.ndarray:
  """Squared k-NN radii of the real points kept for the realism score
  (radius at most the median radius), -1 for the others."""
  r2 = nearest_sq[:, k - 1].astype(np.float32)
  radii = np.sqrt(r2.astype(np.float64))
  return np.where(radii <= np.median(radii), r2,
                  np.float32(-1)).astype(np.float32)


def realism(fake: knn._Points, real: knn._Points, kept_r2: np.ndarray  # pylint: disable=protected-access
            ) -> np.ndarray:
  """Per fake point: max over kept real points of NND_k(r) / d(g, r)."""
  kept = _per_block(real, kept_r2, fill=-1.0)
  best = _zeros(fake)
  for i, f in enumerate(fake.blocks):
    for j, r in enumerate(real.blocks):
      best[i] = _realism_cross(best[i], *f, *r, kept[j])
  return np.sqrt(_host(best, fake.n).astype(np.float64))


# P-precision and P-recall (Park and Kim 2023).


def mean_radius(nearest_sq: np.ndarray, k: int, name: str) -> float:
  """The mean, over a set, of the distance to the k-th nearest other point."""
  radius = float(np.mean(np.sqrt(nearest_sq[:, k - 1].astype(np.float64))))
  if not radius > 0:
    raise _checks.DegenerateError(
        f"{name}: the mean distance to the {k}-th nearest neighbour is 0 at "
        "float32 resolution (mostly identical points), so P-precision and "
        "P-recall have no radius")
  return radius


@jax.jit
def _log_outside_cross(fake_acc, real_acc, fake, fake_sq, fake_pad, real,
                       real_sq, real_pad, real_r2, fake_r2):
  """Sums, per fake point over the real points and per real point over the
  fake ones, of log min(d / R, 1) (R the other set's radius): the log of the
  probability that no ball of the other set holds the point."""
  d2 = _sq_dists((fake, fake_sq, fake_pad), (real, real_sq, real_pad))
  log_outside = lambda r2: 0.5 * jnp.log(jnp.minimum(d2 / r2, 1.0))
  return (fake_acc + jnp.sum(log_outside(real_r2), axis=1),
          real_acc + jnp.sum(log_outside(fake_r2), axis=0))


def probabilistic_score(fake: knn._Points, real: knn._Points, real_r2: float,  # pylint: disable=protected-access
                        fake_r2: float) -> dict[str, float]:
  """P-precision = mean over fake points of 1 - prod_r max(0, ... ) (module
  `robust`); P-recall the same with the sets swapped."""
  fake_acc, real_acc = _zeros(fake), _zeros(real)
  real_r2, fake_r2 = resolvable(real_r2), resolvable(fake_r2)
  for i, f in enumerate(fake.blocks):
    for j, r in enumerate(real.blocks):
      fake_acc[i], real_acc[j] = _log_outside_cross(
          fake_acc[i], real_acc[j], *f, *r, real_r2, fake_r2)
  held = lambda acc, n: float(np.mean(
      -np.expm1(_host(acc, n).astype(np.float64))))
  return {"precision": held(fake_acc, fake.n), "recall": held(real_acc, real.n)}
