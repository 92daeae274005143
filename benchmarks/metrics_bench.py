"""Seconds and peak memory of the precision/recall metrics, side by side.

Run from the repository root:

  python benchmarks/metrics_bench.py                  # about 40 min on 2 cores
  python benchmarks/metrics_bench.py --sizes=1000,10000 --dims=64

Data: `mixtures.latent_pair` (20 modes in a 32-dimensional latent space
mapped into d dimensions; the fake set keeps 15 modes, shifted), n real and n
fake points. Every cell runs in its own process, so its peak memory is its
own: the table shows the peak resident memory beyond the inputs. Seconds are
measured after compilation (each metric first runs once on a set of the same
padded size), the best of up to three runs (a cell is run again while its
runs so far took under 20 s in all: one run of milliseconds varies by 2x).
Cells are kept in a JSON file, written atomically, and a rerun
skips finished cells, so an interrupted run resumes.

Columns: LSH-only (`lsh_precision_recall`), LSH+KNN
(`lsh_knn_precision_recall`, with its error estimate, and without it:
`error_sample=0`), exact KNN (ours: `Reference.knn_metrics`, all
four metrics, k = 3 and 5, as prdc computes), faiss (an exact faiss-cpu
implementation of the same four numbers, `_faiss_knn.FaissReference`: flat
index searches for the radii, then exact cover tests; run only where
faiss-cpu is installed, `pip install -e .[bench]`), prdc (`prdc.compute_prdc`,
k = 5, only up to --prdc_max_n: it builds full n x n matrices), and the GEMM
floor: the three n x n x d products that exact KNN's definition implies
(R x R, G x G, G x R) at numpy's best float32 matrix-product rate measured in
that cell (`_faiss_knn.gemm_rate`); "exact % of floor" is floor / exact
seconds (above 100%: ours reads each R x R and G x G pair once, half those
products). Exact KNN and faiss run where n^2 d is at most --exact_max_work
(200,000 points at d = 64, 50,000 at d = 2,048; beyond, one cell would take
an hour and more on 2 cores).
"""

from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags

_HERE = os.path.dirname(os.path.abspath(__file__))
_SIZES = flags.DEFINE_list("sizes", ["1000", "10000", "50000", "100000",
                                     "200000"], "n per set")
_DIMS = flags.DEFINE_list("dims", ["64", "2048"], "embedding sizes")
_PRDC_MAX_N = flags.DEFINE_integer("prdc_max_n", 20000,
                                   "largest n given to prdc")
_EXACT_MAX_WORK = flags.DEFINE_float(
    "exact_max_work", 5.2e12, "largest n^2 d given to exact KNN")
_OUT = flags.DEFINE_string("out", os.path.join(_HERE, "results",
                                               "metrics_bench.json"),
                           "results file (resumed)")
_CELL = flags.DEFINE_string("cell", None, "internal: method,n,d to run")

sys.path.insert(0, _HERE)
import _cells  # pylint: disable=g-import-not-at-top,wrong-import-position
import _faiss_knn  # pylint: disable=g-import-not-at-top,wrong-import-position

METHODS = ("lsh", "lsh_knn", "lsh_knn_fast", "exact", "faiss", "prdc", "floor")
# A cell is run up to RUNS times while its runs so far took under
# REPEAT_BELOW_S seconds in all, and its best run is kept: one run of a
# few milliseconds varies by 2x on a shared machine.
RUNS = 3
REPEAT_BELOW_S = 20.0


def run_cell(method: str, n: int, dim: int) -> dict:
  """Runs one metric once after warming up; returns its numbers."""
  import _faiss_knn  # pylint: disable=g-import-not-at-top
  import mixtures  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  if method == "floor":
    return _faiss_knn.floor_cell(n, dim)
  real, fake = mixtures.latent_pair(n, dim, seed=0)
  warm_real, warm_fake = real[:-1], fake[:-1]
  if method == "lsh":
    fn = metrics.lsh_precision_recall
  elif method == "lsh_knn":
    fn = metrics.lsh_knn_precision_recall
  elif method == "lsh_knn_fast":  # without its error estimate
    fn = lambda r, f: metrics.lsh_knn_precision_recall(r, f, error_sample=0)
  elif method == "exact":
    fn = lambda r, f: metrics.Reference(r).knn_metrics(f, k=3, density_k=5)
    # The blocks' shapes do not depend on n: a small set warms them.
    warm_real, warm_fake = real[:2000], fake[:2000]
  elif method == "faiss":
    fn = lambda r, f: _faiss_knn.FaissReference(r).score(f, k=3,
                                                         density_k=5)
    warm_real, warm_fake = real[:2000], fake[:2000]
  else:
    import prdc  # pylint: disable=g-import-not-at-top
    fn = lambda r, f: prdc.compute_prdc(r, f, nearest_k=5)
    warm_real, warm_fake = real[:200], fake[:200]
  fn(warm_real, warm_fake)
  del warm_real, warm_fake
  out, timing = _cells.best_of(fn, real, fake, runs=RUNS,
                               repeat_below_s=REPEAT_BELOW_S)
  return {**timing, **{k: float(np.asarray(v)) for k, v in out.items()}}


def table(results) -> str:
  lines = [
      "| n | d | LSH-only s (GB) | LSH+KNN s (GB) | exact KNN s (GB) | faiss s "
      "(GB) | prdc s (GB) | GEMM floor s | exact % of floor | faiss / exact "
      "| prdc / exact | prdc / LSH-only | exact / LSH+KNN | LSH+KNN without "
      "estimate s (GB) | exact / LSH+KNN without estimate | LSH+KNN "
      "\\|Δprecision\\|, \\|Δrecall\\| | faiss − exact (P, R, D, C) |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
      "| --- | --- | --- | --- | --- |"]
  for dim in _DIMS.value:
    for n in _SIZES.value:
      cells = {m: results.get(f"{m},{n},{dim}") for m in METHODS}
      show = lambda c: ("—" if c is None else c["error"] if "error" in c
                        else f"{c['seconds']:.2f} ({c['peak_gb']:.2f})")
      ok = lambda c: c is not None and "error" not in c
      ratio = lambda a, b: (f"{cells[a]['seconds'] / cells[b]['seconds']:.1f}×"
                            if ok(cells[a]) and ok(cells[b]) else "—")
      delta = "—"
      if ok(cells["exact"]) and ok(cells["lsh_knn"]):
        delta = (f"{abs(cells['lsh_knn']['precision'] - cells['exact']['precision']):.3f}, "
                 f"{abs(cells['lsh_knn']['recall'] - cells['exact']['recall']):.3f}")
      floor = share = "—"
      if ok(cells["floor"]):
        floor = f"{cells['floor']['seconds']:.2f}"
        if ok(cells["exact"]):
          share = (f"{100 * cells['floor']['seconds'] / cells['exact']['seconds']:.0f}%")
      faiss_delta = "—"
      if ok(cells["exact"]) and ok(cells["faiss"]):
        faiss_delta = ", ".join(
            f"{cells['faiss'][m] - cells['exact'][m]:+.1e}".replace("+0.0e+00", "0")
            for m in ("precision", "recall", "density", "coverage"))
      lines.append(
          f"| {int(n):,} | {dim} | {show(cells['lsh'])} | "
          f"{show(cells['lsh_knn'])} | {show(cells['exact'])} | "
          f"{show(cells['faiss'])} | {show(cells['prdc'])} | {floor} | {share} "
          f"| {ratio('faiss', 'exact')} | {ratio('prdc', 'exact')} | "
          f"{ratio('prdc', 'lsh')} | {ratio('exact', 'lsh_knn')} | "
          f"{show(cells['lsh_knn_fast'])} | {ratio('exact', 'lsh_knn_fast')} | "
          f"{delta} | "
          f"{faiss_delta} |")
  return "\n".join(lines)


def main(argv):
  del argv
  if _CELL.value:
    method, n, dim = _CELL.value.split(",")
    print(json.dumps(run_cell(method, int(n), int(dim))))
    return
  methods = METHODS
  if not _faiss_knn.available():
    # Left out, not recorded as skipped: installing faiss later fills it in.
    methods = tuple(m for m in METHODS if m != "faiss")
  keys = [f"{method},{n},{dim}" for dim in _DIMS.value
          for n in _SIZES.value for method in methods]
  def too_big(key):
    method, n, dim = key.split(",")
    if method == "prdc" and int(n) > _PRDC_MAX_N.value:
      return "not run (n×n matrices: out of memory)"
    if (method in ("exact", "faiss") and
        int(n) ** 2 * int(dim) > _EXACT_MAX_WORK.value):
      return "not run (n² d: an hour and more)"
    return None

  results = _cells.run(__file__, keys, _OUT.value, skip=too_big)
  print(table(results))
  if "faiss" not in methods:
    print("\nfaiss column not run: faiss-cpu is not installed "
          "(pip install -e .[bench]).")


if __name__ == "__main__":
  app.run(main)
