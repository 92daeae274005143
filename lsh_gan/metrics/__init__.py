"""Precision/recall metrics of generated samples against real samples.

Convention: `real` first, `fake` second; 2-D float arrays (n, d); Euclidean
distance; results are dicts of Python floats.

Any scale: precision, recall, density and coverage (KNN, LSH, LSH + KNN) give
the same numbers for embeddings times a positive factor from 1e-20 to 1e20 and
beyond (bit for bit when the factor is a power of two and the scaled values
stay normal numbers); FID (which scales as s^2) and KID are computed where
float32 neither overflows nor underflows and put back in float64 (a
ValueError where the value exceeds float64). A fake set too far in scale from
the reference to share a float32 computation (about 2^100 apart) raises. `DegenerateError`
(a ValueError) marks a set with no structure at float32 resolution where a
metric needs its own k-NN distances (an LSH default width).
"""

from lsh_gan.metrics._checks import DegenerateError
from lsh_gan.metrics._lsh_knn import AccuracyWarning
from lsh_gan.metrics.fid import frechet_distance
from lsh_gan.metrics.fid import kernel_distance
from lsh_gan.metrics.knn import density_coverage
from lsh_gan.metrics.knn import knn_precision_recall
from lsh_gan.metrics.knn import KNNReference
from lsh_gan.metrics.lsh import lsh_precision_recall
from lsh_gan.metrics.lsh_knn import lsh_knn_precision_recall
from lsh_gan.metrics.reference import FakeSet
from lsh_gan.metrics.robust import clipped_density_coverage
from lsh_gan.metrics.robust import probabilistic_precision_recall
from lsh_gan.metrics.robust import realism_scores
from lsh_gan.metrics.robust import top_precision_recall
from lsh_gan.metrics.reference import Reference

__all__ = (
    "AccuracyWarning",
    "clipped_density_coverage",
    "DegenerateError",
    "density_coverage",
    "FakeSet",
    "frechet_distance",
    "kernel_distance",
    "knn_precision_recall",
    "KNNReference",
    "lsh_knn_precision_recall",
    "lsh_precision_recall",
    "probabilistic_precision_recall",
    "realism_scores",
    "Reference",
    "top_precision_recall",
)
