"""How far outliers move KNN, LSH-only and LSH + KNN precision and recall.

Run from the repository root (about a minute):

  python benchmarks/outliers.py

The paper's claim: LSH-based precision and recall are robust to outliers.
Data: `mixtures.Modes` (8 unit-variance modes, centres ~ N(0, 10^2 I)),
2,000 points a set, far outliers ~ N(0, 30^2 I), all metrics at their
defaults (KNN k = 3).
- precision: 30% of the fake mass lies off the data (truth 0.70); a fraction
  eps of far outliers joins the real set.
- recall: the fake set keeps 4 of 8 modes (truth 0.50); a fraction eps of far
  outliers joins the fake set.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mixtures  # pylint: disable=g-import-not-at-top,wrong-import-position

from lsh_gan import metrics  # pylint: disable=g-import-not-at-top,wrong-import-position

_DIMS = flags.DEFINE_list("dims", ["16", "512"], "embedding sizes")
EPSILONS = (0.0, 0.01, 0.05)
METRICS = (("KNN (k=3)", metrics.knn_precision_recall),
           ("LSH-only", metrics.lsh_precision_recall),
           ("LSH+KNN", metrics.lsh_knn_precision_recall))


def rows(dim: int):
  mix = mixtures.Modes(dim, 8, seed=5)
  real = mix.sample(2000, range(8))
  off = np.concatenate([mix.sample(1400, range(8)), mix.far(600)])
  half = mix.sample(2000, range(4))
  out = []
  for name, fn in METRICS:
    p = [fn(np.concatenate([real, mix.far(int(e * 2000))]), off)["precision"]
         for e in EPSILONS]
    r = [fn(real, np.concatenate([half, mix.far(int(e * 2000))]))["recall"]
         for e in EPSILONS]
    out.append((f"precision, d={dim}, outliers in real", name, 0.70, p))
    out.append((f"recall, d={dim}, outliers in fake", name, 0.50, r))
  return sorted(out, key=lambda row: row[0])


def main(argv):
  del argv
  print("| experiment | metric | truth | " + " | ".join(
      f"ε = {e:.0%}" for e in EPSILONS) + " |")
  print("| --- | --- | --- | " + " | ".join("---" for _ in EPSILONS) + " |")
  for dim in _DIMS.value:
    for experiment, name, truth, values in rows(int(dim)):
      print(f"| {experiment} | {name} | {truth:.2f} | " +
            " | ".join(f"{v:.3f}" for v in values) + " |", flush=True)


if __name__ == "__main__":
  app.run(main)
