"""LSH + KNN precision and recall: k-NN balls among hash-bucket candidates.
The definition, defaults and how it is computed: `_lsh_knn`.
"""

from __future__ import annotations

from lsh_gan.metrics import _lsh_knn
from lsh_gan.metrics import _sharded
from lsh_gan.metrics import reference
from lsh_gan.metrics._lsh_knn import AccuracyWarning
from lsh_gan.metrics._lsh_knn import MAX_CANDIDATES
from lsh_gan.metrics._lsh_knn import NUM_TABLES

__all__ = ("AccuracyWarning", "lsh_knn_precision_recall")


def lsh_knn_precision_recall(real, fake, *, k: int = 3,
                             num_tables: int = _lsh_knn.NUM_TABLES,
                             num_hashes: int | None = None,
                             bucket_width: float | None = None,
                             max_candidates: int = _lsh_knn.MAX_CANDIDATES,
                             seed: int = 0,
                             error_sample: int = _lsh_knn.ERROR_SAMPLE,
                             mesh=None) -> dict[str, float]:
  """LSH + KNN precision and recall: k-NN balls among bucket candidates.

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    k: neighbours defining each ball (default 3).
    num_tables: L (default 4).
    num_hashes: K (default min(8, d): at d = 2, eight functions cut cells so
      small that most points are isolated).
    bucket_width: w, the bucket width of both sets; None (default): each
      set's own width, at which its median point has 16 bucket-mates of its
      set (median over points and tables). Buckets only choose the
      candidates; each side's balls keep their own k-NN radii.
    max_candidates: M, at most this many candidates per point and table
      (default 128): M consecutive positions of the point's bucket in the
      table's sorted order (by key, then by the projection on the table's
      first direction) around the point's place, the whole bucket if it
      holds at most M. With one bucket (a huge bucket_width) and
      max_candidates >= max(n, m) the result equals exact KNN.
    seed: seed of the hash functions, the width sample and the error
      estimate's sample (an integer >= 0).
    error_sample: points per side whose exact KNN indicator is computed to
      estimate this result's error (default 256; 0: no estimate), doubled
      up to 4 times while the estimate cannot tell at two standard errors
      whether the error is beyond 0.03. Each point costs about 1 / m of an
      exact KNN pass over the real set.
    mesh: a `jax.sharding.Mesh` (or a set that is a jax.Array on several
      devices) makes a `Reference` on that mesh and computes there (see
      `docs/scaling.md`; with a max_candidates whose chunk does not divide
      the rows each device holds, both sets are read onto one device).

  Returns:
    {"precision", "recall"} and, unless error_sample is 0,
    {"precision_error", "precision_error_se", "recall_error",
    "recall_error_se"}: estimates of (this value - exact KNN's) and their
    standard errors. The same at any scale of the embeddings (both sets
    times one factor).

  Warns:
    AccuracyWarning: when an estimated error exceeds 0.03 (and two standard
      errors).

  Raises:
    ValueError: as `lsh_precision_recall`, and for fewer than k + 1 points.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(500, 8))
    >>> lsh_knn_precision_recall(x, x + 100.0, error_sample=0)
    {'precision': 0.0, 'recall': 0.0}
  """
  return reference.Reference(
      real, mesh=_sharded.mesh_for(mesh, real, fake)).lsh_knn_precision_recall(
      fake, k=k, num_tables=num_tables, num_hashes=num_hashes,
      bucket_width=bucket_width, max_candidates=max_candidates, seed=seed,
      error_sample=error_sample)
