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

References:
  M. Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to
  a Local Nash Equilibrium", NeurIPS 2017, https://arxiv.org/abs/1706.08500
  M. Binkowski et al., "Demystifying MMD GANs", ICLR 2018,
  https://arxiv.org/abs/1801.01401
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.metrics import _checks

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


def frechet_distance(real, fake) -> dict[str, float]:
  """Fréchet distance between Gaussians fitted to two embedding sets (FID).

  Args:
    real: (n, d) real embeddings, n >= 2.
    fake: (m, d) fake embeddings, m >= 2.

  Returns:
    {"fid": float} (>= 0; 0 for identical sets up to rounding).

  Raises:
    ValueError: NaN/inf, not 2-D, feature sizes differ, fewer than 2 points.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(500, 4))
    >>> round(frechet_distance(x, x + 1.0)["fid"], 6)
    4.0

  References:
    https://arxiv.org/abs/1706.08500
  """
  real, fake = _checks.pair(real, fake, 1)
  centre = jnp.mean(real, axis=0)
  return frechet_from_stats(gaussian_stats(real, centre),
                            gaussian_stats(fake, centre))


def gaussian_stats(x: jax.Array, centre: jax.Array):
  """(mean, covariance, covariance^(1/2)) of x - centre, in float64.

  Centring both sets on the real mean first leaves the covariances unchanged
  and keeps the float32 sums small.
  """
  mu, cov = (np.asarray(v, np.float64) for v in _mean_and_cov(x - centre))
  return mu, cov, _sqrt_psd(cov)


def frechet_from_stats(real_stats, fake_stats) -> dict[str, float]:
  """FID from two `gaussian_stats` (the real one can be computed once)."""
  mu_r, cov_r, root_r = real_stats
  mu_f, cov_f, _ = fake_stats
  cross = np.linalg.eigvalsh(root_r @ cov_f @ root_r)
  trace_sqrt = float(np.sum(np.sqrt(np.clip(cross, 0, None))))
  fid = float(np.sum((mu_r - mu_f) ** 2) + np.trace(cov_r) + np.trace(cov_f)
              - 2.0 * trace_sqrt)
  return {"fid": max(fid, 0.0)}


@jax.jit
def _mmd2_batch(xs, ys):
  """Unbiased polynomial-kernel MMD^2 of each (subset_x, subset_y) pair."""

  def one(x, y):
    d = x.shape[1]
    m = x.shape[0]
    kernel = lambda a, b: (jnp.dot(a, b.T, precision=_HIGHEST) / d + 1.0) ** 3
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    off = lambda k: (jnp.sum(k) - jnp.trace(k)) / (m * (m - 1))
    return off(k_xx) + off(k_yy) - 2.0 * jnp.mean(k_xy)

  return jax.vmap(one)(xs, ys)


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
                    batch: int = 10) -> dict[str, float]:
  """Kernel Inception Distance (KID): unbiased polynomial MMD^2 over subsets.

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    num_subsets: number of random subsets (default 100).
    subset_size: points per subset from each set (default 1000; capped at
      the smaller set's size, at least 2).
    seed: seed of the subset draws.
    batch: subsets per jitted call (memory: batch * subset_size * d floats).

  Returns:
    {"kid": mean MMD^2 over subsets, "kid_std": its standard deviation}. KID
    is unbiased, so it can be slightly negative when the sets match.

  Raises:
    ValueError: NaN/inf, not 2-D, feature sizes differ, fewer than 2 points,
      or a non-positive count.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(300, 4))
    >>> kernel_distance(x, x + 3.0, num_subsets=5, subset_size=100)["kid"] > 1
    True

  References:
    https://arxiv.org/abs/1801.01401
  """
  real, fake = _checks.pair(real, fake, 1)
  num_subsets = _checks.positive_int(num_subsets, "num_subsets")
  subset_size = _checks.positive_int(subset_size, "subset_size")
  batch = _checks.positive_int(batch, "batch")
  m = min(subset_size, real.shape[0], fake.shape[0])
  if m < 2:
    raise ValueError(f"subset_size={subset_size} must be >= 2")
  real_idx, fake_idx = subset_indices(real.shape[0], fake.shape[0],
                                      num_subsets, m, seed)
  # Fixed batch shapes: the last batch is padded by repeating subsets and
  # the extra values are dropped.
  pad = -num_subsets % batch
  real_idx = np.concatenate([real_idx, real_idx[:pad]])
  fake_idx = np.concatenate([fake_idx, fake_idx[:pad]])
  values = []
  for start in range(0, real_idx.shape[0], batch):
    values.append(_mmd2_batch(real[real_idx[start:start + batch]],
                              fake[fake_idx[start:start + batch]]))
  values = np.asarray(jnp.concatenate(values), np.float64)[:num_subsets]
  return {"kid": float(values.mean()), "kid_std": float(values.std())}
