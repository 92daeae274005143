"""Seconds and peak memory of the robust peers, ours beside their published
code, with exact KNN and the GEMM floor in the same run.

Run from the repository root:

  python benchmarks/robust_bench.py                 # about 40 min on 2 cores
  python benchmarks/robust_bench.py --sizes=2000 --dims=64 \
      --out=/tmp/robust.json                         # a quick look

Data: `mixtures.latent_pair` (as benchmarks/metrics_bench.py), n real and n
fake points. Every cell (a method at an (n, d)) runs in its own process, so
its peak memory is its own (peak resident memory beyond the inputs), and
records:

  seconds     the best of up to three whole calls (real and fake sets to
              the numbers), after a first call on a set of another size
              compiled what it needs;
  query µs    per fake sample, scoring 1,000 fake points against a
              `metrics.Reference` that has already built its real side (the
              second call's time / 1,000): what each further generator
              costs in a sweep. Ours only.

Methods: exact KNN (ours, all four metrics), P-precision/recall, TopP&R,
clipped density/coverage and the realism score (ours: `lsh_gan.metrics`;
published: `top_pr.compute_top_pr`, the authors' package, and the
transcriptions of benchmarks/_published.py for the others, each with the
full n x n matrices its authors' code builds, run only up to
--published_max_n), and the GEMM floor: three n x n x d float32 products
(R x R, G x G, G x R, which exact KNN and P-precision/recall imply) at
numpy's best rate measured in that cell. Cells are kept in a JSON file,
written atomically; a rerun skips finished cells.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app
from absl import flags

_HERE = os.path.dirname(os.path.abspath(__file__))
_SIZES = flags.DEFINE_list("sizes", ["10000", "50000"], "n per set")
_DIMS = flags.DEFINE_list("dims", ["64", "2048"], "embedding sizes")
_PUBLISHED_MAX_N = flags.DEFINE_integer(
    "published_max_n", 10000, "largest n given to the published code")
_OUT = flags.DEFINE_string("out", os.path.join(_HERE, "results",
                                               "robust_bench.json"),
                           "results file (resumed)")
_CELL = flags.DEFINE_string("cell", None, "internal: method,n,d to run")

sys.path.insert(0, _HERE)
import _cells  # pylint: disable=g-import-not-at-top,wrong-import-position

PEERS = ("p", "top", "clipped", "realism")
METHODS = ("knn", *PEERS, *(f"{p}_published" for p in PEERS), "floor")
NAMES = {"knn": "exact KNN", "p": "P-precision/recall", "top": "TopP&R",
         "clipped": "clipped D/C", "realism": "realism"}
RUNS = 3
REPEAT_BELOW_S = 20.0
QUERIES = 1000


def _ours(method: str):
  """(one-shot function of (real, fake), Reference method name)."""
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  name = {"knn": "knn_metrics", "p": "probabilistic_precision_recall",
          "top": "top_precision_recall",
          "clipped": "clipped_density_coverage",
          "realism": "realism_scores"}[method]
  return lambda r, f: getattr(metrics.Reference(r), name)(f), name


def _published(method: str):
  import _published as published  # pylint: disable=g-import-not-at-top
  if method == "top":
    import top_pr  # pylint: disable=g-import-not-at-top
    return lambda r, f: top_pr.compute_top_pr(real_features=r,
                                              fake_features=f)
  return {"p": published.p_precision_recall,
          "clipped": lambda r, f: published.clipped_density_coverage(r, f)[:2],
          "realism": published.realism_scores}[method]


def _summary(out) -> dict:
  """A result's numbers (a realism array as its mean)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  if isinstance(out, dict):
    return {k: float(np.asarray(v)) for k, v in out.items()}
  if isinstance(out, tuple):
    return {f"value_{i}": float(v) for i, v in enumerate(out)}
  return {"mean": float(np.mean(out))}


def run_cell(method: str, n: int, dim: int) -> dict:
  """Runs one method on n x n points of dimension dim; returns its numbers."""
  import _faiss_knn  # pylint: disable=g-import-not-at-top
  import mixtures  # pylint: disable=g-import-not-at-top
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  if method == "floor":
    return _faiss_knn.floor_cell(n, dim)
  real, fake = mixtures.latent_pair(n, dim, seed=0)
  published = method.endswith("_published")
  if published:
    fn = _published(method[:-len("_published")])
    warm = 400
  else:
    fn, name = _ours(method)
    warm = 2000  # the blocks' shapes do not depend on n
  fn(real[:warm], fake[:warm])
  out, timing = _cells.best_of(fn, real, fake, runs=RUNS,
                               repeat_below_s=REPEAT_BELOW_S)
  result = {**timing, **_summary(out)}
  if not published:
    ref = metrics.Reference(real)
    queries = mixtures.latent_pair(QUERIES, dim, seed=1)[1]
    getattr(ref, name)(queries)  # builds the real side
    start = time.perf_counter()
    getattr(ref, name)(queries)
    result["query_us"] = (time.perf_counter() - start) / QUERIES * 1e6
  return result


def table(results) -> str:
  """Markdown: a row per (n, d), per peer ours and published side by side."""
  head = ["n", "d", "exact KNN s (GB)"]
  for peer in PEERS:
    head += [f"{NAMES[peer]} s (GB)", "published s (GB)", "query µs"]
  head += ["GEMM floor s"]
  lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
  for dim in _DIMS.value:
    for n in _SIZES.value:
      cell = lambda m: results.get(f"{m},{n},{dim}")

      def show(c):
        if c is None:
          return "—"
        if "error" in c:
          return c["error"]
        return f"{c['seconds']:.2f} ({c['peak_gb']:.2f})"

      row = [f"{int(n):,}", dim, show(cell("knn"))]
      for peer in PEERS:
        ours = cell(peer)
        row += [show(ours), show(cell(f"{peer}_published")),
                f"{ours['query_us']:.0f}" if ours and "query_us" in ours
                else "—"]
      floor = cell("floor")
      row.append(f"{floor['seconds']:.2f}" if floor and "error" not in floor
                 else "—")
      lines.append("| " + " | ".join(str(c) for c in row) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  if _CELL.value:
    method, n, dim = _CELL.value.split(",")
    print(json.dumps(run_cell(method, int(n), int(dim))))
    return
  keys = [f"{method},{n},{dim}" for dim in _DIMS.value
          for n in _SIZES.value for method in METHODS]

  def too_big(key):
    method, n, _ = key.split(",")
    if method.endswith("_published") and int(n) > _PUBLISHED_MAX_N.value:
      return "not run (n×n float64 matrices: out of memory)"
    return None

  results = _cells.run(__file__, keys, _OUT.value, skip=too_big)
  print(table(results))


if __name__ == "__main__":
  app.run(main)
