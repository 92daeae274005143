"""LSH + KNN precision and recall: k-NN balls among hash-bucket candidates
(private; the public function is `lsh_knn.lsh_knn_precision_recall`).

Tables (this project's definition): a set S hashed at a width w has L tables;
in each, its points are sorted by bucket key and, within a bucket, by their
projection on the table's first direction. A point's place among S's sorted
points (found by binary search for a point outside S) splits its bucket in
two; its *window* is M = max_candidates consecutive positions of the bucket
around that place, M // 2 before it where the bucket allows, shifted to stay
inside the bucket: the whole bucket when it holds at most M points.

  C_S(x)    = union over the L tables of the points of S in x's window
              (for x in S: its M + 1 window positions, x excluded)
  rho_S(x)  = k-th smallest distance from x in S to C_S(x), over distinct
              candidates; with fewer than k candidates x is isolated and its
              ball covers nothing
  precision = 1/|G| sum_g 1[exists r in C_R(g): d(g, r) <= rho_R(r)]
  recall    = 1/|R| sum_r 1[exists g in C_G(r): d(r, g) <= rho_G(g)]

with R hashed at the real width (precision reads the real set's structure)
and G at the fake set's own width (recall reads the fake set's: a sparse fake
set hashed at the real width would leave most of its points isolated). Since
candidates are a subset of the set, rho_S(x) >= NND_k(x, S). With one bucket
(a huge explicit bucket_width, used by both sets) and max_candidates >=
max(|R|, |G|), every point of the other set is a candidate and rho_S =
NND_k: the metrics equal exact KNN (`knn.knn_precision_recall`) exactly.

Default widths: the w at which the median point shares its bucket with
BUCKET_MATES = 16 other points of its set (median over points and tables),
by bisection on the set's projections (keys and a sort per step, no
distances). A multiple of the k-NN distance does not serve every n: a bucket
is a slab product unbounded in d - K directions, so at a fixed multiple its
population grows about as n^(1 - K/d_int) while the window stays M.

Cost. A set is indexed once (`Indexed`: its sorted tables and radii; a
`Reference` keeps the real one): the radii come from one dense pass per
table over its sorted order, in chunks of CHUNK_ROWS points against the M
positions on either side (L * n * (C + 2M) * d). Scoring a fake set of m
points then indexes the fake set (m log m) and looks each fake point up in
the real tables: L binary searches of log2 n steps and L * M candidate
distances (`_table_cover`): O(m (log n + L M d)), no pass over the real set.
Recall is per real point, so it reads every real point: each looks up the
fake tables (O(n (log m + L M' d)), M' = min(M, the largest fake bucket));
when real points outnumber fake ones they are grouped by place and compared
in dense blocks (`_sorted_cover`).

Error estimate (`error_estimate`): LSH + KNN is approximate, so each call
computes the exact KNN indicator of ERROR_SAMPLE fake points (precision) and
real points (recall), drawn by the seed, more (up to ERROR_SAMPLE_GROWTH
times as many) while that cannot decide whether the error is beyond
ERROR_LIMIT, and reports the mean of (LSH indicator - exact indicator) with
its standard error: an unbiased estimate of (LSH value - exact value). The
exact indicator is cheap because candidate radii bound the exact ones: only
points r with d(q, r) <= rho(r) can cover q (and isolated points, whose
exact NND_k is computed once per index), and their exact NND_k is computed
only as it decides a query (`exact_indicator`). An estimate beyond ERROR_LIMIT = 0.03 (and beyond two standard
errors) warns with `AccuracyWarning`.
"""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.metrics import _checks
from lsh_gan.metrics import knn
from lsh_gan.metrics import _hashing
from lsh_gan.metrics import _sharded

# Defaults from the measured sweep (benchmarks/lsh_sweep.py, docs/metrics.md):
# K = min(8, d), L = 4, M = 128, 16 median bucket-mates reads within 0.013 of
# exact KNN on the benchmark data (n = 5k at d = 64 and 512, 50k at d = 64)
# and within 0.025 on dropped modes at d = 2 and 64, for half the table
# passes of L = 8.
NUM_TABLES = 4
NUM_HASHES = 8  # capped at d: more functions than dimensions shrink cells
BUCKET_MATES = 16  # default width: the median point has this many bucket-mates
MAX_CANDIDATES = 128


CHUNK_ROWS = 128  # rows per dense block: small blocks starve the matmul


def _window_sq_dists(x, chunk, halo):
  """Squared distances of each chunk of `chunk` rows of x to the rows from
  `halo` before it to `halo` after it (zeros past either end):
  `halo_window_sq_dists` of a zero-padded copy."""
  return halo_window_sq_dists(jnp.pad(x, ((halo, halo), (0, 0))), chunk, halo)


def halo_window_sq_dists(xh, chunk: int, halo: int):
  """Squared distances of the S = len(xh) - 2 halo middle rows of xh to
  their windows: chunk c's rows are xh[halo + c chunk:][:chunk], its columns
  xh[c chunk:][:chunk + 2 halo]. One plain product per chunk (a loop of
  them: XLA's CPU batched product of the same shapes, or three per chunk,
  ran at half the rate); a stretch of a table on one device of a mesh is
  computed by the same products."""
  size = xh.shape[0] - 2 * halo
  nc = size // chunk

  def dots(c):
    rows = jax.lax.dynamic_slice_in_dim(xh, halo + c * chunk, chunk)
    cols = jax.lax.dynamic_slice_in_dim(xh, c * chunk, chunk + 2 * halo)
    return jnp.dot(rows, cols.T, precision=jax.lax.Precision.HIGHEST)

  dots = jax.lax.map(dots, jnp.arange(nc))
  sq = jnp.sum(xh * xh, axis=1)
  sq_rows = sq[halo:halo + size].reshape(nc, chunk)
  sq_cols = jax.vmap(lambda c: jax.lax.dynamic_slice_in_dim(
      sq, c * chunk, chunk + 2 * halo))(jnp.arange(nc))
  return knn.expand_sq_dists(sq_rows[:, :, None] + sq_cols[:, None, :], dots,
                             xh.shape[1])


def _window(position, run_start, run_end, size: int):
  """[lo, hi): `size` consecutive positions of the run [run_start, run_end),
  `size // 2` of them before `position` where the run allows (the window is
  shifted to stay inside the run; it is the whole run if that is shorter)."""
  lo = jnp.minimum(jnp.maximum(position - size // 2, run_start),
                   jnp.maximum(run_end - size, run_start))
  return lo, jnp.minimum(lo + size, run_end)


@jax.jit
def _sort_tables(key1, key2, order_key, num_valid):
  """(L, size) per table: the point ids in sorted order, the sorted keys and
  order keys, and the run [run_start, run_end) each sorted position lies in.

  Sorted by key, then by the order key (a projection on a random
  direction), so bucket-mates are adjacent and, within a bucket, close along
  that direction. Padding sorts last; a run of padding, or of points
  outside the code range (`_hashing.NO_KEY`), is empty (run_end =
  run_start): those points have no candidates and are nobody's candidate.
  """
  size, num_tables = key1.shape
  index = jnp.broadcast_to(jnp.arange(size, dtype=jnp.int32)[None, :],
                           (num_tables, size))
  pad = index >= num_valid
  no_key = jnp.uint32(_hashing.NO_KEY)
  k1 = jnp.where(pad, no_key, key1.T)
  k2 = jnp.where(pad, no_key, key2.T)
  ok = jnp.where(pad, 0.0, order_key.T)
  _, k1, k2, ok, order = jax.lax.sort(
      (pad.astype(jnp.uint32), k1, k2, ok, index), dimension=1, num_keys=4,
      is_stable=True)
  run_start, run_end = _hashing.run_bounds(k1, k2)
  position = index[0][None, :]
  empty = (position >= num_valid) | ((k1 == no_key) & (k2 == no_key))
  run_end = jnp.where(empty, run_start, jnp.minimum(run_end, num_valid))
  return Tables(order, k1, k2, ok, run_start, run_end)


@jax.tree_util.register_pytree_node_class
class Tables:
  """A set's L sorted tables at one width, (L, size) arrays (see
  `_sort_tables`)."""

  def __init__(self, order, key1, key2, order_key, run_start, run_end):
    self.order, self.key1, self.key2 = order, key1, key2
    self.order_key, self.run_start, self.run_end = order_key, run_start, run_end

  def tree_flatten(self):
    return (self.order, self.key1, self.key2, self.order_key, self.run_start,
            self.run_end), None

  @classmethod
  def tree_unflatten(cls, _, children):
    return cls(*children)

  def rescaled(self, exponent: int) -> "Tables":
    """The same tables with the order keys times 2^exponent (the order is
    unchanged: the scaling is exact)."""
    return Tables(self.order, self.key1, self.key2,
                  knn.times_power_of_two(self.order_key, exponent),
                  self.run_start, self.run_end)


@jax.jit
def _table_nearest(best_d2, best_id, points, order, run_start, run_end,
                   shape_ref):
  """Merges one table's candidates into each point's k best (distinct).

  A point's candidates in the table are the M = max_candidates others of
  its self-window: M + 1 consecutive sorted positions of its bucket, M // 2
  before it where the bucket allows (`_window`).
  """
  chunk, halo = shape_ref.shape  # halo = M: a window reaches M positions
  pad = lambda x, value: jnp.pad(x, ((halo, halo),) + ((0, 0),) * (x.ndim - 1),
                                 constant_values=value)
  # Merged in the table's sorted order (moving the k kept values, not the
  # block rows), then back to the original order of the rows.
  new_d2, new_id = stretch_nearest(
      pad(points[order], 0.0), pad(order, -1), run_start, run_end,
      best_d2[order], best_id[order], 0, chunk=chunk, halo=halo)
  return (jnp.zeros_like(best_d2).at[order].set(new_d2),
          jnp.zeros_like(best_id).at[order].set(new_id))


def stretch_nearest(xh, col_id, run_start, run_end, kept_d2, kept_id, first,
                    *, chunk: int, halo: int):
  """The new k best of the points at the S sorted positions [first, first +
  S) of one table, from their self-windows (traceable; `_table_nearest` is
  the whole table, a device of a mesh its stretch).

  xh (S + 2 halo, d): the rows at positions [first - halo, first + S +
  halo) (zeros outside the table); col_id: their row ids (-1 outside);
  run_start, run_end (S,): the runs of the positions; kept_d2, kept_id (S,
  k): the points' k best so far. Candidates are counted once: one table's
  candidates are distinct points, so a repeat can only be one of the k
  entries kept.
  """
  size, k = kept_d2.shape
  nc, width = size // chunk, chunk + 2 * halo
  position = first + jnp.arange(size, dtype=jnp.int32)
  lo, hi = _window(position, run_start, run_end, halo + 1)
  col_pos = (first + jnp.arange(nc, dtype=jnp.int32)[:, None] * chunk - halo +
             jnp.arange(width, dtype=jnp.int32)[None, :])[:, None, :]
  mask = ((col_pos >= lo.reshape(nc, chunk, 1)) &
          (col_pos < hi.reshape(nc, chunk, 1)) &
          (col_pos != position.reshape(nc, chunk, 1)))
  d2 = jnp.where(mask, halo_window_sq_dists(xh, chunk, halo), jnp.inf)
  cols = jax.vmap(lambda c: jax.lax.dynamic_slice_in_dim(
      col_id, c * chunk, width))(jnp.arange(nc))
  col_ids = jnp.broadcast_to(cols[:, None, :], d2.shape).reshape(size, width)
  d2 = d2.reshape(size, width)
  seen = jnp.any(col_ids[:, :, None] == kept_id[:, None, :], axis=2)
  d2 = jnp.where(seen, jnp.inf, d2)
  neg, pick = jax.lax.top_k(-jnp.concatenate([kept_d2, d2], axis=1), k)
  ids = jnp.take_along_axis(jnp.concatenate([kept_id, col_ids], axis=1), pick,
                            axis=1)
  return -neg, jnp.where(jnp.isinf(neg), -1, ids)


def _windows(query_key1, query_key2, query_order_key, num_queries,
             tables: Tables, num_valid, window: int):
  """(mq, L) each: the window [lo, hi) of every query in every table.

  A binary search finds the query's place p in the table's sorted order (by
  key, then order key); its window is `window` positions of its bucket
  around p (`_window`), empty if no indexed point shares its bucket.
  """
  size = tables.order.shape[1]
  mq = query_key1.shape[0]
  table = jnp.arange(tables.order.shape[0])[None, :]
  q1, q2, qo = query_key1, query_key2, query_order_key

  def step(_, bounds):
    lo, hi = bounds
    mid = (lo + hi) // 2
    m1, m2 = tables.key1[table, mid], tables.key2[table, mid]
    mo = tables.order_key[table, mid]
    before = (m1 < q1) | ((m1 == q1) & ((m2 < q2) | ((m2 == q2) & (mo < qo))))
    active = lo < hi
    return (jnp.where(active & before, mid + 1, lo),
            jnp.where(active & ~before, mid, hi))

  steps = max(1, math.ceil(math.log2(size + 1)))
  place, _ = jax.lax.fori_loop(
      0, steps, step, (jnp.zeros(q1.shape, jnp.int32),
                       jnp.full(q1.shape, num_valid, jnp.int32)))
  at, prev = jnp.minimum(place, size - 1), jnp.maximum(place - 1, 0)
  same = lambda i: (tables.key1[table, i] == q1) & (tables.key2[table, i] == q2)
  in_at = (place < num_valid) & same(at)
  in_prev = (place > 0) & same(prev)
  start = jnp.where(in_at, tables.run_start[table, at],
                    tables.run_start[table, prev])
  end = jnp.where(in_at, tables.run_end[table, at], tables.run_end[table, prev])
  live = (in_at | in_prev) & (jnp.arange(mq) < num_queries)[:, None]
  return _window(place, start, jnp.where(live, end, start), window)


@functools.partial(jax.jit, static_argnames=("window", "block"))
def _table_cover(queries, query_key1, query_key2, query_order_key, num_queries,
                 points, points_sq, rho2, num_valid, tables: Tables, *,
                 window: int, block: int):
  """(mq,) bool: does each query lie in a candidate's ball?

  Candidates: the indexed points of each table's window (`_windows`), at
  most L * window, read from `points` by index; query g hits if some
  candidate r has d(g, r)^2 <= rho2[r]. The cost per query does not depend
  on the number of indexed points (but for the log2 steps of the search).
  """
  size = tables.order.shape[1]
  mq, dim = queries.shape
  table = jnp.arange(tables.order.shape[0])[None, :, None]
  lo, hi = _windows(query_key1, query_key2, query_order_key, num_queries,
                    tables, num_valid, window)
  pad = -mq % block
  padded = lambda x: jnp.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1))
  queries, lo, hi = padded(queries), padded(lo), padded(hi)
  offsets = jnp.arange(window, dtype=jnp.int32)

  def body(b, hits):
    rows = lambda x: jax.lax.dynamic_slice_in_dim(x, b * block, block)
    g = rows(queries)
    pos = rows(lo)[:, :, None] + offsets
    ids = tables.order[table, jnp.minimum(pos, size - 1)]
    dots = jnp.einsum("bd,bkd->bk", g, points[ids.reshape(block, -1)],
                      precision=jax.lax.Precision.HIGHEST).reshape(ids.shape)
    d2 = knn.expand_sq_dists(
        jnp.sum(g * g, axis=1)[:, None, None] + points_sq[ids], dots, dim)
    hit = jnp.any((pos < rows(hi)[:, :, None]) & (d2 <= rho2[ids]),
                  axis=(1, 2))
    return jax.lax.dynamic_update_slice_in_dim(hits, hit, b * block, 0)

  hits = jax.lax.fori_loop(0, (mq + pad) // block, body,
                           jnp.zeros(mq + pad, bool))
  return hits[:mq]


_query_windows = jax.jit(_windows, static_argnames="window")


@functools.partial(jax.jit, static_argnames="span")
def _dense_cover(queries, queries_sq, points, points_sq, rho2, order, rows,
                 table, base, lo, hi, *, span: int):
  """(chunks, chunk) bool: hits of chunks of queries that share a stretch of
  one table's sorted order.

  Chunk c holds the queries `rows[c]` (-1: none) whose windows in table
  `table[c]`, [lo, hi), lie within the `span` sorted positions from
  `base[c]`: their candidates are read as that one slice and compared in one
  (chunk x span) product.
  """
  size = order.shape[1]

  def chunk_hits(args):
    """One chunk: gathered and compared in one plain product (a batched
    product over gathered copies of every chunk ran at half the rate)."""
    rows_c, table_c, base_c, lo_c, hi_c = args
    pos = base_c + jnp.arange(span, dtype=jnp.int32)
    cols = order[table_c, jnp.minimum(pos, size - 1)]
    picked = jnp.maximum(rows_c, 0)
    dots = jnp.dot(queries[picked], points[cols].T,
                   precision=jax.lax.Precision.HIGHEST)
    d2 = knn.expand_sq_dists(queries_sq[picked][:, None] +
                             points_sq[cols][None, :], dots, queries.shape[1])
    inside = (pos[None, :] >= lo_c[:, None]) & (pos[None, :] < hi_c[:, None])
    return jnp.any(inside & (d2 <= rho2[cols][None, :]), axis=1) & (rows_c >= 0)

  return jax.lax.map(chunk_hits, (rows, table, base, lo, hi))


def _dense_chunks(lo: np.ndarray, hi: np.ndarray, chunk: int):
  """The chunks of `_dense_cover` for every table, grouped by span.

  Per table, the queries with a live window are sorted by where it starts
  and cut into `chunk` consecutive ones; a chunk's span is the power of two
  (at least MIN_SPAN) holding all its windows. Returns {span: (rows, table,
  base, lo, hi)} with (chunks, chunk) rows/lo/hi and (chunks,) table/base;
  span 0 collects the chunks whose windows need more than MAX_SPAN.
  """
  parts = {}
  for t in range(lo.shape[1]):
    live = np.flatnonzero(hi[:, t] > lo[:, t])
    if not live.size:
      continue
    live = live[np.argsort(lo[live, t], kind="stable")]
    num = -(-live.size // chunk)
    rows = np.full(num * chunk, -1, np.int64)
    rows[:live.size] = live
    rows = rows.reshape(num, chunk)
    r_lo = np.where(rows >= 0, lo[rows, t], 0)
    r_hi = np.where(rows >= 0, hi[rows, t], 0)
    base = r_lo[:, 0]
    length = np.max(r_hi, axis=1) - base
    span = np.maximum(MIN_SPAN, 1 << np.ceil(np.log2(np.maximum(
        length, 1))).astype(np.int64))
    far = span > MAX_SPAN
    if far.any():  # windows spread over the table: read them one by one
      parts.setdefault(0, []).append(
          (rows[far], np.full(int(far.sum()), t), base[far], r_lo[far],
           r_hi[far]))
    for s in np.unique(span[~far]):
      pick = span == s
      parts.setdefault(int(s), []).append(
          (rows[pick], np.full(int(pick.sum()), t), base[pick], r_lo[pick],
           r_hi[pick]))
  return {s: tuple(np.concatenate(a) for a in zip(*p))
          for s, p in parts.items()}


@jax.jit
def _largest_bucket(tables: Tables):
  return jnp.max(tables.run_end - tables.run_start)


def _order_keys(values, family):
  """(rows, L) within-bucket order: the projection on each table's first
  direction. (A Z-order of the point's place in its K-D cell read no better
  in a trial: -0.039 against -0.043 from exact KNN at n = 50k.)"""
  return values[:, ::family.num_hashes]


@jax.jit
def _half_with_mates(key1, key2, num_valid, target):
  """Whether at least half the (point, table) pairs have >= target
  bucket-mates (the median pair does)."""
  s1, s2, _ = _hashing.sort_tables(key1, key2, num_valid)
  hits = _hashing.pairs_with_mates((s1, s2), num_valid, target)
  return 2 * hits >= num_valid * s1.shape[0]


def fill_width(prepared: "Prepared", target: float, start: float,
               steps: int = 10) -> float:
  """The width at which the median point has about `target` bucket-mates.

  Bisection on log w over [start / 64, start * 4] (10 steps: within 2%)
  using the set's own projections: keys and a sort per step, no distances.
  The median over points and tables of the number of bucket-mates grows with
  w; the result is the narrowest width found where it reaches `target` (the
  widest, if none does).
  """
  lo, hi = math.log(start / 64), math.log(start * 4)
  for _ in range(steps):
    mid = (lo + hi) / 2
    key1, key2 = prepared.family.keys(prepared.values, math.exp(mid))
    if bool(_half_with_mates(key1, key2, prepared.n, target)):
      hi = mid
    else:
      lo = mid
  return math.exp(hi)


def _block_shape(max_candidates: int):
  """(chunk rows, halo) as the shape of a dummy array (static under jit):
  a self-window reaches up to M = max_candidates positions from its point."""
  return jnp.zeros((max(CHUNK_ROWS, max_candidates), max_candidates))


def _pad_to(x, rows, value=0):
  return jnp.pad(x, ((0, rows - x.shape[0]),) + ((0, 0),) * (x.ndim - 1),
                 constant_values=value)


@jax.jit
def _centre_rows(rows, centre):
  return rows - centre


def _centred_padded(x, centre, size):
  """(size, d) rows of x - centre, zeros after n: built from fixed row
  blocks, so only the size class (not n) shapes what is compiled."""
  blocks = [_centre_rows(rows, centre) for _, rows in _hashing.row_blocks(x)]
  out = jnp.concatenate(blocks) if len(blocks) > 1 else blocks[0]
  valid = _row_mask(out.shape[0], x.shape[0])
  out = jnp.where(valid[:, None], out, 0.0)  # the last block's padding
  return out[:size] if out.shape[0] >= size else _pad_to(out, size)


def _row_mask(size, n):
  return jnp.arange(size) < jnp.int32(n)


class Prepared:
  """A point set ready for the table passes: centred, padded, projected.

  Args:
    points: (n, d) float32 points.
    centre: (d,) the point subtracted from every point (the real mean).
    family: the hash family.
    max_candidates: M, which fixes the chunk size the rows are padded to.
    projected: the set's projections, if already computed.
  """

  def __init__(self, points, centre, family: _hashing.HashFamily,
               max_candidates: int, projected: _hashing.Projected | None = None):
    self.n = points.shape[0]
    self.shape_ref = _block_shape(max_candidates)
    chunk = self.shape_ref.shape[0]
    self.size = -(-_hashing.padded_size(self.n) // chunk) * chunk
    projected = projected or family.project(points, centre)
    self.points = _centred_padded(points, centre, self.size)
    values = projected.all_values()
    self.values = (values[:self.size] if values.shape[0] >= self.size else
                   _pad_to(values, self.size))
    self.valid = _row_mask(self.size, self.n)
    self.family = family
    self._sq = None

  def take(self, rows: np.ndarray) -> jax.Array:
    """The (centred) rows `rows`."""
    return self.points[jnp.asarray(rows)]

  @property
  def points_sq(self) -> jax.Array:
    """(size,) squared norms of the rows, computed once."""
    if self._sq is None:
      self._sq = _sq_norms(self.points)
    return self._sq

  def rescaled(self, exponent: int) -> "Prepared":
    """The same set with its points and projections times 2^exponent."""
    out = object.__new__(type(self))
    out.__dict__.update(self.__dict__)
    out.points = knn.times_power_of_two(self.points, exponent)
    out.values = knn.times_power_of_two(self.values, exponent)
    out._sq = (None if self._sq is None else  # pylint: disable=protected-access
               knn.times_power_of_two(self._sq, 2 * exponent))
    return out

  def keys(self, width: float):
    """Key pairs and within-bucket order keys, (size, L) each.

    The order key of table l is the projection on its first direction.
    """
    key1, key2 = self.family.keys(self.values, width)
    return key1, key2, _order_keys(self.values, self.family)


@jax.jit
def _kth_radius(best_d2, valid):
  kth = best_d2[:, -1]
  return jnp.where(jnp.isinf(kth) | ~valid, -1.0, kth)


def sorted_tables(prepared: Prepared, width: float) -> Tables:
  """The set's L tables at `width`, sorted (`_sort_tables`)."""
  return _sort_tables(*prepared.keys(width), prepared.n)


def padded_radii_sq(prepared: Prepared, width: float, k: int,
                    tables: Tables | None = None):
  """(size,) squared radius rho^2 per row; -1 for isolated and padding.

  `tables`: the set's sorted tables at `width`, if already built.
  """
  if tables is None:
    tables = sorted_tables(prepared, width)
  best_d2 = jnp.full((prepared.size, k), jnp.inf, jnp.float32)
  best_id = jnp.full((prepared.size, k), -1, jnp.int32)
  for table in range(prepared.family.num_tables):
    best_d2, best_id = _table_nearest(best_d2, best_id, prepared.points,
                                      tables.order[table],
                                      tables.run_start[table],
                                      tables.run_end[table],
                                      prepared.shape_ref)
  return _kth_radius(best_d2, prepared.valid)


def rescale_radii_sq(rho2: jax.Array, exponent: int) -> jax.Array:
  """Squared radii times 2^(2 exponent); the -1 flags stay negative."""
  return jnp.where(rho2 < 0, rho2, knn.times_power_of_two(rho2, 2 * exponent))


def candidate_radii_sq(prepared: Prepared, width: float, k: int) -> np.ndarray:
  """(n,) squared LSH+KNN radius rho^2 of each point (-1 if isolated)."""
  return np.asarray(padded_radii_sq(prepared, width, k))[:prepared.n]


@jax.jit
def _sq_norms(points):
  return jnp.sum(points * points, axis=1)


class Indexed:
  """A set ready to be queried: its sorted tables at one width and its
  candidate radii (the real side a `Reference` keeps).

  Args:
    prepared: the set.
    width: bucket width, in the set's units.
    k: neighbours defining each ball.
  """

  def __init__(self, prepared: Prepared, width: float, k: int):
    self.prepared, self.width, self.k = prepared, width, k
    self.tables = sorted_tables(prepared, width)
    self.rho2 = padded_radii_sq(prepared, width, k, self.tables)
    self._exact = None  # exact squared NND_k, NaN until computed
    self._isolated = None  # indices of the isolated points, once read

  @property
  def points_sq(self) -> jax.Array:
    return self.prepared.points_sq

  def isolated_exact_sq(self):
    """(indices of the isolated points, their exact squared NND_k)."""
    if self._isolated is None:  # the same at every scale: rescaled shares it
      self._isolated = np.flatnonzero(
          np.asarray(self.rho2)[:self.prepared.n] < 0)
    return self._isolated, self.exact_radii_sq(self._isolated)

  def exact_radii_sq(self, which: np.ndarray) -> np.ndarray:
    """Exact squared NND_k of the points `which`, each computed once (one
    pass over the set per 256 points, or the exact KNN radius pass when
    more than a third of the set is missing) and kept by the index."""
    if self._exact is None:
      self._exact = np.full(self.prepared.n, np.nan, np.float32)
    missing = which[np.isnan(self._exact[which])]
    if 3 * missing.size > self.prepared.n:  # cheaper for all at once
      n, dim = self.prepared.n, self.prepared.points.shape[1]
      points = knn._Points(  # pylint: disable=protected-access
          self.prepared.points[:n], np.zeros(dim, np.float32),
          knn.block_size(n, dim))
      self._exact = knn._host_rows(  # pylint: disable=protected-access
          knn.nearest_sq_distances(points, self.k), n)[:, self.k - 1]
    elif missing.size:
      self._exact[missing] = _exact_radii_sq(self, missing, self.k)
    return self._exact[which]

  def know_exact(self, radii_sq: np.ndarray) -> None:
    """Takes every point's exact squared NND_k, computed elsewhere (a
    `Reference`'s exact KNN side), in the index's units."""
    self._exact = np.array(radii_sq, np.float32)

  def rescaled(self, exponent: int) -> "Indexed":
    """The same index with every length times 2^exponent (exact)."""
    out = object.__new__(type(self))  # a mesh index stays one
    out.__dict__.update(self.__dict__)
    out.prepared = self.prepared.rescaled(exponent)
    out.width = math.ldexp(self.width, exponent)
    out.tables = self.tables.rescaled(exponent)
    out.rho2 = rescale_radii_sq(self.rho2, exponent)
    out._exact = (None if self._exact is None else  # pylint: disable=protected-access
                  np.ldexp(self._exact, 2 * exponent))
    return out


QUERY_BLOCK_FLOATS = 1 << 22  # candidate coordinates gathered per query block


def query_block(num_tables: int, max_candidates: int, dim: int) -> int:
  """Queries per block: a power of two (at most 256) whose gathered
  candidates, block * L * M * d floats, stay near 16 MB."""
  rows = QUERY_BLOCK_FLOATS // max(1, num_tables * max_candidates * dim)
  return 1 << max(0, min(8, rows.bit_length() - 1))


DENSE_CHUNK = 128  # queries per chunk in `_dense_cover`
MIN_SPAN = 16  # the narrowest candidate slice of a chunk
MAX_SPAN = 1024  # the widest: a chunk spread wider reads its windows singly


def covered(index: Indexed, queries: Prepared) -> np.ndarray:
  """(m,) bool numpy: does each query lie in the ball of one of its
  candidates among the indexed set (hashed at the index's width)?

  The window is min(M, the largest bucket rounded up to a power of two):
  the same candidates as M (a window holds its whole bucket when the bucket
  fits), fewer read when every bucket is small. Few queries against a large
  index read their windows one by one (`_table_cover`: no pass over the
  index); queries that outnumber a quarter of the indexed points are
  sorted by window per table and compared in dense chunks whose candidate
  slice is as short as their windows allow (`_dense_cover`).
  """
  key1, key2, order_key = queries.keys(index.width)
  max_candidates = index.prepared.shape_ref.shape[1]
  largest = max(1, int(_largest_bucket(index.tables)))
  window = min(max_candidates, 1 << (largest - 1).bit_length())
  num_tables, dim = index.prepared.family.num_tables, queries.points.shape[1]
  def one_by_one(rows=None):
    """`_table_cover` of the queries `rows` (all if None)."""
    points, keys, count = queries.points, (key1, key2, order_key), queries.n
    if rows is not None:
      size = _hashing.padded_size(rows.size)
      pick = jnp.asarray(np.pad(rows, (0, size - rows.size)))
      points, keys, count = points[pick], [k[pick] for k in keys], rows.size
    return np.asarray(_table_cover(
        points, *keys, count, index.prepared.points, index.points_sq,
        index.rho2, index.prepared.n, index.tables, window=window,
        block=query_block(num_tables, window, dim)))[:count]

  if 4 * queries.n <= index.prepared.n:
    return one_by_one()
  lo, hi = (np.asarray(a)[:queries.n] for a in _query_windows(
      key1, key2, order_key, queries.n, index.tables, index.prepared.n,
      window=window))
  hits = np.zeros(queries.n, bool)
  queries_sq = queries.points_sq
  chunks = _dense_chunks(lo, hi, DENSE_CHUNK)
  spread = chunks.pop(0, None)
  for span, (rows, table, base, r_lo, r_hi) in sorted(chunks.items()):
    # Chunks per call: a power of two whose gathered rows stay near 16 MB.
    per_call = 1 << max(0, (QUERY_BLOCK_FLOATS // (
        (DENSE_CHUNK + span) * dim)).bit_length() - 1)
    per_call = min(per_call, 1 << (rows.shape[0] - 1).bit_length())
    for start in range(0, rows.shape[0], per_call):
      part = slice(start, start + per_call)
      pad = per_call - rows[part].shape[0]
      fill = lambda x, value=0: np.pad(x, ((0, pad),) + ((0, 0),) * (
          x.ndim - 1), constant_values=value).astype(np.int32)
      hit = np.asarray(_dense_cover(
          queries.points, queries_sq, index.prepared.points, index.points_sq,
          index.rho2, index.tables.order, fill(rows[part], -1),
          fill(table[part]), fill(base[part]), fill(r_lo[part]),
          fill(r_hi[part]), span=span))
      got = rows[part][hit[:per_call - pad]]
      hits[got] = True
  if spread is not None:
    rest = np.unique(spread[0][spread[0] >= 0])
    rest = rest[~hits[rest]]
    if rest.size:
      hits[rest] = one_by_one(rest)
  return hits


# The error estimate.

ERROR_SAMPLE = 256  # points per side whose exact indicator is computed first
ERROR_SAMPLE_GROWTH = 4  # ... and at most this many times as many
ERROR_LIMIT = 0.03  # a larger estimated error warns (`warn_if_off`)


class AccuracyWarning(UserWarning):
  """LSH + KNN's own error estimate exceeds ERROR_LIMIT: the result is more
  than 0.03 from exact KNN precision or recall (see `error_estimate`)."""


@functools.partial(jax.jit, static_argnames="k")
def _exact_kth_sq(rows, points, points_sq, num_valid, *, k):
  """(u,) exact squared NND_k among `points` of the points with indices
  `rows` (self excluded by index; rows < 0 are padding: inf)."""
  size, dim = points.shape
  block = min(size, knn.BLOCK)
  x = points[jnp.maximum(rows, 0)]
  x_sq = points_sq[jnp.maximum(rows, 0)]

  def body(j, best):
    cols = jax.lax.dynamic_slice_in_dim(points, j * block, block)
    cols_sq = jax.lax.dynamic_slice_in_dim(points_sq, j * block, block)
    index = j * block + jnp.arange(block)
    dots = jnp.dot(x, cols.T, precision=jax.lax.Precision.HIGHEST)
    d2 = knn.expand_sq_dists(x_sq[:, None] + cols_sq[None, :], dots, dim)
    d2 = jnp.where((index[None, :] >= num_valid) |
                   (index[None, :] == rows[:, None]), jnp.inf, d2)
    return knn._merge_smallest(best, d2)  # pylint: disable=protected-access

  best = jax.lax.fori_loop(0, -(-size // block), body,
                           jnp.full((rows.shape[0], k), jnp.inf, jnp.float32))
  return jnp.where(rows >= 0, best[:, -1], jnp.inf)


@jax.jit
def _cross_sq(queries, queries_sq, points, points_sq, num_valid):
  """(s, size) squared distances (inf past num_valid)."""
  dots = jnp.dot(queries, points.T, precision=jax.lax.Precision.HIGHEST)
  d2 = knn.expand_sq_dists(queries_sq[:, None] + points_sq[None, :], dots,
                           points.shape[1])
  return jnp.where(jnp.arange(points.shape[0])[None, :] < num_valid, d2,
                   jnp.inf)


def _exact_radii_sq(index: Indexed, which: np.ndarray, k: int) -> np.ndarray:
  """Exact squared NND_k of the indexed points `which`, in fixed-size calls."""
  out = np.empty(which.size, np.float32)
  for start in range(0, which.size, 256):
    part = which[start:start + 256]
    rows = np.full(256 if which.size > 64 else 64, -1, np.int32)
    rows[:part.size] = part
    out[start:start + part.size] = np.asarray(_exact_kth_sq(
        jnp.asarray(rows), index.prepared.points, index.points_sq,
        index.prepared.n, k=k))[:part.size]
  return out


EXACT_ROUNDS = 3  # rounds of one radius per undecided query (`exact_indicator`)


def exact_indicator(index: Indexed, queries: Prepared, sample: np.ndarray,
                    k: int) -> np.ndarray:
  """Exact KNN indicator of the queries `sample`: inside some indexed
  point's exact k-NN ball (d <= NND_k)?

  Candidate radii bound the exact ones (rho >= NND_k: candidates are a
  subset of the set), so only indexed points with d(q, r) <= rho(r) can
  cover q, and isolated points (rho = -1: no bound; their exact NND_k is
  always computed). Exact radii are computed only as they decide something
  (each one pass over the set, kept by the index): per round, one for every
  undecided query, its candidate deepest inside its bound (least
  d^2 - rho^2), which covers it in most cases; a query is decided once a
  known radius covers it or none of its candidates is left unknown. After
  EXACT_ROUNDS rounds every remaining candidate of an undecided query is
  computed at once. (Computing them all from the start needed a radius for
  most of the set: a query inside the support lies in about k balls.)
  """
  # A power of two of rows (at least 64): a sample of 256 is not computed as
  # 1,024 (the sets' size classes start there).
  rows = np.zeros(max(64, 1 << (sample.size - 1).bit_length()), np.int32)
  rows[:sample.size] = sample
  q = queries.take(rows)
  d2 = _cross_sq(q, jnp.sum(q * q, axis=1), index.prepared.points,
                 index.points_sq, index.prepared.n)
  n = index.prepared.n
  known = np.full(index.prepared.size, np.nan, np.float32)
  known[n:] = -1.0  # padding covers nothing
  if index._exact is not None:  # pylint: disable=protected-access
    known[:n] = index._exact  # pylint: disable=protected-access
  isolated, isolated_exact2 = index.isolated_exact_sq()
  known[isolated] = isolated_exact2
  valid = np.arange(rows.size) < sample.size
  rounds = 0
  while True:
    # Host arrays (`known` changes each round), passed as they are: on a
    # mesh, d2 is a global array and these are replicated inputs.
    covered, choice = (_sharded.host(a) for a in _exact_round(
        d2, index.rho2, known))
    undecided = valid & (choice >= 0)
    if not undecided.any():
      return covered[:sample.size]
    if rounds < EXACT_ROUNDS:
      need = np.unique(choice[undecided])
    else:  # every unknown candidate of the undecided queries: the last round
      need = np.flatnonzero(_sharded.host(_unknown_candidates(
          d2, index.rho2, known, undecided)))
    known[need] = index.exact_radii_sq(need)
    rounds += 1


@jax.jit
def _exact_round(d2, rho2, known):
  """Per query: whether a known exact radius covers it, and the unknown
  candidate deepest inside its bound (-1 if covered, or none is left)."""
  unknown = jnp.isnan(known)
  covered = jnp.any(d2 <= jnp.where(unknown, -1.0, known)[None, :], axis=1)
  open_ = (d2 <= rho2[None, :]) & unknown[None, :]
  depth = jnp.where(open_, d2 - rho2[None, :], jnp.inf)
  choice = jnp.argmin(depth, axis=1).astype(jnp.int32)
  return covered, jnp.where(covered | ~jnp.any(open_, axis=1), -1, choice)


@jax.jit
def _unknown_candidates(d2, rho2, known, rows):
  """(size,) whether a point is an unknown candidate of one of `rows`."""
  open_ = (d2 <= rho2[None, :]) & jnp.isnan(known)[None, :] & rows[:, None]
  return jnp.any(open_, axis=0)


def error_estimate(index: Indexed, queries: Prepared, hits: np.ndarray,
                   k: int, seed: int,
                   sample_size: int = ERROR_SAMPLE) -> tuple[float, float]:
  """(mean of LSH - exact indicator, its standard error) on queries drawn by
  `seed`: an unbiased estimate of the LSH value minus the exact KNN value.

  It starts from `sample_size` queries and doubles the sample (up to
  ERROR_SAMPLE_GROWTH times it, or every query) while the estimate cannot
  yet tell, at two standard errors, whether the error is beyond
  ERROR_LIMIT: 256 queries leave a standard error near 0.03, too coarse to
  decide a 0.03 limit where LSH and exact KNN disagree on many points.
  """
  rng = np.random.default_rng(seed)
  limit = min(queries.n, sample_size * ERROR_SAMPLE_GROWTH)
  drawn = rng.choice(queries.n, min(queries.n, sample_size), replace=False)
  diffs = []
  while True:
    sample = np.sort(drawn[sum(d.size for d in diffs):])
    exact = exact_indicator(index, queries, sample, k)
    diffs.append(hits[sample].astype(np.float64) - exact)
    diff = np.concatenate(diffs)
    error = float(diff.mean())
    se = float(diff.std(ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else 0.0
    decided = (abs(error) - 2 * se > ERROR_LIMIT or
               abs(error) + 2 * se <= ERROR_LIMIT)
    if decided or diff.size >= limit:
      return error, se
    rest = np.setdiff1d(np.arange(queries.n), drawn, assume_unique=True)
    more = rng.choice(rest, min(rest.size, limit - diff.size, diff.size),
                      replace=False)
    drawn = np.concatenate([drawn, more])


def warn_if_off(result: dict) -> None:
  """AccuracyWarning if an estimated error exceeds ERROR_LIMIT and is more
  than two standard errors from 0 (a few disagreements in the sample do not
  warn)."""
  for name in ("precision", "recall"):
    error, se = result[f"{name}_error"], result[f"{name}_error_se"]
    if abs(error) > ERROR_LIMIT and abs(error) > 2 * se:
      warnings.warn(
          f"LSH+KNN {name} {result[name]:.3f} is estimated {error:+.3f} "
          f"(standard error {se:.3f}) from exact KNN's; pass a larger "
          "max_candidates or num_tables, or use exact KNN",
          AccuracyWarning, stacklevel=3)
