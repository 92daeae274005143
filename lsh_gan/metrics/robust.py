"""Robust precision/recall metrics published since the LSH paper.

Four peers of the KNN and LSH metrics, each meant to resist the outliers that
inflate k-NN balls. R = real embeddings (n points), G = fake (m points), d
Euclidean, NND_k(x, S) the distance from x to its k-th nearest other point of
S.

P-precision and P-recall (Park and Kim, ICCV 2023), defaults k = 4, a = 1.2:
  R_S = a * mean_{s in S} NND_k(s, S), one radius per set;
  P-precision = 1/m sum_g [1 - prod_r (1 - max(0, 1 - d(g, r) / R_R))]
  P-recall    = 1/n sum_r [1 - prod_g (1 - max(0, 1 - d(r, g) / R_G))]
  each point's chance of lying in at least one of the other set's balls, if
  each ball held it with a probability falling linearly to 0 at R.

TopP&R (Kim et al., NeurIPS 2023), alpha = 0.1, 10 bootstraps:
  sets of more than 32 features are first mapped to 32 by one random
  Gaussian matrix (Xavier-normal; shared by both sets). Per set S, a
  cosine-kernel density estimate p_S with bandwidth h_S = the median,
  over its points i < |S| - 5 d (in index order), of the distance to i's
  (5 d)-th nearest point among those after it; the set's confidence band
  c_S = the (1 - alpha) quantile over bootstrap resamples S* of
  max_{s in S} |p_S(s) - p_S*(s)|. A point of S is significant when
  p_S(s) > c_S, and
  precision = #{g significant in G with p_R(g) > c_R} / #{g significant}
  recall    = #{r significant in R with p_G(r) > c_G} / #{r significant}.

Clipped density and coverage (Salvy, Talbot and Thirion, ICLR 2026), k = 5:
  rho(r) = NND_k(r, R), clipped to the median of rho over R: rho~(r);
  density = min(1, [1/m sum_g min(1, #{r: d(g, r) <= rho~(r)} / k)] /
                   [1/n sum_r min(1, #{r' != r: d(r, r') <= rho~(r')} / k)])
  u = 1/n sum_r min(#{g: d(r, g) < rho(r)}, k) / k, and coverage = j / (m + 1)
  for the first j with f(j) >= u, f(j) the expected u when j fake points
  follow the real distribution and the others fall in no ball (a ball's
  share of the distribution is Beta(k, n - k), so the count in it is
  beta-binomial); f(j) = 0 for j < k. Each reads as the fraction of good
  fake samples.

The realism score (Kynkäänniemi et al., NeurIPS 2019), k = 3, per fake point:
  realism(g) = max over the real points r with rho(r) <= median rho of
  rho(r) / d(g, r), rho = NND_k(., R): above 1 means g lies inside some
  real ball (infinite for a copy of a kept real point).

Each is blocked as the exact KNN metrics are (`_robust`): no n x n matrix,
a new n compiles nothing. Our reading of each published code, where we
differ and why: docs/metrics.md, "The robust peers".

References:
  D. Park and S. Kim, "Probabilistic Precision and Recall Towards Reliable
  Evaluation of Generative Models", ICCV 2023, https://arxiv.org/abs/2309.01590
  P. J. Kim et al., "TopP&R: Robust Support Estimation Approach for
  Evaluating Fidelity and Diversity in Generative Models", NeurIPS 2023,
  https://arxiv.org/abs/2306.08013
  N. Salvy, H. Talbot and B. Thirion, "Enhanced Generative Model Evaluation
  with Clipped Density and Coverage", ICLR 2026,
  https://arxiv.org/abs/2507.01761
  T. Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing
  Generative Models", NeurIPS 2019, https://arxiv.org/abs/1904.06991
"""

from __future__ import annotations

import numpy as np

from lsh_gan.metrics import _robust
from lsh_gan.metrics import reference

__all__ = ("clipped_density_coverage", "probabilistic_precision_recall",
           "realism_scores", "top_precision_recall")


def probabilistic_precision_recall(real, fake, *, k: int = 4,
                                   scale: float = 1.2) -> dict[str, float]:
  """P-precision and P-recall (Park and Kim 2023).

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    k: the neighbour whose mean distance sets each set's radius (default 4).
    scale: a, the radius's factor on that mean (default 1.2).

  Returns:
    {"precision": float, "recall": float}, each in [0, 1].

  Raises:
    DegenerateError: (a ValueError) a set's mean k-NN distance is 0.
    ValueError: NaN/inf, not 2-D, feature sizes differ, fewer than k + 1
      points in a set, k < 1 or scale not a finite number > 0.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(300, 8))
    >>> probabilistic_precision_recall(x, x + 100.0)
    {'precision': 0.0, 'recall': 0.0}

  References:
    https://arxiv.org/abs/2309.01590
  """
  return reference.Reference(real).probabilistic_precision_recall(
      fake, k=k, scale=scale)


def top_precision_recall(real, fake, *, alpha: float = 0.1,
                         projection_dim: int = _robust.TOP_PROJECTION_DIM,
                         bootstraps: int = 10,
                         seed: int = _robust.TOP_SEED) -> dict[str, float]:
  """TopP&R (Kim et al. 2023): precision and recall on supports estimated
  with statistical significance (a KDE above its bootstrap confidence band).

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    alpha: significance level of the confidence band (default 0.1).
    projection_dim: sets of more features are randomly projected to this
      many first (default 32, as published).
    bootstraps: resamples for the confidence band (default 10).
    seed: seeds the projection and the resamples (default 42; the
      resamples then are the published code's, drawn from numpy's
      RandomState(42)).

  Returns:
    {"precision": float, "recall": float}, each in [0, 1].

  Raises:
    DegenerateError: (a ValueError) a set's bandwidth is 0 (mostly identical
      points), or no point of a set passes its own band.
    ValueError: NaN/inf, not 2-D, feature sizes differ, a set of at most
      5 x (projected dimension) + 1 points (160 + 2 = 162 at 32 features),
      or a bad alpha, projection_dim, bootstraps or seed (below 2^32).

  Examples:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(400, 4))
    >>> top_precision_recall(x, x + 100.0)
    {'precision': 0.0, 'recall': 0.0}

  References:
    https://arxiv.org/abs/2306.08013
  """
  return reference.Reference(real).top_precision_recall(
      fake, alpha=alpha, projection_dim=projection_dim, bootstraps=bootstraps,
      seed=seed)


def clipped_density_coverage(real, fake, *, k: int = 5) -> dict[str, float]:
  """Clipped density and clipped coverage (Salvy et al. 2025): each reads
  as the fraction of fake samples that are good (density: realistic;
  coverage: the share of the real distribution they cover, calibrated).

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    k: neighbours defining each real ball (default 5).

  Returns:
    {"density": float, "coverage": float}, each in [0, 1].

  Raises:
    DegenerateError: (a ValueError) no real point lies in another's
      clipped ball (the density's normaliser is 0).
    ValueError: NaN/inf, not 2-D, feature sizes differ, fewer than k + 1
      real or k fake points, or k < 1.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(300, 8))
    >>> clipped_density_coverage(x, x + 100.0)
    {'density': 0.0, 'coverage': 0.0}

  References:
    https://arxiv.org/abs/2507.01761
  """
  return reference.Reference(real).clipped_density_coverage(fake, k=k)


def realism_scores(real, fake, *, k: int = 3) -> np.ndarray:
  """The realism score of each fake point (Kynkäänniemi et al. 2019), to
  rank samples: max over the real points with a k-NN radius at most the
  median of rho(r) / d(g, r); above 1 inside some real ball.

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    k: neighbours defining each real ball (default 3).

  Returns:
    (m,) float64 scores, >= 0 (inf for a copy of a kept real point).

  Raises:
    ValueError: NaN/inf, not 2-D, feature sizes differ, fewer than k + 1
      points in a set, or k < 1.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(300, 8))
    >>> scores = realism_scores(x, np.stack([x[:50].mean(0), x[0] + 100.0]))
    >>> bool(scores[0] > 1.0), bool(scores[1] < 0.1)
    (True, True)

  References:
    https://arxiv.org/abs/1904.06991
  """
  return reference.Reference(real).realism_scores(fake, k=k)
