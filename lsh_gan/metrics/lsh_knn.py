"""LSH + KNN precision and recall: k-NN balls among hash-bucket candidates.
The definition, defaults and how it is computed: `_lsh_knn`.
"""

from __future__ import annotations

from lsh_gan.metrics import _lsh_knn
from lsh_gan.metrics import reference
from lsh_gan.metrics._lsh_knn import MAX_CANDIDATES
from lsh_gan.metrics._lsh_knn import NUM_TABLES

__all__ = ("lsh_knn_precision_recall",)


def lsh_knn_precision_recall(real, fake, *, k: int = 3,
                             num_tables: int = _lsh_knn.NUM_TABLES,
                             num_hashes: int | None = None,
                             bucket_width: float | None = None,
                             max_candidates: int = _lsh_knn.MAX_CANDIDATES,
                             seed: int = 0) -> dict[str, float]:
  """LSH + KNN precision and recall: k-NN balls among bucket candidates.

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    k: neighbours defining each ball (default 3).
    num_tables: L (default 4).
    num_hashes: K (default min(8, d): at d = 2, eight functions cut cells so
      small that most points are isolated).
    bucket_width: w, the bucket width of both sets; None (default): the
      width at which the median real point has 16 real bucket-mates (median
      over points and tables). Buckets only choose the candidates; each
      side's balls keep their own k-NN radii.
    max_candidates: at most this many candidates per point and table
      (default 128): the bucket-mates within max_candidates / 2 positions in
      the table's sorted order (by key, then by the projection on the
      table's first direction).
    seed: seed of the hash functions and the width sample (an integer >= 0).

  Returns:
    {"precision": float, "recall": float}. The same at any scale of the
    embeddings (both sets times one factor).

  Raises:
    ValueError: as `lsh_precision_recall`, and for fewer than k + 1 points.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(500, 8))
    >>> lsh_knn_precision_recall(x, x + 100.0)
    {'precision': 0.0, 'recall': 0.0}
  """
  return reference.Reference(real).lsh_knn_precision_recall(
      fake, k=k, num_tables=num_tables, num_hashes=num_hashes,
      bucket_width=bucket_width, max_candidates=max_candidates, seed=seed)
