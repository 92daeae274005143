"""LSH-only precision and recall: coverage read from hash buckets, not k-NN
balls. The definition, defaults and how it is computed: `_lsh`.

References:
  G. Mordido, H. Yang, C. Meinel, "Evaluating Post-Training Compression in
  GANs using Locality-Sensitive Hashing", https://arxiv.org/abs/2103.11912
"""

from __future__ import annotations

from lsh_gan.metrics import reference
from lsh_gan.metrics._lsh import NUM_HASHES
from lsh_gan.metrics._lsh import NUM_TABLES

__all__ = ("lsh_precision_recall",)


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
    num_tables: L, independent hash tables (default 8).
    num_hashes: K, hash functions per table (default 8).
    bucket_width: w for both sides; None (default) reads it per side: the
      real set's for precision, the fake set's for recall, each 4 times the
      set's median 3-NN distance (computed for 128 sampled points).
    min_count: m, points a bucket must hold to cover a query (default 1).
    seed: seed of the hash functions and the width sample (an integer >= 0).

  Returns:
    {"precision": float, "recall": float}. The same at any scale of the
    embeddings (both sets times one factor).

  Raises:
    DegenerateError: (a ValueError) a set whose default width is needed has
      a median 3-NN distance of 0 at float32 resolution (mostly identical
      points); pass bucket_width.
    ValueError: NaN/inf, not 2-D, feature sizes differ, too few points for
      the default width, a non-positive count or width, a bad seed, or
      scales more than 2^100 apart.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(500, 8))
    >>> lsh_precision_recall(x, x)
    {'precision': 1.0, 'recall': 1.0}

  References:
    https://arxiv.org/abs/2103.11912
  """
  return reference.Reference(real).lsh_precision_recall(
      fake, num_tables=num_tables, num_hashes=num_hashes,
      bucket_width=bucket_width, min_count=min_count, seed=seed)
