"""Cost per evaluated sample against the number of reference samples n.

Run from the repository root:

  python benchmarks/cost_per_sample.py            # about 25 min on 2 cores
  python benchmarks/cost_per_sample.py --sizes=1000,10000 --dims=64 \
      --out=/tmp/cost.json                        # a quick look

The paper's claim: assessing one sample against n reference samples costs
O(n) with KNN, O(log n) with LSH + KNN and O(1) with LSH-only. Here m = 1,000
fake samples (--queries) are scored against a `metrics.Reference` of n real
samples, n from 1,000 to 200,000, at d = 64 and 2,048 (data:
`mixtures.latent_pair`). Every cell (a method at an (n, d)) runs in its own
process and times:

  reference   the first call's extra time over a query: the real side's
              one-time work (exact KNN: every real point's k-NN radii, an
              n x n pass; LSH-only: projections, width and sorted tables;
              LSH + KNN: projections, width search and candidate radii);
  query       the best of 3 further calls, per evaluated sample (µs): what
              scoring a fake set costs once the reference exists. Exact KNN
              computes its four metrics (k = 3, density k = 5), the LSH
              methods precision and recall;
  faiss       the same four numbers from an exact faiss-cpu implementation
              (`_faiss_knn.FaissReference`: the reference is its radii,
              from a flat index search of the real set against itself);
              run only where faiss-cpu is installed (pip install -e
              .[bench]);
  GEMM floor  the float32 products exact KNN's definition implies, at
              numpy's best matrix-product rate measured in that cell
              (`_faiss_knn.gemm_rate`): per evaluated sample its row of the
              fake x real and fake x fake products, (n + m) d multiply-adds;
              for the reference the real x real product, n^2 d (ours reads
              each pair of real blocks once: half of it). "exact % of floor"
              is floor / exact time per sample;
  precision   LSH-only only: hashing the m samples and looking their buckets
              up in the real tables, i.e. precision alone, the quantity the
              claim is about (recall reads every real point, so it grows
              with n for any method);
  peak GB     the cell's peak resident memory beyond its inputs.

Compilation is left out: each cell first runs once on a set of the same
padded shapes. Exact KNN's reference pass is O(n^2 d); where n^2 d exceeds
--exact_max_work it is not run (it would take an hour and more here) and the
reference gets approximate radii instead (each the median k-NN radius of a
20,000-point subsample): the query's work does not depend on the radii's
values, so its time stands, but its metric values are not reported.

Cells are kept in the --out JSON file (written atomically); a rerun skips
finished cells, so an interrupted run resumes. `--table` prints the table of
what is there without running anything.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

from absl import app
from absl import flags

_HERE = os.path.dirname(os.path.abspath(__file__))
_SIZES = flags.DEFINE_list(
    "sizes", ["1000", "2000", "5000", "10000", "20000", "50000", "100000",
              "200000"], "reference sizes n")
_DIMS = flags.DEFINE_list("dims", ["64", "2048"], "embedding sizes")
_QUERIES = flags.DEFINE_integer("queries", 1000, "evaluated samples m")
_EXACT_MAX_WORK = flags.DEFINE_float(
    "exact_max_work", 5.2e12, "largest n^2 d for which exact KNN's reference "
    "radii are computed (50,000 points at d = 2,048)")
_OUT = flags.DEFINE_string("out", os.path.join(_HERE, "results",
                                               "cost_per_sample.json"),
                           "results file (resumed)")
_TABLE = flags.DEFINE_bool("table", False, "only print the saved table")
_CELL = flags.DEFINE_string("cell", None, "internal: method,n,d to run")

sys.path.insert(0, _HERE)
import _cells  # pylint: disable=g-import-not-at-top,wrong-import-position
import _faiss_knn  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import report  # pylint: disable=g-import-not-at-top,wrong-import-position

METHODS = ("exact", "faiss", "lsh_knn", "lsh")
NAMES = {"exact": "exact KNN", "faiss": "faiss", "lsh_knn": "LSH+KNN",
         "lsh": "LSH-only"}
REPEATS = 3
SUBSAMPLE = 20000


def _approximate_knn(real, max_k: int = 5):
  """A KNNReference whose radii are not computed: every real point gets the
  median k-NN radius of a random subsample (its query costs the same)."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from lsh_gan.metrics import knn  # pylint: disable=g-import-not-at-top
  idx = np.random.default_rng(0).choice(real.shape[0], SUBSAMPLE,
                                        replace=False)
  sub = knn.KNNReference(real[np.sort(idx)], max_k=max_k)
  ref = knn.KNNReference.__new__(knn.KNNReference)
  ref.max_k, ref.fixed_block = max_k, None
  ref.centre = jnp.mean(jnp.asarray(real), axis=0)
  ref.points = knn._Points(real, ref.centre, knn.block_size(*real.shape))  # pylint: disable=protected-access
  median = jnp.asarray(np.median(sub.nearest_sq, axis=0), jnp.float32)
  ref.nearest = [jnp.tile(median, (ref.points.block, 1))] * len(
      ref.points.blocks)
  ref._nearest_host = None  # pylint: disable=protected-access
  return ref


def _best_of(fn, repeats: int = REPEATS):
  best, out = float("inf"), None
  for _ in range(repeats):
    start = time.perf_counter()
    out = fn()
    best = min(best, time.perf_counter() - start)
  return best, out


def run_cell(method: str, n: int, dim: int, queries: int,
             exact_max_work: float) -> dict:
  """Times one method at one (n, d); returns its numbers."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import mixtures  # pylint: disable=g-import-not-at-top
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  from lsh_gan.metrics import _lsh  # pylint: disable=g-import-not-at-top
  from lsh_gan.metrics import lsh  # pylint: disable=g-import-not-at-top
  from lsh_gan.metrics import knn  # pylint: disable=g-import-not-at-top
  if method == "floor":
    rate = _faiss_knn.gemm_rate(dim)
    return {"query_us_per_sample":
                _faiss_knn.pair_flop(1, n + queries, dim) / rate * 1e6,
            "reference_s": _faiss_knn.pair_flop(n, n, dim) / rate,
            "gflops": rate / 1e9}
  real, fake = mixtures.latent_pair(n, dim, seed=0, num_fake=queries)
  if method == "faiss":
    return _faiss_cell(real, fake)
  approximate = method == "exact" and n * n * dim > exact_max_work
  score = {
      "exact": lambda ref: ref.knn_metrics(fake, k=3, density_k=5),
      "lsh_knn": lambda ref: ref.lsh_knn_precision_recall(fake),
      "lsh": lambda ref: ref.lsh_precision_recall(fake),
  }[method]
  # Warm-up: shapes follow n's size class (n - 1 shares it).
  score(metrics.Reference(real[:2000] if method == "exact" else real[:-1]))
  base = _cells.current_rss_gb()
  ref = metrics.Reference(real)
  if approximate:
    ref._knn = _approximate_knn(real)  # pylint: disable=protected-access
  start = time.perf_counter()
  score(ref)
  first = time.perf_counter() - start
  query, out = _best_of(lambda: score(ref))
  cell = {"reference_s": None if approximate else max(0.0, first - query),
          "query_s": query, "query_us_per_sample": query / queries * 1e6,
          "approximate_radii": approximate}
  if method == "lsh":
    # Precision alone: the real side is the one `score` built and cached.
    # pylint: disable=protected-access
    family = ref._family(lsh.NUM_TABLES, lsh.NUM_HASHES, 0)
    tables, calibration = ref._lsh_side(family, ref._lsh_width(family, 0), 0,
                                        1, "calibrated")
    values = ref.fake_set(fake).values
    precision = lambda: _lsh.covered_fraction(
        tables.hits(family.project(values, ref.centre), 1), "calibrated",
        lsh.NUM_TABLES, calibration)
    # pylint: enable=protected-access
    precision()
    seconds, value = _best_of(precision)
    cell["precision_us_per_sample"] = seconds / queries * 1e6
    assert value == out["precision"], (value, out)
  cell["peak_gb"] = max(0.0, _cells.peak_rss_gb() - base)
  if not approximate:
    cell.update({k: float(v) for k, v in out.items()})
  return cell


def _faiss_cell(real, fake) -> dict:
  """The faiss baseline: its reference built once, then scored."""
  _faiss_knn.FaissReference(real[:2000]).score(fake)  # loads, allocates
  base = _cells.current_rss_gb()
  start = time.perf_counter()
  ref = _faiss_knn.FaissReference(real)
  reference = time.perf_counter() - start
  query, out = _best_of(lambda: ref.score(fake, k=3, density_k=5))
  return {"reference_s": reference, "query_s": query,
          "query_us_per_sample": query / fake.shape[0] * 1e6,
          "peak_gb": max(0.0, _cells.peak_rss_gb() - base),
          **{k: float(v) for k, v in out.items()}}


def _show(cell, key="query_us_per_sample", digits=1):
  if cell is None:
    return "—"
  if "error" in cell:
    return cell["error"]
  value = cell.get(key)
  if value is None:
    return "not run"
  return f"{value:,.{digits}f}"


def table(results, sizes, dims) -> str:
  """Markdown: µs per evaluated sample (query), reference s, peak GB."""
  head = ["n", "d"]
  for m in METHODS:
    head += [f"{NAMES[m]} µs/sample", f"{NAMES[m]} reference s",
             f"{NAMES[m]} GB"]
  head.insert(head.index("LSH-only reference s"),
              "LSH-only precision µs/sample")
  head += ["GEMM floor µs/sample", "GEMM floor reference s",
           "exact % of floor"]
  lines = []
  for dim in dims:
    for n in sizes:
      cells = {m: results.get(f"{m},{n},{dim}")
               for m in (*METHODS, "floor")}
      row = [f"{int(n):,}", str(dim)]
      for m in METHODS:
        row.append(_show(cells[m]))
        if m == "lsh":
          row.append(_show(cells[m], "precision_us_per_sample"))
        row.append(_show(cells[m], "reference_s", 2))
        row.append(_show(cells[m], "peak_gb", 2))
      row.append(_show(cells["floor"]))
      row.append(_show(cells["floor"], "reference_s", 2))
      share = "—"
      if all(c is not None and "error" not in c
             for c in (cells["floor"], cells["exact"])):
        share = (f"{100 * cells['floor']['query_us_per_sample'] / cells['exact']['query_us_per_sample']:.0f}%")
      row.append(share)
      lines.append(row)
  return report.markdown_table(head, lines)


def growth(results, sizes, dims) -> str:
  """Markdown: the exponent a of time ~ n^a per evaluated sample, between
  the smallest and the largest n at or above 10,000 (1 is O(n), 0 is O(1);
  O(log n) reads as a small a that shrinks as n grows)."""
  series = [(m, "query_us_per_sample", NAMES[m]) for m in METHODS]
  series.append(("lsh", "precision_us_per_sample", "LSH-only precision"))
  lines = []
  big = [int(n) for n in sizes if int(n) >= 10000]
  for dim in dims:
    cells = []
    for method, key, _ in series:
      ends = [results.get(f"{method},{n},{dim}", {}).get(key)
              for n in (big[0], big[-1])] if len(big) > 1 else [None]
      cells.append("—" if None in ends else
                   f"{math.log(ends[1] / ends[0]) / math.log(big[-1] / big[0]):.2f}")
    lines.append([str(dim), *cells])
  return report.markdown_table(["d", *(name for *_, name in series)], lines)


def main(argv):
  del argv
  if _CELL.value:
    method, n, dim = _CELL.value.split(",")
    print(json.dumps(run_cell(method, int(n), int(dim), _QUERIES.value,
                              _EXACT_MAX_WORK.value)))
    return
  methods = (*METHODS, "floor")
  if not _faiss_knn.available():
    # Left out, not recorded as skipped: installing faiss later fills it in.
    methods = tuple(m for m in methods if m != "faiss")
  keys = [f"{method},{n},{dim}" for dim in _DIMS.value
          for n in _SIZES.value for method in methods]

  def too_big(key):
    method, n, dim = key.split(",")
    if method == "faiss" and int(n) ** 2 * int(dim) > _EXACT_MAX_WORK.value:
      return "not run (n² d: an hour and more)"
    return None

  results = (_cells.load(_OUT.value) if _TABLE.value else
             _cells.run(__file__, keys, _OUT.value, skip=too_big,
                        args=[f"--queries={_QUERIES.value}",
                              f"--exact_max_work={_EXACT_MAX_WORK.value}"]))
  print(table(results, _SIZES.value, _DIMS.value))
  if "faiss" not in methods:
    print("\nfaiss columns not run: faiss-cpu is not installed "
          "(pip install -e .[bench]).")
  print("\nGrowth of the time per evaluated sample, n^a:\n")
  print(growth(results, _SIZES.value, _DIMS.value))


if __name__ == "__main__":
  app.run(main)
