"""The robust peers as their authors published them, for the tests and
benchmarks to check ours against: numpy transcriptions of each published
code (float64, full n x n matrices, as published), step by step with its
quirks. TopP&R's authors publish a package (`top_pr`), used as it is.

  P-precision/recall   kdst-team/Probablistic_precision_recall,
                       metric/pp_pr.py (CPU path)
  clipped D/C          nicolassalvy/ClippedDensityCoverage,
                       class ClippedDensityCoverage
  realism              kynkaat/improved-precision-and-recall-metric,
                       ManifoldEstimator(clamp_to_percentile=50)
"""

from __future__ import annotations

import numpy as np


def _distances(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  d2 = (np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None, :] - 2 * a @ b.T)
  return np.sqrt(np.maximum(d2, 0.0))


def p_precision_recall(real, fake, k=4, a=1.2):
  """kdst-team/Probablistic_precision_recall, metric/pp_pr.py (CPU path):
  one radius per set, a x the mean distance to the k-th neighbour (the k-th
  smallest of a row that holds the point's own 0); per pair 1 - d / R,
  zeroed where d >= R; product over the other set."""
  d_rr, d_ff, d_rf = (_distances(real, real), _distances(fake, fake),
                      _distances(real, fake))
  np.fill_diagonal(d_rr, 0.0)
  np.fill_diagonal(d_ff, 0.0)
  r_real = a * np.mean(np.sort(d_rr, axis=1)[:, k])
  r_fake = a * np.mean(np.sort(d_ff, axis=1)[:, k])

  def held(d, radius):  # d: (other set, scored set)
    f = 1.0 - d / radius
    f[d >= radius] = 0.0
    return np.mean(1.0 - np.prod(1.0 - f, axis=0))

  return held(d_rf, r_real), held(d_rf.T, r_fake)


def clipped_density_coverage(real, fake, k=5):
  """nicolassalvy/ClippedDensityCoverage, ClippedDensityCoverage class:
  density against median-clipped radii (closed balls), normalised by the
  real set's own leave-one-out value found among each real point's k stored
  neighbours; coverage from the k nearest fake points inside the unclipped
  radius (strictly), calibrated by the expected value summed term by term
  in log space and a left search over m = 0..M."""
  n, m = len(real), len(fake)
  d_rr = _distances(real, real)
  order = np.argsort(d_rr, axis=1, kind="stable")[:, :k + 1]
  near = np.take_along_axis(d_rr, order, axis=1)
  radius = near[:, -1]
  d_rf = _distances(real, fake)
  clipped = np.minimum(radius, np.median(radius))
  fake_density = np.mean(np.minimum(np.sum(d_rf <= clipped[:, None], 0) / k,
                                    1))
  inside = near[:, 1:] <= clipped[:, None]
  held = np.bincount(order[:, 1:][inside], minlength=n)
  density = min(fake_density / np.mean(np.minimum(held / k, 1)), 1.0)
  unnormalised = np.mean(np.mean(
      np.sort(d_rf, axis=1)[:, :k] < radius[:, None], axis=1))
  log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, m + n + 1)))])
  log_beta = lambda x, y: log_fact[x - 1] + log_fact[y - 1] - log_fact[x + y - 1]
  expected = np.zeros(m + 1)
  for good in range(k, m + 1):
    j = np.arange(good + 1)
    with np.errstate(divide="ignore"):
      terms = (np.log(np.minimum(j, k)) + log_fact[good] - log_fact[j]
               - log_fact[good - j] + log_beta(k + j, n + good - k - j)
               - log_beta(k, n - k))
    expected[good] = np.exp(np.logaddexp.reduce(terms)) / k
  coverage = np.searchsorted(expected, unnormalised) / (m + 1)
  return density, coverage, expected


def realism_scores(real, fake, k=3, eps=1e-5):
  """kynkaat/improved-precision-and-recall-metric, ManifoldEstimator with
  clamp_to_percentile=50: squared distances throughout, the radii above
  their median set to 0, max of radius^2 / (d^2 + eps). Its square root is
  the paper's score (up to eps)."""
  d_rr = _distances(real, real) ** 2
  radii = np.partition(d_rr, np.arange(k + 1), axis=1)[:, k]
  radii[radii > np.percentile(radii, 50)] = 0
  return np.sqrt(np.max(radii[None, :] / (_distances(fake, real) ** 2 + eps),
                        axis=1))
