"""Exact k-nearest-neighbour precision, recall, density and coverage, blocked.

R = real embeddings, G = fake embeddings, d Euclidean, NND_k(x, S) the distance
from x to its k-th nearest neighbour in S excluding x itself (by index).

  precision = 1/|G| sum_g 1[exists r: d(g, r) <= NND_k(r, R)]
  recall    = 1/|R| sum_r 1[exists g: d(r, g) <= NND_k(g, G)]
  density   = 1/(k|G|) sum_g sum_r 1[d(g, r) <= NND_k(r, R)]
  coverage  = 1/|R| sum_r 1[min_g d(r, g) <= NND_k(r, R)]

Comparisons use <= as the official improved precision/recall code does; the
`prdc` package uses <. They agree unless a distance equals a radius exactly,
which happens with duplicate points: a set where every point has a copy has
k=1 radii of 0, and there these metrics count a copy inside its twin's ball
while prdc does not (identical such sets: precision 1 here, near 0 in prdc).
On identical tie-free sets both give precision = recall = coverage = 1 and
density = (k + 1) / k.

Embeddings of any scale give the same numbers: a set outside float32's
comfortable range is divided by a power of two first (see `_checks`).

Nothing of size n x n is ever built: distances are computed in square
blocks (a power of two of rows and columns, 128 to 2,048 by n and d, padded,
with the valid count passed as data, so a new n compiles at most a handful of
kernels), as squared distances |a|^2 + |b|^2 - 2 a.b in float32
with full matmul precision, on data centred on the real set's mean (which
keeps the norms, and so the cancellation error, small). A squared distance
below the expansion's float32 resolution, (d + 2) * eps * (|a|^2 + |b|^2),
is set to 0, so exact duplicates are at distance 0 rather than at rounding
noise (about 3e-4 of the norm). Each pass
over a pair of sets of n points is two n x n x d products in total:
- the radii of R and of G, each from the blocks on and above the diagonal of
  its own distance matrix: one product serves its rows' and its columns'
  k nearest (half a product per set). The k smallest of a block's row are
  found among the k groups of 16 columns with the smallest minima (they hold
  every one of the k smallest), so the selection reads each distance once and
  sorts only k * 16 of them;
- one G x R pass that yields all four metrics: per fake point the minimum of
  d^2 - rho_R^2 (precision) and the count of d^2 <= rho_R^2 (density), per real
  point the minimum d^2 (coverage) and the minimum of d^2 - rho_G^2 (recall).
Each block pair is one jitted call that also merges its result into the
running minima and counts: no work between the products but their own.

References:
  T. Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing
  Generative Models", NeurIPS 2019, https://arxiv.org/abs/1904.06991
  M. F. Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative
  Models", ICML 2020, https://arxiv.org/abs/2002.09797
"""

from __future__ import annotations

import collections.abc

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.metrics import _checks

BLOCK = 1024  # rows and columns per distance block, below LARGE_DIM
MAX_BLOCK = 2048  # ... at LARGE_DIM and above (where products run at the
# full GEMM rate only at this size; below it the selection dominates)
LARGE_DIM = 512
MIN_BLOCK = 128
GROUP = 16  # columns per group in the k-smallest selection


def block_size(n: int, dim: int) -> int:
  """The automatic block for n points of dimension dim: the smallest power of
  two holding n, at least MIN_BLOCK and at most BLOCK (MAX_BLOCK at
  d >= LARGE_DIM). Powers of two keep the kernels compiled to a handful,
  whatever n."""
  cap = MAX_BLOCK if dim >= LARGE_DIM else BLOCK
  return int(min(cap, max(MIN_BLOCK, 1 << max(0, n - 1).bit_length())))


def times_power_of_two(x: jax.Array, exponent: int) -> jax.Array:
  """x * 2^exponent, exact for normal results (the factor in two halves, so
  each stays a normal float32 for |exponent| up to 2 * 126)."""
  half = exponent // 2
  return x * np.float32(2.0 ** half) * np.float32(2.0 ** (exponent - half))


def expand_sq_dists(norms, dots, dim: int, noise=None):
  """|a|^2 + |b|^2 - 2 a.b, with values below float32 resolution set to 0.

  The expansion cannot resolve squared distances under about
  (dim + 2) * eps * (|a|^2 + |b|^2); calling those 0 puts exact duplicates at
  distance 0 instead of at rounding noise. `noise`, if given, adds to
  |a|^2 + |b|^2 the magnitude of any other rounding in `dots` or `norms`
  (e.g. from points that entered a product uncentred), so the threshold is
  relative to the scale the data were computed at.
  """
  d2 = norms - 2.0 * dots
  resolution = (dim + 2) * float(np.finfo(np.float32).eps)
  floor = norms if noise is None else norms + noise
  return jnp.where(d2 <= resolution * floor, 0.0, d2)


def _block_sq_dists(rows, rows_sq, rows_pad, cols, cols_sq, cols_pad):
  """Squared distances of two blocks; +inf where either point is padding.

  Every kernel below computes its distances here, in the same orientation
  for the same pair of sets, so a distance and a radius compare exactly
  when they are the same pair (identical sets: boundary points stay on the
  boundary)."""
  dots = jnp.dot(rows, cols.T, precision=jax.lax.Precision.HIGHEST)
  d2 = expand_sq_dists(rows_sq[:, None] + cols_sq[None, :], dots,
                       rows.shape[1])
  return d2 + rows_pad[:, None] + cols_pad[None, :]


def _merge_smallest(best: jax.Array, values: jax.Array) -> jax.Array:
  """The k = best.shape[1] smallest of each row of [best, values], ascending.

  The k smallest of a row lie in the k groups of GROUP consecutive columns
  whose minima are smallest (each group holding one of them has its minimum
  at or below the k-th smallest, and at most k groups can), so only those
  k * GROUP values are sorted.
  """
  rows, cols = values.shape
  k = best.shape[1]
  groups = cols // GROUP
  if cols % GROUP or groups < 4 * k:
    candidates = values
  else:
    grouped = values.reshape(rows, groups, GROUP)
    _, chosen = jax.lax.top_k(-jnp.min(grouped, axis=2), k)
    candidates = jnp.take_along_axis(grouped, chosen[:, :, None],
                                     axis=1).reshape(rows, k * GROUP)
  neg_smallest, _ = jax.lax.top_k(-jnp.concatenate([best, candidates], 1), k)
  return -neg_smallest


def _merge_smallest_of_columns(best: jax.Array, values: jax.Array):
  """`_merge_smallest` of values.T (without transposing the block)."""
  rows, cols = values.shape
  k = best.shape[1]
  groups = rows // GROUP
  if rows % GROUP or groups < 4 * k:
    return _merge_smallest(best, values.T)
  grouped = values.reshape(groups, GROUP, cols)
  _, chosen = jax.lax.top_k(-jnp.min(grouped, axis=1).T, k)  # (cols, k)
  candidates = grouped[chosen, :, jnp.arange(cols)[:, None]]  # (cols, k, G)
  neg_smallest, _ = jax.lax.top_k(
      -jnp.concatenate([best, candidates.reshape(cols, k * GROUP)], 1), k)
  return -neg_smallest


@jax.jit
def _radius_diagonal(best, rows, rows_sq, rows_pad):
  """Merges a block's distances to itself (self excluded) into its best."""
  d2 = _block_sq_dists(rows, rows_sq, rows_pad, rows, rows_sq, rows_pad)
  d2 = jnp.where(jnp.eye(rows.shape[0], dtype=bool), jnp.inf, d2)
  return _merge_smallest(best, d2)


@jax.jit
def _radius_pair(best_rows, best_cols, rows, rows_sq, rows_pad, cols, cols_sq,
                 cols_pad):
  """One product of two different blocks of a set, merged into both."""
  d2 = _block_sq_dists(rows, rows_sq, rows_pad, cols, cols_sq, cols_pad)
  return (_merge_smallest(best_rows, d2),
          _merge_smallest_of_columns(best_cols, d2))


def _column(best, index):
  return jax.lax.dynamic_index_in_dim(best, index, axis=1, keepdims=False)


@jax.jit
def _cross_pair(fake_acc, real_acc, fake, fake_sq, fake_pad, fake_best, real,
                real_sq, real_pad, real_best, k_index, density_index):
  """Merges one fake x real block into the running statistics (module doc).

  fake_acc = (min of d^2 - rho_R^2, count of d^2 <= rho_R^2) per fake point;
  real_acc = (min d^2, min of d^2 - rho_G^2) per real point. Radii of padding
  rows read 0, so padding (at +inf) never wins a minimum or passes a test.
  """
  d2 = _block_sq_dists(fake, fake_sq, fake_pad, real, real_sq, real_pad)
  valid = lambda rho2, pad: jnp.where(pad == 0, rho2, 0.0)
  fake_rho2 = valid(_column(fake_best, k_index), fake_pad)
  real_rho2_pr = valid(_column(real_best, k_index), real_pad)
  real_rho2_dc = valid(_column(real_best, density_index), real_pad)
  fake_margin, fake_count = fake_acc
  real_min_d2, real_margin = real_acc
  return ((jnp.minimum(fake_margin,
                       jnp.min(d2 - real_rho2_pr[None, :], axis=1)),
           fake_count + jnp.sum(d2 <= real_rho2_dc[None, :], axis=1,
                                dtype=jnp.int32)),
          (jnp.minimum(real_min_d2, jnp.min(d2, axis=0)),
           jnp.minimum(real_margin,
                       jnp.min(d2 - fake_rho2[:, None], axis=0))))


@jax.jit
def _block_of(rows, num_valid):
  """A block's squared norms and padding (0 for its first num_valid rows,
  +inf after): fixed shapes, num_valid as data."""
  pad = jnp.where(jnp.arange(rows.shape[0]) < num_valid, 0.0, jnp.inf)
  return rows, jnp.sum(rows * rows, axis=1), pad


class _Points:
  """A centred point set as a list of equal blocks (rows, norms, padding).

  Centred and cut on the host, so a new n compiles nothing (the blocks'
  kernels see only the block shape). A set in a memory-mapped file
  (`Reference.from_batches`) is not read into memory: its blocks are cut
  from the file each time a pass asks for one (`_FileBlocks`).
  """

  def __init__(self, x: jax.Array, centre: jax.Array, block: int):
    self.n, self.dim = x.shape
    self.block = block
    if isinstance(x, np.memmap):
      self.blocks = _FileBlocks(x, np.asarray(centre, np.float32), block)
      return
    num_blocks = -(-self.n // block)
    padded = np.zeros((num_blocks * block, self.dim), np.float32)
    np.subtract(np.asarray(x, np.float32), np.asarray(centre, np.float32),
                out=padded[:self.n])
    self.blocks = [
        _block_of(padded[start:start + block],
                  np.int32(min(block, self.n - start)))
        for start in range(0, num_blocks * block, block)
    ]

  def rescaled(self, exponent: int) -> "_Points":
    """The same points times 2^exponent (their padding kept)."""
    out = object.__new__(_Points)
    out.n, out.dim, out.block = self.n, self.dim, self.block
    if isinstance(self.blocks, _FileBlocks):
      out.blocks = self.blocks.rescaled(exponent)
      return out
    out.blocks = [_rescaled_block(b, exponent) for b in self.blocks]
    return out


def _rescaled_block(block, exponent: int):
  x, sq, pad = block
  return (times_power_of_two(x, exponent),
          times_power_of_two(sq, 2 * exponent), pad)


class _FileBlocks(collections.abc.Sequence):
  """`_Points.blocks` of a memory-mapped set: block i is read, centred and
  padded when asked for (the same numbers as the in-memory blocks), so a
  pass holds a few blocks, never the set."""

  def __init__(self, x: np.memmap, centre: np.ndarray, block: int,
               exponent: int = 0):
    self.x, self.centre, self.block, self.exponent = x, centre, block, exponent

  def __len__(self) -> int:
    return -(-self.x.shape[0] // self.block)

  def __getitem__(self, i: int):
    if not 0 <= i < len(self):
      raise IndexError(i)
    start = i * self.block
    rows = np.zeros((self.block, self.x.shape[1]), np.float32)
    valid = min(self.block, self.x.shape[0] - start)
    np.subtract(self.x[start:start + valid], self.centre, out=rows[:valid])
    out = _block_of(rows, np.int32(valid))
    return _rescaled_block(out, self.exponent) if self.exponent else out

  def rescaled(self, exponent: int) -> "_FileBlocks":
    return _FileBlocks(self.x, self.centre, self.block,
                       self.exponent + exponent)


FILE_ROWS = 1 << 14  # rows per step of a pass over a memory-mapped set


def file_rows(x: np.memmap):
  """Yields (rows, number valid) of a memory-mapped set in blocks of
  FILE_ROWS rows (fewer for a smaller set), the last zero-padded: fixed
  shapes, and the file read one block at a time."""
  size = min(FILE_ROWS, 1 << max(0, x.shape[0] - 1).bit_length())
  for start in range(0, x.shape[0], size):
    rows = np.asarray(x[start:start + size])
    valid = rows.shape[0]
    if valid < size:
      rows = np.pad(rows, ((0, size - valid), (0, 0)))
    yield rows, np.int32(valid)


def nearest_sq_distances(points: _Points, k: int) -> list[jax.Array]:
  """Per block of `points`: (block, k) ascending squared distances of its
  rows to their k nearest others (by index; padding rows read +inf).

  Each pair of blocks is one product, on and above the diagonal only.
  """
  blocks = points.blocks
  best = [jnp.full((points.block, k), jnp.inf, jnp.float32)] * len(blocks)
  for i, block in enumerate(blocks):
    best[i] = _radius_diagonal(best[i], *block)
    for j in range(i + 1, len(blocks)):
      best[i], best[j] = _radius_pair(best[i], best[j], *block, *blocks[j])
  return best


def _host_rows(blocks: list[jax.Array], n: int) -> np.ndarray:
  """Per-block arrays joined on the host, padding dropped."""
  return np.concatenate([np.asarray(b) for b in blocks])[:n]


def _cross(fake: _Points, fake_best, real: _Points, real_best, k: int,
           density_k: int):
  """(fake margins, fake counts, real min d^2, real margins), on the host."""
  fake_acc = [(jnp.full((fake.block,), jnp.inf, jnp.float32),
               jnp.zeros((fake.block,), jnp.int32))] * len(fake.blocks)
  real_acc = [(jnp.full((real.block,), jnp.inf, jnp.float32),) * 2
             ] * len(real.blocks)
  k_index, density_index = np.int32(k - 1), np.int32(density_k - 1)
  for i, f in enumerate(fake.blocks):
    for j, r in enumerate(real.blocks):
      fake_acc[i], real_acc[j] = _cross_pair(
          fake_acc[i], real_acc[j], *f, fake_best[i], *r, real_best[j],
          k_index, density_index)
  return (_host_rows([a[0] for a in fake_acc], fake.n),
          _host_rows([a[1] for a in fake_acc], fake.n),
          _host_rows([a[0] for a in real_acc], real.n),
          _host_rows([a[1] for a in real_acc], real.n))


class KNNReference:
  """The real side of the KNN metrics, computed once, scored many times.

  Holds the centred, blocked real embeddings and the squared distances of
  each real point to its `max_k` nearest other real points, so any k <= max_k
  is free afterwards.

  Everything is held in units of 2^exponent (see `_checks.reference_set`).

  Args:
    real: (n, d) real embeddings.
    max_k: the largest k that will be asked for.
    block: rows/columns per distance block; None (default) chooses by n and d
      (`block_size`), and each fake set then gets its own.

  Raises:
    ValueError: for non-finite or non-2-D input, or fewer than max_k + 1
      points.
  """

  exponent = 0  # the units of the held arrays: 2^exponent

  def __init__(self, real, *, max_k: int = 5, block: int | None = None):
    self._build(*_checks.reference_set(real, "real"), max_k, block)

  @classmethod
  def in_units(cls, real: jax.Array, exponent: int, *, max_k: int = 5,
               block: int | None = None,
               centre: jax.Array | None = None) -> "KNNReference":
    """From a set already validated and held in units 2^exponent (by
    `Reference`), without a second validation pass and host copy; `centre`:
    the point the distances are computed about (default the mean; a set in
    a memory-mapped file must be given one, or it is read whole)."""
    ref = object.__new__(cls)
    ref._build(real, exponent, max_k, block, centre)  # pylint: disable=protected-access
    return ref

  def _build(self, real, exponent: int, max_k: int, block,
             centre=None) -> None:
    self.exponent = exponent
    self.max_k = _checks.positive_int(max_k, "max_k")
    self.fixed_block = (None if block is None else
                        _checks.positive_int(block, "block"))
    _checks.enough_points(real.shape[0], self.max_k, "real")
    self.centre = jnp.mean(real, axis=0) if centre is None else centre
    self.points = _Points(real, self.centre, self._block_for(real.shape))
    self.nearest = nearest_sq_distances(self.points, self.max_k)
    self._nearest_host = None

  def _block_for(self, shape) -> int:
    return self.fixed_block or block_size(*shape)

  @property
  def n(self) -> int:
    return self.points.n

  @property
  def dim(self) -> int:
    return self.points.dim

  @property
  def nearest_sq(self) -> np.ndarray:
    """(n, max_k) ascending squared distances to the nearest others (read
    from the device once)."""
    if self._nearest_host is None:
      self._nearest_host = _host_rows(self.nearest, self.n)
    return self._nearest_host

  def radii(self, k: int) -> np.ndarray:
    """NND_k of every real point (distances, not squared)."""
    self._check_k(k)
    return np.ldexp(np.sqrt(self.nearest_sq[:, k - 1].astype(np.float64)),
                    self.exponent)

  def _check_k(self, k):
    k = _checks.positive_int(k, "k")
    if k > self.max_k:
      raise ValueError(f"k={k} is larger than this reference's max_k="
                       f"{self.max_k}; build it with max_k >= {k}")
    return k

  def score(self, fake, *, k: int = 3, density_k: int = 5) -> dict[str, float]:
    """All four KNN metrics of `fake` against this reference.

    Args:
      fake: (m, d) fake embeddings.
      k: neighbours for precision and recall.
      density_k: neighbours for density and coverage.

    Returns:
      {precision, recall, density, coverage} as Python floats.

    Raises:
      ValueError: for bad input (see `knn_precision_recall`).
    """
    k = self._check_k(k)
    density_k = self._check_k(density_k)
    fake, shift, _ = _checks.fake_set(fake, self.dim, self.exponent)
    _checks.enough_points(fake.shape[0], k, "fake")
    return self.score_in_units(fake, shift, k=k, density_k=density_k)

  def score_in_units(self, fake: jax.Array, shift: int, *, k: int,
                     density_k: int) -> dict[str, float]:
    """`score` of a validated fake set given in units 2^(exponent + shift).

    With shift > 0 (a fake set far larger than the reference), the
    reference's points and radii are divided by 2^shift for this call.
    """
    real_points, nearest, centre = self.points, self.nearest, self.centre
    if shift:
      real_points = real_points.rescaled(-shift)
      nearest = [times_power_of_two(b, -2 * shift) for b in nearest]
      centre = times_power_of_two(centre, -shift)
    fake_points = _Points(fake, centre, self._block_for(fake.shape))
    fake_best = nearest_sq_distances(fake_points, k)
    fake_margin, fake_count, real_min_d2, real_margin = _cross(
        fake_points, fake_best, real_points, nearest, k, density_k)
    real_rho2_dc = (_host_rows(nearest, self.n) if shift else
                    self.nearest_sq)[:, density_k - 1]
    # Exact fractions: integer counts over Python ints.
    count = lambda mask: int(np.sum(mask, dtype=np.int64))
    m = fake.shape[0]
    return {
        "precision": count(fake_margin <= 0) / m,
        "recall": count(real_margin <= 0) / self.n,
        "density": count(fake_count) / (density_k * m),
        "coverage": count(real_min_d2 <= real_rho2_dc) / self.n,
    }


def _all_four(real, fake, k, mesh) -> dict[str, float]:
  k = _checks.positive_int(k, "k")
  from lsh_gan.metrics import _sharded  # pylint: disable=g-import-not-at-top
  if _sharded.wants_mesh(mesh, real, fake):
    return _sharded.knn_all_four(real, fake, k=k, density_k=k, mesh=mesh)
  return KNNReference(real, max_k=k).score(fake, k=k, density_k=k)


def knn_precision_recall(real, fake, *, k: int = 3,
                         mesh=None) -> dict[str, float]:
  """Improved precision and recall (Kynkäänniemi et al. 2019), exact.

  precision = fraction of fake points inside some real point's k-NN ball;
  recall = fraction of real points inside some fake point's k-NN ball (balls
  closed: d <= NND_k).

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    k: neighbours defining each ball (default 3, as in the paper).
    mesh: a `jax.sharding.Mesh` to compute on, the sets sharded by rows
      over all its devices (see `docs/scaling.md`); None: the mesh of a set
      that is a jax.Array on several devices, else one device.

  Returns:
    {"precision": float, "recall": float}, each in [0, 1].

  Raises:
    ValueError: NaN/inf, not 2-D, feature sizes differ, fewer than k + 1
      points in a set, or k < 1 (the message names the set or argument).

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 8))
    >>> knn_precision_recall(x, x)
    {'precision': 1.0, 'recall': 1.0}

  References:
    https://arxiv.org/abs/1904.06991
  """
  out = _all_four(real, fake, k, mesh)
  return {"precision": out["precision"], "recall": out["recall"]}


def density_coverage(real, fake, *, k: int = 5,
                     mesh=None) -> dict[str, float]:
  """Density and coverage (Naeem et al. 2020), exact.

  density = mean over fake points of the number of real k-NN balls holding
  it, divided by k (1 when fake matches real; unbounded above);
  coverage = fraction of real points whose k-NN ball holds a fake point.

  Args:
    real: (n, d) real embeddings.
    fake: (m, d) fake embeddings.
    k: neighbours defining each real ball (default 5, as in the paper).
    mesh: a `jax.sharding.Mesh` to compute on, the sets sharded by rows
      over all its devices (see `docs/scaling.md`); None: the mesh of a set
      that is a jax.Array on several devices, else one device.

  Returns:
    {"density": float, "coverage": float}.

  Raises:
    ValueError: as for `knn_precision_recall`.

  Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 8))
    >>> density_coverage(x, x + 100.0)
    {'density': 0.0, 'coverage': 0.0}

  References:
    https://arxiv.org/abs/2002.09797
  """
  out = _all_four(real, fake, k, mesh)
  return {"density": out["density"], "coverage": out["coverage"]}
