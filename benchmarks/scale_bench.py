"""A million real x a million fake embeddings, in bounded memory.

Run from the repository root:

  python benchmarks/scale_bench.py                 # about 8 min on 2 cores
  python benchmarks/scale_bench.py --sizes=100000 --dims=64 \
      --out=/tmp/scale.json                         # a quick look

The data: n real and n fake embeddings of dimension d, written in chunks of
65,536 rows to `.npy` files in --data_dir (made once, reused): the real set
a mixture of 10 Gaussian clusters (unit spread, centres about 3 times as
far apart as two points of one cluster), the fake set the same mixture without its last two clusters, so
the fake set covers 80% of the real one (recall about 0.8) and every fake
point lies in the real support (precision about 1).

Each cell (a method at an (n, d)) runs in its own process, reading the
files as memory maps, and records:

  seconds     wall time of the whole job, from the files to the numbers
              (compilation included: what a user waits for);
  peak GB     the peak of the process's anonymous resident memory beyond
              what it held before the job (sampled every 5 ms from
              /proc/self/status: the memory the job allocates, leaving out
              the pages of memory-mapped files, which the system can drop
              at will); "peak GB with files" is the kernel's peak resident
              size, file pages included;
  devices     the JAX devices the metrics ran on.

Methods:
  LSH-only, streamed    `Reference.from_batches` and `fake_from_batches` on
                        slices of the memory maps (the bounded path), then
                        `lsh_precision_recall`;
  LSH-only, in memory   both files read into arrays, then
                        `metrics.lsh_precision_recall` (the one-call path);
  FID, streamed         `Reference.from_batches` / `fake_from_batches`, then
                        `frechet_distance` (streaming sums);
  exact KNN at the GEMM floor   not run: the time the products exact KNN
                        needs (n^2 d / 2 + n^2 d / 2 + n^2 d multiply-adds:
                        both sets' radii, with symmetry, and the cross
                        pass) would take at numpy's float32 GEMM rate
                        measured in the same run; the least any exact
                        k-NN implementation (prdc, faiss, ours) could take
                        here;
  faiss exact KNN       measured at n = --faiss_n (its flat index: the
                        radii of both sets and the cross search) and scaled
                        by (n / faiss_n)^2 to n (its work is quadratic).

Cells are kept in the --out JSON file (written atomically); a rerun skips
finished cells, so an interrupted run resumes. `--table` prints the table of
what is there without running anything.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time

from absl import app
from absl import flags

_HERE = os.path.dirname(os.path.abspath(__file__))
_SIZES = flags.DEFINE_list("sizes", ["1000000"], "set sizes n (each side)")
_DIMS = flags.DEFINE_list("dims", ["64", "256"], "embedding sizes d")
_METHODS = flags.DEFINE_list(
    "methods", ["lsh_stream", "lsh_memory", "fid_stream", "floor", "faiss"],
    "methods to run")
_FAISS_N = flags.DEFINE_integer("faiss_n", 50000,
                                "size faiss's exact KNN is measured at")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", os.path.join(tempfile.gettempdir(), "lsh_gan_scale_data"),
    "where the .npy inputs are written (once) and read")
_OUT = flags.DEFINE_string("out", os.path.join(_HERE, "results",
                                               "scale_bench.json"),
                           "results file (resumed)")
_TABLE = flags.DEFINE_bool("table", False, "only print the saved table")
_CELL = flags.DEFINE_string("cell", None, "internal: method,n,d to run")

sys.path.insert(0, _HERE)
import _cells  # pylint: disable=g-import-not-at-top,wrong-import-position
import _faiss_knn  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import report  # pylint: disable=g-import-not-at-top,wrong-import-position

NAMES = {"lsh_stream": "LSH-only, streamed",
         "lsh_memory": "LSH-only, in memory",
         "fid_stream": "FID, streamed",
         "floor": "exact KNN at the GEMM floor (not run)",
         "faiss": "faiss exact KNN (scaled from --faiss_n)"}
CHUNK = 1 << 16  # rows per chunk written and per batch read
CLUSTERS = 10
FAKE_CLUSTERS = 8


def data_files(n: int, dim: int, folder: str) -> tuple[str, str]:
  """(real, fake) .npy paths, written in chunks the first time."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  os.makedirs(folder, exist_ok=True)
  paths = []
  for side, clusters in (("real", CLUSTERS), ("fake", FAKE_CLUSTERS)):
    path = os.path.join(folder, f"{side}_{n}_{dim}.npy")
    paths.append(path)
    if os.path.exists(path):
      continue
    # Centres 3 times as far apart as two points of one cluster.
    centres = np.random.default_rng(dim).normal(scale=3.0,
                                                size=(CLUSTERS, dim))
    partial = path + f".{os.getpid()}.partial.npy"
    out = np.lib.format.open_memmap(partial, "w+", np.float32, (n, dim))
    for i, start in enumerate(range(0, n, CHUNK)):
      rng = np.random.default_rng([dim, n, i, clusters])
      rows = min(CHUNK, n - start)
      label = rng.integers(clusters, size=rows)
      out[start:start + rows] = centres[label] + rng.standard_normal(
          (rows, dim))
    out.flush()
    del out
    os.replace(partial, path)  # whole files only, even if two runs race
  return paths[0], paths[1]


class _AnonPeak:
  """Samples the process's anonymous resident memory (RssAnon) in a thread."""

  def __init__(self, interval: float = 0.005):
    self.interval, self.peak, self._stop = interval, 0.0, threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)

  @staticmethod
  def now_gb() -> float:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("RssAnon:"):
          return int(line.split()[1]) / 2 ** 20
    return 0.0

  def _run(self):
    while not self._stop.is_set():
      self.peak = max(self.peak, self.now_gb())
      time.sleep(self.interval)

  def __enter__(self):
    self.peak = self.now_gb()
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()
    self.peak = max(self.peak, self.now_gb())


def _batches(path: str):
  import numpy as np  # pylint: disable=g-import-not-at-top
  x = np.load(path, mmap_mode="r")
  return (x[start:start + CHUNK] for start in range(0, x.shape[0], CHUNK))


def run_cell(method: str, n: int, dim: int, folder: str,
             faiss_n: int) -> dict:
  """Times one method at one (n, d); returns its numbers."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  if method == "floor":
    rate = _faiss_knn.gemm_rate(dim)
    flop = 2 * _faiss_knn.pair_flop(n, n, dim)  # two half radii + cross
    return {"seconds": flop / rate, "gflops": rate / 1e9, "estimate": True}
  if method == "faiss":
    real_path, fake_path = data_files(faiss_n, dim, folder)
    real, fake = np.load(real_path), np.load(fake_path)
    start = time.perf_counter()
    _faiss_knn.FaissReference(real).score(fake, k=3, density_k=5)
    seconds = time.perf_counter() - start
    return {"seconds": seconds * (n / faiss_n) ** 2, "measured_n": faiss_n,
            "measured_seconds": seconds, "estimate": True}
  real_path, fake_path = data_files(n, dim, folder)
  base = _AnonPeak.now_gb()
  with _AnonPeak() as peak:
    start = time.perf_counter()
    if method == "lsh_memory":
      out = metrics.lsh_precision_recall(np.load(real_path),
                                         np.load(fake_path))
    else:
      ref = metrics.Reference.from_batches(_batches(real_path))
      fake = ref.fake_from_batches(_batches(fake_path))
      out = (ref.lsh_precision_recall(fake) if method == "lsh_stream" else
             ref.frechet_distance(fake))
    seconds = time.perf_counter() - start
  return {"seconds": seconds, "peak_gb": peak.peak - base,
          "peak_gb_with_files": _cells.peak_rss_gb(),
          "devices": jax.device_count(),
          **{k: float(v) for k, v in out.items()}}


def table(results, sizes, dims, methods) -> str:
  """Markdown: n, d, method, seconds, peak GB, devices and the numbers."""
  lines = []
  for dim in dims:
    for n in sizes:
      for method in methods:
        cell = results.get(f"{method},{n},{dim}")
        if cell is None:
          continue
        if "error" in cell:
          lines.append([f"{int(n):,}", str(dim), NAMES[method],
                        cell["error"], "", "", "", ""])
          continue
        value = ", ".join(f"{k} {cell[k]:.3f}" for k in
                          ("precision", "recall", "fid") if k in cell)
        gb = lambda key: (f"{cell[key]:.2f}" if key in cell else "—")  # pylint: disable=cell-var-from-loop
        lines.append([f"{int(n):,}", str(dim), NAMES[method],
                      f"{cell['seconds']:,.0f}", gb("peak_gb"),
                      gb("peak_gb_with_files"),
                      str(cell.get("devices", "—")), value or "—"])
  return report.markdown_table(
      ["n", "d", "method", "seconds", "peak GB", "peak GB with files",
       "devices", "result"], lines)


def main(argv):
  del argv
  if _CELL.value:
    method, n, dim = _CELL.value.split(",")
    print(json.dumps(run_cell(method, int(n), int(dim), _DATA_DIR.value,
                              _FAISS_N.value)))
    return
  keys = [f"{m},{n},{d}" for d in _DIMS.value for n in _SIZES.value
          for m in _METHODS.value]
  if not _TABLE.value:
    _cells.run(__file__, keys, _OUT.value,
               args=[f"--data_dir={_DATA_DIR.value}",
                     f"--faiss_n={_FAISS_N.value}"])
  print(table(_cells.load(_OUT.value), _SIZES.value, _DIMS.value,
              _METHODS.value))


if __name__ == "__main__":
  app.run(main)
