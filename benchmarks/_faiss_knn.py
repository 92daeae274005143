"""An exact faiss-cpu baseline for the four KNN metrics, and the GEMM floor.

faiss is a benchmark dependency only (`pip install -e .[bench]`), never one of
the library's. `FaissReference` computes what `metrics.KNNReference` does,
with the same definitions (the `lsh_gan.metrics.knn` module doc: k-NN radii
excluding the point itself, closed balls, <=):

  radii   `faiss.IndexFlatL2` searches every set against itself for its
          k + 1 nearest (the first is the point itself);
  cross   the four cover tests over the fake x real pairs, by whichever of
          two exact ways is faster at the embedding size (measured on this
          machine: range searches below d = 512, distance blocks above):
          - range: each real ball becomes a point of an augmented index,
            [r, sqrt(C - rho_r^2)] with C = max rho^2, so that
            |[g, 0] - [r, sqrt(C - rho_r^2)]|^2 = d(g, r)^2 + C - rho_r^2
            <= C exactly when g is in r's ball: one faiss range search per
            direction (fake in real balls, real in fake balls) finds the
            candidate pairs (with a slack of 1e-4 C for rounding), whose
            exact distances then decide;
          - blocks: numpy float32 products of 2,048-row blocks (BLAS), the
            squared distances expanded as in our code, and numpy
            comparisons and reductions.

On tie-free data both ways give exactly our numbers; `metrics_bench.py`
prints any difference.

The GEMM floor: the time numpy's float32 matrix product (BLAS, all cores)
needs for the work's multiply-adds, at the best rate `gemm_rate(d)` measured
on 1,024- and 2,048-square products of depth d in the same process.
"""

from __future__ import annotations

import importlib.util
import time

import numpy as np

BLOCK = 2048  # rows and columns per distance block
RANGE_MAX_DIM = 512  # range searches below this d, distance blocks above
SLACK = 1e-4  # relative slack of the range searches (pairs are re-checked)


def available() -> bool:
  """Whether faiss-cpu is installed."""
  return importlib.util.find_spec("faiss") is not None


def gemm_rate(dim: int, repeats: int = 5) -> float:
  """Best float32 FLOP/s of numpy on s x s x dim products, s = 1,024 or
  2,048 (at small d a product's output, not its arithmetic, limits it: the
  faster size gives the stricter floor)."""
  rng = np.random.default_rng(0)
  best_rate = 0.0
  for size in (1024, 2048):
    a = rng.standard_normal((size, dim), np.float32)
    b = rng.standard_normal((size, dim), np.float32)
    # Enough products per timing to last about 50 ms at 200 GFLOP/s.
    inner = max(1, int(1e10 // pair_flop(size, size, dim)))
    out = np.empty((size, size), np.float32)
    np.matmul(a, b.T, out=out)
    for _ in range(repeats):
      start = time.perf_counter()
      for _ in range(inner):
        np.matmul(a, b.T, out=out)
      seconds = time.perf_counter() - start
      best_rate = max(best_rate, pair_flop(size, size, dim) * inner / seconds)
  return best_rate


def floor_cell(n: int, dim: int) -> dict:
  """A benchmark's GEMM-floor cell: the seconds of the three n x n x dim
  float32 products (R x R, G x G, G x R) at numpy's best rate here."""
  rate = gemm_rate(dim)
  return {"seconds": 3 * pair_flop(n, n, dim) / rate, "gflops": rate / 1e9}


def pair_flop(rows: int, cols: int, dim: int) -> float:
  """Multiply-adds (as FLOP) of one rows x cols x dim product."""
  return 2.0 * rows * cols * dim


def _radii_sq(x: np.ndarray, max_k: int) -> np.ndarray:
  """(n, max_k) ascending squared distances to the max_k nearest others."""
  import faiss  # pylint: disable=g-import-not-at-top
  index = faiss.IndexFlatL2(x.shape[1])
  index.add(x)
  dist, _ = index.search(x, max_k + 1)
  return dist[:, 1:]  # the first is the point itself


def _in_balls(queries, centres, wanted_rho2):
  """For each wanted radius vector (squared, one per centre): the exact
  (query, centre) pairs with d^2 <= rho^2, found by one range search of the
  queries in the centres' balls of the largest wanted radius."""
  import faiss  # pylint: disable=g-import-not-at-top
  rho2 = np.maximum.reduce(wanted_rho2).astype(np.float64)
  big = float(rho2.max())
  lift = np.sqrt(np.maximum(big - rho2, 0.0)).astype(np.float32)[:, None]
  index = faiss.IndexFlatL2(centres.shape[1] + 1)
  index.add(np.ascontiguousarray(np.concatenate([centres, lift], axis=1)))
  lifted = np.concatenate(
      [queries, np.zeros((queries.shape[0], 1), np.float32)], axis=1)
  lims, _, found = index.range_search(np.ascontiguousarray(lifted),
                                      big * (1 + SLACK) + 1e-30)
  query = np.repeat(np.arange(queries.shape[0]), np.diff(lims.astype(np.int64)))
  diff = queries[query] - centres[found]
  d2 = np.einsum("ij,ij->i", diff, diff)
  return [(query[d2 <= r[found]], found[d2 <= r[found]]) for r in wanted_rho2]


def _cross_range(fake, real, fake_rho2, real_rho2_pr, real_rho2_dc):
  (pr_fake, _), (dc_fake, dc_real) = _in_balls(
      fake, real, [real_rho2_pr, real_rho2_dc])
  ((recalled, _),) = _in_balls(real, fake, [fake_rho2])
  return (np.unique(pr_fake).size, np.unique(recalled).size, dc_fake.size,
          np.unique(dc_real).size)


def _cross_blocks(fake, real, fake_rho2, real_rho2_pr, real_rho2_dc):
  fake_sq = np.einsum("ij,ij->i", fake, fake)
  real_sq = np.einsum("ij,ij->i", real, real)
  precise = np.zeros(fake.shape[0], bool)
  recalled = np.zeros(real.shape[0], bool)
  covered = np.zeros(real.shape[0], bool)
  count = 0
  for i in range(0, fake.shape[0], BLOCK):
    f = slice(i, i + BLOCK)
    for j in range(0, real.shape[0], BLOCK):
      r = slice(j, j + BLOCK)
      d2 = fake[f] @ real[r].T
      d2 *= -2.0
      d2 += fake_sq[f, None]
      d2 += real_sq[None, r]
      precise[f] |= (d2 <= real_rho2_pr[None, r]).any(axis=1)
      inside = d2 <= real_rho2_dc[None, r]
      count += int(np.count_nonzero(inside))
      covered[r] |= inside.any(axis=0)
      recalled[r] |= (d2 <= fake_rho2[f, None]).any(axis=0)
  return (int(precise.sum()), int(recalled.sum()), count,
          int(covered.sum()))


class FaissReference:
  """The real side (centre, radii) once; `score` as `KNNReference.score`."""

  def __init__(self, real, max_k: int = 5):
    real = np.asarray(real, np.float32)
    # Centred on the real mean, as ours: smaller norms, less cancellation.
    self.centre = real.mean(axis=0, dtype=np.float64).astype(np.float32)
    self.real = np.ascontiguousarray(real - self.centre)
    self.nearest_sq = _radii_sq(self.real, max_k)

  def score(self, fake, *, k: int = 3, density_k: int = 5) -> dict:
    fake = np.ascontiguousarray(np.asarray(fake, np.float32) - self.centre)
    fake_rho2 = _radii_sq(fake, k)[:, k - 1]
    cross = (_cross_range if self.real.shape[1] < RANGE_MAX_DIM else
             _cross_blocks)
    precise, recalled, count, covered = cross(
        fake, self.real, fake_rho2, self.nearest_sq[:, k - 1],
        self.nearest_sq[:, density_k - 1])
    m, n = fake.shape[0], self.real.shape[0]
    return {"precision": precise / m, "recall": recalled / n,
            "density": count / (density_k * m), "coverage": covered / n}
