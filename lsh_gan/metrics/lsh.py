"""LSH-only precision and recall: coverage read from hash buckets, not k-NN
balls. The definition, defaults and how it is computed: `_lsh`.

References:
  G. Mordido, H. Yang, C. Meinel, "Evaluating Post-Training Compression in
  GANs using Locality-Sensitive Hashing", https://arxiv.org/abs/2103.11912
"""

from __future__ import annotations

from lsh_gan.metrics import _sharded
from lsh_gan.metrics import reference
from lsh_gan.metrics._lsh import NUM_HASHES
from lsh_gan.metrics._lsh import NUM_TABLES

__all__ = ("lsh_precision_recall",)


def lsh_precision_recall(real, fake, *, num_tables: int = NUM_TABLES,
                         num_hashes: int = NUM_HASHES,
                         bucket_width: float | None = None, min_count: int = 1,
                         coverage: str = "calibrated",
                         seed: int = 0, mesh=None) -> dict[str, float]:
  """LSH-only precision and recall: bucket company instead of k-NN balls.

  A point's hits against a set are the number of the L tables in which its
  bucket holds >= `min_count` points of that set. With the default
  "calibrated" coverage, a fake point is precise when its hits against the
  real set reach what 90% of the real set's own (non-isolated) points reach
  against the rest of it, and precision is the fraction of such fake points
  over the fraction of real points that reach it (so a fresh sample of the
  real distribution reads about 1); recall is the same with the sets
  swapped. Definition, rules and defaults: docs/metrics.md.

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    num_tables: L, independent hash tables (default 32).
    num_hashes: K, hash functions per table (default 8).
    bucket_width: w for both sides; None (default) reads it per side (the
      real set's for precision, the fake set's for recall): the width at
      which the set's median point has 2 bucket-mates per table.
    min_count: m, points a bucket must hold to count as a hit (default 1).
    coverage: "calibrated" (default), "any" (covered when hit in any table:
      nearly everything is, with many tables) or "majority" (hit in more
      than half of the tables).
    seed: seed of the hash functions and the width sample (an integer >= 0).
    mesh: a `jax.sharding.Mesh` to compute on, the sets sharded by rows
      over all its devices (each device sorts its own rows' tables; bucket
      counts are summed round the devices: the same numbers, see
      `docs/scaling.md`); None: the mesh of a set that is a jax.Array on
      several devices, else one device.

  Returns:
    {"precision": float, "recall": float}, each in [0, 1]. The same at any
    scale of the embeddings (both sets times one factor).

  Raises:
    DegenerateError: (a ValueError) a set whose default width is needed has
      a median 3-NN distance of 0 at float32 resolution (mostly identical
      points); pass bucket_width.
    ValueError: NaN/inf, not 2-D, feature sizes differ, too few points for
      the default width, a non-positive count or width, an unknown coverage
      rule, a bad seed, or scales more than 2^100 apart.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(500, 8))
    >>> lsh_precision_recall(x, x)
    {'precision': 1.0, 'recall': 1.0}
    >>> lsh_precision_recall(x, x + 100.0)
    {'precision': 0.0, 'recall': 0.0}

  References:
    https://arxiv.org/abs/2103.11912
  """
  return reference.Reference(
      real, mesh=_sharded.mesh_for(mesh, real, fake)).lsh_precision_recall(
      fake, num_tables=num_tables, num_hashes=num_hashes,
      bucket_width=bucket_width, min_count=min_count, coverage=coverage,
      seed=seed)
