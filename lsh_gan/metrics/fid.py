"""Fréchet distance (FID) and kernel distance (KID) between embedding sets.

FID = |mu_R - mu_G|^2 + Tr(S_R + S_G - 2 (S_R S_G)^(1/2)), with S the sample
covariances (ddof=1). Tr((S_R S_G)^(1/2)) is computed as the sum of square
roots of the eigenvalues of the symmetric PSD matrix A S_G A, A = S_R^(1/2)
(both by `eigh` in float64): no matrix square root of a non-symmetric matrix,
no scipy.

KID = mean over random subsets of the unbiased MMD^2 with the polynomial
kernel k(x, y) = (x.y / d + 1)^3 (Binkowski et al. 2018):
MMD^2 = sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (m(m-1))
        - 2 sum_{i,j} k(x_i, y_j) / m^2,
subsets of m points drawn without replacement from each set, independently
per subset, by numpy's Generator(seed): for each subset, first the real
indices, then the fake ones.

Scale: FID grows as s^2 and KID is not scale-invariant at all ((s^2 t + 1)^3
for t = x.y / d), so both are computed in units where the data are O(1) and
the units are put back in float64: the Gaussian statistics are stored in data
units (float64), and KID is the sum over p = 1, 2, 3 of C(3, p) times the
unbiased MMD^2 of the homogeneous kernel t^p, each computed in float32 at unit
scale and multiplied by 2^(2 p e) on the host (the constant term of the
kernel cancels exactly and is left out, so tiny embeddings do not vanish
against it and huge ones do not overflow float32).

References:
  M. Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to
  a Local Nash Equilibrium", NeurIPS 2017, https://arxiv.org/abs/1706.08500
  M. Binkowski et al., "Demystifying MMD GANs", ICLR 2018,
  https://arxiv.org/abs/1801.01401
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.metrics import _checks
from lsh_gan.metrics import knn

_HIGHEST = jax.lax.Precision.HIGHEST


@jax.jit
def _mean_and_cov(x):
  mean = jnp.mean(x, axis=0)
  centred = x - mean
  cov = jnp.dot(centred.T, centred, precision=_HIGHEST) / (x.shape[0] - 1)
  return mean, cov


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
  values, vectors = np.linalg.eigh(matrix)
  return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _scale_exponent(*squares: float) -> int:
  """round(log2(sqrt(max(squares)))): the units of a set of statistics."""
  largest = max(squares)
  return _checks.magnitude_exponent(math.sqrt(largest)) if largest > 0 else 0


def frechet_distance(real, fake, *, mesh=None) -> dict[str, float]:
  """Fréchet distance between Gaussians fitted to two embedding sets (FID).

  Args:
    real: (n, d) real embeddings, n >= 2.
    fake: (m, d) fake embeddings, m >= 2.
    mesh: a `jax.sharding.Mesh` to compute on, the sets sharded by rows
      over all its devices (see `docs/scaling.md`); None: the mesh of a set
      that is a jax.Array on several devices, else one device.

  Returns:
    {"fid": float} (>= 0; 0 for identical sets up to rounding).

  Raises:
    ValueError: NaN/inf, not 2-D, feature sizes differ, fewer than 2 points,
      scales more than 2^100 apart.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(500, 4))
    >>> round(frechet_distance(x, x + 1.0)["fid"], 6)
    4.0

  References:
    https://arxiv.org/abs/1706.08500
  """
  from lsh_gan.metrics import _sharded  # pylint: disable=g-import-not-at-top
  if _sharded.wants_mesh(mesh, real, fake):
    return _sharded.frechet_distance(real, fake, mesh=mesh)
  real, exponent = _checks.reference_set(real, "real")
  fake, shift, _ = _checks.fake_set(fake, real.shape[1], exponent)
  _checks.enough_points(real.shape[0], 1, "real")
  _checks.enough_points(fake.shape[0], 1, "fake")
  centre = jnp.mean(real, axis=0)
  return frechet_from_stats(
      gaussian_stats(real, centre, exponent),
      gaussian_stats(fake, knn.times_power_of_two(centre, -shift),
                     exponent + shift))


def gaussian_stats(x: jax.Array, centre: jax.Array, exponent: int = 0):
  """(mean, covariance, covariance^(1/2)) of x - centre, float64, data units.

  x and centre are given in units of 2^exponent (see `_checks`), so the
  float32 sums neither overflow nor underflow; the results are multiplied
  back in float64. Centring both sets on the real mean first leaves the
  covariances unchanged and keeps the float32 sums small.
  """
  if isinstance(x, np.memmap):
    return stats_from_moments(*_file_mean_and_cov(x, centre), exponent)
  return stats_from_moments(*_mean_and_cov(x - centre), exponent)


def _file_mean_and_cov(x: np.memmap, centre):
  """`_mean_and_cov(x - centre)` of a memory-mapped set, by streaming sums:
  two passes in fixed blocks of rows (`knn.file_rows`), each block's float32
  sums (products at HIGHEST precision) added in float64 on the host, so
  nothing the size of the set is held."""
  n, dim = x.shape
  total = np.zeros(dim, np.float64)
  for rows, valid in knn.file_rows(x):
    total += np.asarray(_centred_sums(rows, valid, centre), np.float64)
  mean = total / n
  around = jnp.asarray(centre) + jnp.asarray(mean, jnp.float32)
  gram = np.zeros((dim, dim), np.float64)
  for rows, valid in knn.file_rows(x):
    gram += np.asarray(_centred_gram(rows, valid, around), np.float64)
  # The second pass is centred on float32(mean): correct for the rest.
  rest = mean - np.asarray(around - jnp.asarray(centre), np.float64)
  cov = (gram - n * np.outer(rest, rest)) / (n - 1)
  return mean, cov


def _valid_centred(rows, valid, centre):
  keep = (jnp.arange(rows.shape[0]) < valid)[:, None]
  return jnp.where(keep, rows - centre, 0.0)


@jax.jit
def _centred_sums(rows, valid, centre):
  return jnp.sum(_valid_centred(rows, valid, centre), axis=0)


@jax.jit
def _centred_gram(rows, valid, centre):
  centred = _valid_centred(rows, valid, centre)
  return jnp.dot(centred.T, centred, precision=_HIGHEST)


def stats_from_moments(mu, cov, exponent: int):
  """`gaussian_stats` from the mean and covariance of the centred set, in
  units of 2^exponent."""
  mu, cov = np.asarray(mu, np.float64), np.asarray(cov, np.float64)
  with np.errstate(over="ignore"):  # checked below, with a clear error
    stats = (np.ldexp(mu, exponent), np.ldexp(cov, 2 * exponent),
             np.ldexp(_sqrt_psd(cov), exponent))
  if not all(np.all(np.isfinite(v)) for v in stats):
    # Squares of values past about 1e154 leave float64; so would the FID.
    raise ValueError("fid: the covariance of a set exceeds the float64 "
                     "range (values of about 1e154 or more), and so would "
                     "the distance")
  return stats


def frechet_from_stats(real_stats, fake_stats) -> dict[str, float]:
  """FID from two `gaussian_stats` (the real one can be computed once).

  The statistics are brought to a common unit scale (a power of two, exact)
  before the eigenvalues, and FID is scaled back: sets of any magnitude give
  the same relative accuracy.

  Raises:
    ValueError: if the FID exceeds the float64 range.
  """
  mu_r, cov_r, root_r = real_stats
  mu_f, cov_f, _ = fake_stats
  terms = (float(np.sum((mu_r - mu_f) ** 2)), float(np.trace(cov_r)),
           float(np.trace(cov_f)))
  if not all(math.isfinite(t) for t in terms):
    raise ValueError("fid: the distance exceeds the float64 range (its "
                     "mean and covariance terms overflow)")
  e = _scale_exponent(*terms)
  mu_r, mu_f, root_r = (np.ldexp(v, -e) for v in (mu_r, mu_f, root_r))
  cov_r, cov_f = (np.ldexp(v, -2 * e) for v in (cov_r, cov_f))
  cross = np.linalg.eigvalsh(root_r @ cov_f @ root_r)
  trace_sqrt = float(np.sum(np.sqrt(np.clip(cross, 0, None))))
  fid = float(np.sum((mu_r - mu_f) ** 2) + np.trace(cov_r) + np.trace(cov_f)
              - 2.0 * trace_sqrt)
  fid = math.ldexp(max(fid, 0.0), 2 * e)
  if not math.isfinite(fid):
    raise ValueError("fid: the distance exceeds the float64 range "
                     f"(the sets' scale is about 2^{e})")
  return {"fid": fid}


@jax.jit
def _mmd2_row_sums(xs, ys, x_factor, y_factor):
  """(subsets, 3 parts, 3 powers, m) row sums of t^p, t = x.y (the 1 / d^p
  is applied later): parts xx and yy without the diagonal, then xy.

  The products are multiplied by the sets' factors (powers of two that
  bring both sets to one O(1) scale; one at a time, as their product can be
  below float32's range). The three kernels share one product and one pass
  over it. Only rows of m terms are summed in float32: KID is a small
  difference of large kernel sums (in an embedding of non-negative,
  unit-length blocks about 1e-6 of them), so the rows are added up in
  float64 (`_mmd2`).
  """
  powers = jnp.arange(1.0, 4.0)

  def row_power_sums(a, b, a_factor, b_factor, off_diagonal):
    dots = jnp.dot(a, b.T, precision=_HIGHEST) * a_factor * b_factor
    squares = dots * dots
    sums = jnp.stack([jnp.sum(dots, 1), jnp.sum(squares, 1),
                      jnp.sum(squares * dots, 1)])
    if off_diagonal:
      sums = sums - jnp.diagonal(dots)[None, :] ** powers[:, None]
    return sums

  def one(x, y):
    return jnp.stack([row_power_sums(x, x, x_factor, x_factor, True),
                      row_power_sums(y, y, y_factor, y_factor, True),
                      row_power_sums(x, y, x_factor, y_factor, False)])

  return jax.vmap(one)(xs, ys)


def _mmd2(row_sums: np.ndarray, d: int) -> np.ndarray:
  """(subsets, 3) unbiased MMD^2 of the kernels t, t^2, t^3, t = x.y / d,
  from `_mmd2_row_sums` (summed here in float64)."""
  sums = np.asarray(row_sums, np.float64).sum(axis=-1)  # (subsets, 3, 3)
  m = row_sums.shape[-1]
  scale = float(d) ** np.arange(1.0, 4.0)
  return ((sums[:, 0] + sums[:, 1]) / (m * (m - 1)) -
          2.0 * sums[:, 2] / (m * m)) / scale


def max_exponent(x: jax.Array, exponent: int) -> int:
  """round(log2(max |x|)) in data units, for x given in units 2^exponent."""
  return exponent + _checks.magnitude_exponent(float(jnp.max(jnp.abs(x))))


def subset_indices(n_real: int, n_fake: int, num_subsets: int,
                   subset_size: int, seed: int):
  """The (real, fake) index arrays KID draws, each (num_subsets, m)."""
  rng = np.random.default_rng(seed)
  real_idx, fake_idx = [], []
  for _ in range(num_subsets):
    real_idx.append(rng.choice(n_real, subset_size, replace=False))
    fake_idx.append(rng.choice(n_fake, subset_size, replace=False))
  return np.stack(real_idx), np.stack(fake_idx)


def kernel_distance(real, fake, *, num_subsets: int = 100,
                    subset_size: int = 1000, seed: int = 0,
                    batch: int = 10, mesh=None) -> dict[str, float]:
  """Kernel Inception Distance (KID): unbiased polynomial MMD^2 over subsets.

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    num_subsets: number of random subsets (default 100).
    subset_size: points per subset from each set (default 1000; capped at
      the smaller set's size, at least 2).
    seed: seed of the subset draws.
    batch: subsets per jitted call (memory: batch * subset_size * d floats).
    mesh: a `jax.sharding.Mesh` to compute on, the sets sharded by rows
      over all its devices (see `docs/scaling.md`); None: the mesh of a set
      that is a jax.Array on several devices, else one device.

  Returns:
    {"kid": mean MMD^2 over subsets, "kid_std": its standard deviation}. KID
    is unbiased, so it can be slightly negative when the sets match.

  Raises:
    ValueError: NaN/inf, not 2-D, feature sizes differ, fewer than 2 points,
      a non-positive count, a seed that is not an integer >= 0, or scales
      more than 2^100 apart.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(300, 4))
    >>> kernel_distance(x, x + 3.0, num_subsets=5, subset_size=100)["kid"] > 1
    True

  References:
    https://arxiv.org/abs/1801.01401
  """
  from lsh_gan.metrics import _sharded  # pylint: disable=g-import-not-at-top
  if _sharded.wants_mesh(mesh, real, fake):
    return _sharded.kernel_distance(real, fake, mesh=mesh,
                                    num_subsets=num_subsets,
                                    subset_size=subset_size, seed=seed,
                                    batch=batch)
  real, exponent = _checks.reference_set(real, "real")
  fake, shift, _ = _checks.fake_set(fake, real.shape[1], exponent)
  return kernel_distance_in_units(real, exponent, fake, exponent + shift,
                                  num_subsets=num_subsets,
                                  subset_size=subset_size, seed=seed,
                                  batch=batch)


def kernel_distance_in_units(real: jax.Array, real_exponent: int,
                             fake: jax.Array, fake_exponent: int, *,
                             num_subsets: int = 100, subset_size: int = 1000,
                             seed: int = 0, batch: int = 10,
                             max_exponents: tuple[int, int] | None = None,
                             sizes: tuple[int, int] | None = None,
                             take=None) -> dict[str, float]:
  """`kernel_distance` of validated sets given in units 2^exponent each
  (`max_exponents`: their `max_exponent`s, if already known).

  `take(x, indices)` returns the rows of x at an (s, m) array of indices
  (default x[indices]) and `sizes` are the sets' numbers of rows (default
  their first dimensions): the sharded code passes sets padded on a mesh
  and its own gather.
  """
  n_real, n_fake = sizes or (real.shape[0], fake.shape[0])
  take = take or (lambda x, indices: x[indices])
  _checks.enough_points(n_real, 1, "real")
  _checks.enough_points(n_fake, 1, "fake")
  num_subsets = _checks.positive_int(num_subsets, "num_subsets")
  subset_size = _checks.positive_int(subset_size, "subset_size")
  seed = _checks.seed(seed)
  batch = _checks.positive_int(batch, "batch")
  m = min(subset_size, n_real, n_fake)
  if m < 2:
    raise ValueError(f"subset_size={subset_size} must be >= 2")
  real_idx, fake_idx = subset_indices(n_real, n_fake, num_subsets, m, seed)
  # Fixed batch shapes: the last batch is padded by repeating subsets and
  # the extra values are dropped.
  pad = -num_subsets % batch
  real_idx = np.concatenate([real_idx, real_idx[:pad]])
  fake_idx = np.concatenate([fake_idx, fake_idx[:pad]])
  # One unit for both sets: the larger magnitude. The smaller set's factor
  # is >= about 2^-MAX_EXPONENT_GAP (`_checks.fake_set`), a normal float32.
  if max_exponents is None:
    max_exponents = (max_exponent(real, real_exponent),
                     max_exponent(fake, fake_exponent))
  unit = max(max_exponents)
  real_factor = np.float32(2.0 ** (real_exponent - unit))
  fake_factor = np.float32(2.0 ** (fake_exponent - unit))
  terms = []
  for start in range(0, real_idx.shape[0], batch):
    rows = (take(real, real_idx[start:start + batch]),
            take(fake, fake_idx[start:start + batch]))
    terms.append(_mmd2(_mmd2_row_sums(*rows, real_factor, fake_factor),
                       real.shape[1]))
  terms = np.concatenate(terms)[:num_subsets]
  # (t + 1)^3 - 1 = 3 t + 3 t^2 + t^3, t in data units = 2^(2 unit) t here.
  with np.errstate(over="ignore", invalid="ignore"):  # checked below
    values = sum(coefficient * np.ldexp(terms[:, p - 1], 2 * p * unit)
                 for p, coefficient in ((1, 3.0), (2, 3.0), (3, 1.0)))
    kid, kid_std = float(values.mean()), float(values.std())
  if not (math.isfinite(kid) and math.isfinite(kid_std)):
    raise ValueError("kid: the distance exceeds the float64 range (the "
                     f"sets' scale is about 2^{unit})")
  return {"kid": kid, "kid_std": kid_std}
