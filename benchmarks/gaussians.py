"""The LSH metrics against exact KNN on isotropic Gaussians: the hard case.

Run from the repository root:

  python benchmarks/gaussians.py          # about 6 min on 2 cores

Real N(0, I), fake N(0.1, 1.1^2 I) in d dimensions: full intrinsic
dimension, where hash buckets cut the data worst. Cases (--cases):

  one call      n real and n fake, at d = 64 and 2,048, n = 5,000 and
                50,000;
  built ref     m = 1,000 fake samples against a reference of n = 50,000
                (d = 256 and 2,048): the regime where LSH+KNN once read
                recall 0.38 against exact 0.97.

Per case: exact KNN precision and recall; LSH+KNN's, with its own error
estimate (estimate ± standard error, and whether it warns); LSH-only's. The
true gap is LSH+KNN - exact. Each cell runs in its own process; cells are
kept in --out (written atomically) and a rerun resumes.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

from absl import app
from absl import flags
import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_HERE))
sys.path.insert(0, _HERE)
import _cells  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import report  # pylint: disable=g-import-not-at-top,wrong-import-position

CASES = ("64x5000x5000", "2048x5000x5000", "64x50000x50000",
         "2048x50000x50000", "256x50000x1000", "2048x50000x1000")
_CASES = flags.DEFINE_list("cases", list(CASES), "dxnxm per case")
_OUT = flags.DEFINE_string("out", os.path.join(_HERE, "results",
                                               "gaussians.json"),
                           "results file (resumed)")
_CELL = flags.DEFINE_string("cell", None, "internal: dxnxm to run")


def gaussians(dim: int, n: int, m: int, seed: int = 0):
  """(real N(0, I), fake N(0.1, 1.1^2 I)), float32."""
  rng = np.random.default_rng(seed)
  real = rng.standard_normal((n, dim), np.float32)
  fake = (rng.standard_normal((m, dim), np.float32) * 1.1 + 0.1).astype(
      np.float32)
  return real, fake


def run_cell(dim: int, n: int, m: int) -> dict:
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  real, fake = gaussians(dim, n, m)
  ref = metrics.Reference(real)
  exact = ref.knn_precision_recall(fake)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", metrics.AccuracyWarning)
    lsh_knn = ref.lsh_knn_precision_recall(fake)
  lsh = ref.lsh_precision_recall(fake)
  return {"exact": exact, "lsh_knn": lsh_knn, "lsh": lsh,
          "warned": [str(w.message) for w in caught
                     if issubclass(w.category, metrics.AccuracyWarning)]}


def table(results, cases) -> str:
  rows = []
  for case in cases:
    cell = results.get(case)
    if cell is None or "error" in cell:
      continue
    dim, n, m = (int(v) for v in case.split("x"))
    e, a, o = cell["exact"], cell["lsh_knn"], cell["lsh"]
    pair = lambda x: f"{x['precision']:.3f} / {x['recall']:.3f}"
    gap = lambda key: a[key] - e[key]
    est = lambda key: f"{a[key + '_error']:+.3f} ± {a[key + '_error_se']:.3f}"
    rows.append([
        str(dim), f"{n:,}", f"{m:,}", pair(e), pair(a),
        f"{gap('precision'):+.3f} / {gap('recall'):+.3f}",
        f"{est('precision')} / {est('recall')}",
        "yes" if cell["warned"] else "no", pair(o)])
  return report.markdown_table(
      ["d", "n real", "m fake", "exact P / R", "LSH+KNN P / R",
       "true gap P / R", "estimate ± se P / R", "warns", "LSH-only P / R"],
      rows)


def main(argv):
  del argv
  if _CELL.value:
    print(json.dumps(run_cell(*(int(v) for v in _CELL.value.split("x")))))
    return
  print(table(_cells.run(__file__, _CASES.value, _OUT.value), _CASES.value))


if __name__ == "__main__":
  app.run(main)
