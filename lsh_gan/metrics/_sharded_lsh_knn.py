"""LSH + KNN on a `jax.sharding` mesh (private; `Reference` calls it).

The one-device algorithm (`_lsh_knn`) reads windows of each table's sorted
order. Here a set stays sharded by rows (`_sharded.ShardedSet`); per table,
its rows are laid out by sorted position, each device holding a contiguous
stretch of positions with M = max_candidates positions of halo on either
side, by `ring_take`: the shards travel round the ring (D steps of
`ppermute`) and each device keeps the visiting rows it asked for. On that
layout the one-device chunk products run unchanged, so the distances, and
the candidate radii, are the one-device numbers. The sorts run on one
device over the gathered keys (12 bytes per point and table, never the
n x d set). Queries go to the device whose stretch of sorted positions
their window starts in (`covered`). The error estimate runs the one-device
code (`_lsh_knn.error_estimate`) on this module's `Prepared` and
`Indexed`, whose exact radii come from the mesh.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from lsh_gan.metrics import _lsh_knn
from lsh_gan.metrics import _sharded
from lsh_gan.metrics import knn

AXIS = _sharded.AXIS


def _ring_take(x, ids, *, per: int, devices: int):
  """Inside shard_map: x (per, ...) this device's rows of a global array,
  ids (q,) global row ids (negative: none). Returns x[ids] (q, ...), zeros
  where ids < 0, gathered as the shards travel round the ring."""
  me = jax.lax.axis_index(AXIS)

  def visit(step, carry):
    out, shard = carry
    owner = (me - step) % devices  # ppermute sends i -> i + 1
    local = ids - owner * per
    here = (ids >= 0) & (local >= 0) & (local < per)
    rows = shard[jnp.clip(local, 0, per - 1)]
    out = jnp.where(here.reshape(here.shape + (1,) * (rows.ndim - 1)), rows,
                    out)
    shard = jax.lax.ppermute(shard, AXIS, _sharded._ring_permutation(devices))  # pylint: disable=protected-access
    return out, shard

  out = _sharded._varying(jnp.zeros(ids.shape + x.shape[1:], x.dtype))  # pylint: disable=protected-access
  out, _ = jax.lax.fori_loop(0, devices, visit, (out, x))
  return out


@functools.lru_cache(maxsize=None)
def _take_fn(mesh: Mesh, per: int):
  return jax.jit(jax.shard_map(
      functools.partial(_ring_take, per=per, devices=mesh.shape[AXIS]),
      mesh=mesh, in_specs=(P(AXIS), P(AXIS)), out_specs=P(AXIS)))


def ring_take(x: jax.Array, ids, mesh: Mesh) -> jax.Array:
  """x[ids] for a global array x sharded by rows over `mesh` (D devices)
  and D * q ids (negative: a zero row), sharded like them: each device
  receives the rows its q ids name, no device holding more than its own
  shard, one visiting shard and its q rows."""
  devices = mesh.shape[AXIS]
  ids = np.asarray(ids, np.int32)
  if ids.shape[0] % devices:
    raise ValueError(f"{ids.shape[0]} ids do not split over {devices} "
                     "devices")
  per = x.shape[0] // devices
  ids = jax.device_put(ids, NamedSharding(mesh, P(AXIS)))
  return _take_fn(mesh, per)(x, ids)


def _local_nearest(xh, col_id, run_start, run_end, kept_d2, kept_id, *,
                   chunk: int, halo: int):
  """Inside shard_map: `_lsh_knn._table_nearest` for this device's stretch
  of S sorted positions [j S, (j + 1) S). xh (S + 2 halo, d): the rows at
  positions [j S - halo, (j + 1) S + halo) (zeros outside the table);
  col_id: their row ids (-1 outside); run_start, run_end (S,): the runs of
  the stretch's positions; kept_d2, kept_id (S, k): the k best so far of the
  stretch's points. Returns their new k best, in the stretch's order."""
  return _lsh_knn.stretch_nearest(
      xh, col_id, run_start, run_end, kept_d2, kept_id,
      jax.lax.axis_index(AXIS) * run_start.shape[0], chunk=chunk, halo=halo)


@functools.lru_cache(maxsize=None)
def _nearest_fn(mesh: Mesh, chunk: int, halo: int):
  return jax.jit(jax.shard_map(
      functools.partial(_local_nearest, chunk=chunk, halo=halo), mesh=mesh,
      in_specs=(P(AXIS),) * 6, out_specs=(P(AXIS), P(AXIS))))


def _stretch_ids(order: np.ndarray, devices: int, halo: int) -> np.ndarray:
  """(devices, per + 2 halo): the row ids at each device's stretch of one
  table's sorted positions and `halo` positions either side (-1 outside
  the table)."""
  per = order.shape[0] // devices
  padded = np.concatenate([np.full(halo, -1), order, np.full(halo, -1)])
  return padded[np.arange(devices)[:, None] * per +
                np.arange(per + 2 * halo)[None, :]]


def _sharded_rows(x, mesh: Mesh) -> jax.Array:
  return jax.device_put(np.ascontiguousarray(x), NamedSharding(mesh, P(AXIS)))


def candidate_radii_sq(points: jax.Array, tables: "_lsh_knn.Tables", n: int,
                       k: int, max_candidates: int, mesh: Mesh) -> np.ndarray:
  """(n,) squared LSH + KNN radii (-1: isolated) of a set whose centred rows
  `points` (D * per, d) are sharded over `mesh` (rows past n are padding),
  given its sorted tables over the same D * per rows (`_lsh_knn.Tables`,
  on the host or one device: (L, D * per) arrays).

  Per table: the rows in sorted order, each device a stretch of `per`
  positions and `max_candidates` on either side (`ring_take`); the k best
  of the stretch's points taken to it, merged with its windows' distances
  (`_local_nearest`, the one-device products), and taken back to the rows'
  owners by the inverse permutation.
  """
  devices = mesh.shape[AXIS]
  rows = points.shape[0]
  per = rows // devices
  halo = max_candidates
  chunk = _lsh_knn._block_shape(max_candidates).shape[0]  # pylint: disable=protected-access
  if per % chunk:
    raise ValueError(f"{per} rows per device is not a multiple of the "
                     f"chunk of {chunk} rows")
  order = np.asarray(tables.order)
  run_start, run_end = np.asarray(tables.run_start), np.asarray(tables.run_end)
  best_d2 = _sharded_rows(np.full((rows, k), np.inf, np.float32), mesh)
  best_id = _sharded_rows(np.full((rows, k), -1, np.int32), mesh)
  for t in range(order.shape[0]):
    col_id = _stretch_ids(order[t], devices, halo).reshape(-1).astype(np.int32)
    xh = ring_take(points, col_id, mesh)
    kept_d2 = ring_take(best_d2, order[t], mesh)
    kept_id = ring_take(best_id, order[t], mesh)
    new_d2, new_id = _nearest_fn(mesh, chunk, halo)(
        xh, _sharded_rows(col_id, mesh), _sharded_rows(run_start[t], mesh),
        _sharded_rows(run_end[t], mesh), kept_d2, kept_id)
    inverse = np.empty(rows, np.int32)
    inverse[order[t]] = np.arange(rows, dtype=np.int32)
    best_d2 = ring_take(new_d2, inverse, mesh)
    best_id = ring_take(new_id, inverse, mesh)
  kth = np.asarray(_sharded.host(best_d2))[:n, -1]
  return np.where(np.isinf(kth), -1.0, kth)


def _local_cover(queries, lo, hi, xh, rho2h, *, window: int, halo: int,
                 block: int):
  """Inside shard_map: does each of this device's C assigned queries
  (queries (C, d), their windows [lo, hi) in global sorted positions of
  one table, hi <= lo for none) lie in the ball of a candidate? xh
  (S + 2 halo, d) and rho2h (S + 2 halo,): the index's rows and squared
  radii at positions [j S - halo, (j + 1) S + halo). A window starts in
  [j S, (j + 1) S) (the host assigned it so) and holds at most `window`
  positions. Read in blocks of `block` queries (`_lsh_knn._table_cover`'s
  products: each query against its gathered candidates)."""
  size = xh.shape[0] - 2 * halo
  first = jax.lax.axis_index(AXIS) * size - halo  # xh[0]'s position
  dim = queries.shape[1]
  xh_sq = jnp.sum(xh * xh, axis=1)
  offsets = jnp.arange(window, dtype=jnp.int32)

  def body(b, hits):
    rows = lambda x: jax.lax.dynamic_slice_in_dim(x, b * block, block)
    g = rows(queries)
    pos = rows(lo)[:, None] + offsets  # (block, window) global positions
    local = jnp.clip(pos - first, 0, xh.shape[0] - 1)
    dots = jnp.einsum("bd,bkd->bk", g, xh[local],
                      precision=jax.lax.Precision.HIGHEST)
    d2 = knn.expand_sq_dists(jnp.sum(g * g, axis=1)[:, None] + xh_sq[local],
                             dots, dim)
    hit = jnp.any((pos < rows(hi)[:, None]) & (d2 <= rho2h[local]), axis=1)
    return jax.lax.dynamic_update_slice_in_dim(hits, hit, b * block, 0)

  count = queries.shape[0]
  hits = _sharded._varying(jnp.zeros(count, bool))  # pylint: disable=protected-access
  return jax.lax.fori_loop(0, count // block, body, hits)


@functools.lru_cache(maxsize=None)
def _cover_fn(mesh: Mesh, window: int, halo: int, block: int):
  return jax.jit(jax.shard_map(
      functools.partial(_local_cover, window=window, halo=halo, block=block),
      mesh=mesh, in_specs=(P(AXIS),) * 5, out_specs=P(AXIS)))


COVER_BLOCK = 128  # queries per block of `_local_cover`


def covered(index_points: jax.Array, rho2: np.ndarray,
            tables: "_lsh_knn.Tables", window: int, max_candidates: int,
            query_points: jax.Array, lo: np.ndarray, hi: np.ndarray,
            num_queries: int, mesh: Mesh) -> np.ndarray:
  """(num_queries,) bool: `_lsh_knn.covered` on the mesh.

  index_points (D * per, d): the index's centred rows, sharded; rho2 (D *
  per,): their squared radii (-1: isolated or padding); tables: its sorted
  tables over those rows; query_points: the queries' centred rows,
  sharded; lo, hi (num_queries, L): each query's window per table
  (`_lsh_knn._query_windows`). Per table, each query goes to the device
  whose stretch of sorted positions its window starts in (`ring_take` of
  its row), in rounds of at most `per` queries per device, and is compared
  there with its candidates; the hits are ORed on the host.
  """
  devices = mesh.shape[AXIS]
  rows = index_points.shape[0]
  per = rows // devices
  halo = max_candidates
  # Queries per block: the one-device rule (gathered candidates near 16
  # MB), at most COVER_BLOCK, so it divides every round's size.
  block = min(COVER_BLOCK, _lsh_knn.query_block(
      1, window, index_points.shape[1]))
  order = np.asarray(tables.order)
  rho2 = np.asarray(rho2, np.float32)
  hits = np.zeros(num_queries, bool)
  capacity = -(-per // COVER_BLOCK) * COVER_BLOCK
  for t in range(order.shape[0]):
    live = np.flatnonzero(hi[:, t] > lo[:, t])
    live = live[~hits[live]]  # a query already covered needs no more
    if not live.size:
      continue
    ids = _stretch_ids(order[t], devices, halo)
    xh = ring_take(index_points, ids.reshape(-1), mesh)
    rho2h = _sharded_rows(np.where(ids >= 0, rho2[np.maximum(ids, 0)], -1.0)
                          .astype(np.float32).reshape(-1), mesh)
    owner = lo[live, t] // per
    queue = [live[owner == j] for j in range(devices)]
    while any(q.size for q in queue):
      take = [q[:capacity] for q in queue]
      queue = [q[capacity:] for q in queue]
      # A power of two of queries per device (few shapes to compile), at
      # most the capacity.
      most = max(COVER_BLOCK, max(q.size for q in take))
      size = min(capacity, 1 << (most - 1).bit_length())
      assigned = np.full((devices, size), -1, np.int64)
      for j, q in enumerate(take):
        assigned[j, :q.size] = q
      flat = assigned.reshape(-1)
      some = flat >= 0
      q_lo = np.where(some, lo[np.maximum(flat, 0), t], 0).astype(np.int32)
      q_hi = np.where(some, hi[np.maximum(flat, 0), t], 0).astype(np.int32)
      got = np.asarray(_sharded.host(_cover_fn(mesh, window, halo, block)(
          ring_take(query_points, flat, mesh), _sharded_rows(q_lo, mesh),
          _sharded_rows(q_hi, mesh), xh, rho2h)))
      hits[flat[some & got]] = True
  return hits


# The set on the mesh, its index, and the exact radii the error estimate
# reads: the one-device classes' interface (`_lsh_knn.Prepared`, `Indexed`),
# so `fill_width`, `error_estimate` and `exact_indicator` run unchanged.


class Prepared(_lsh_knn.Prepared):
  """`_lsh_knn.Prepared` of a set on the mesh: its centred rows (padding
  rows 0) and projections, sharded by rows; keys gathered to the host
  (`points_sq` and `rescaled` as on one device)."""

  def __init__(self, points: _sharded.ShardedSet, centre, family,  # pylint: disable=super-init-not-called
               max_candidates: int, projected=None):
    self.n, self.mesh = points.n, points.mesh
    self.size = points.x.shape[0]
    self.shape_ref = _lsh_knn._block_shape(max_candidates)  # pylint: disable=protected-access
    self.points = _sharded._centred(points.x, points.pad, jnp.asarray(centre))  # pylint: disable=protected-access
    projected = projected or _sharded.project(points, family, centre)
    self.values = projected.values
    self.valid = jnp.asarray(np.arange(self.size) < self.n)
    self.family = family
    self.block = points.block  # divides the rows each device holds
    self.pad = points.pad
    self._sq = None

  def keys(self, width: float):
    """(size, L) key pairs and order keys, on the host."""
    key1, key2 = self.family.keys(self.values, width)
    order_key = self.values[:, ::self.family.num_hashes]
    return tuple(_sharded.host(a) for a in (key1, key2, order_key))

  def take(self, rows: np.ndarray) -> np.ndarray:
    """The centred rows `rows` (few), on the host (every process)."""
    return _sharded.replicated_value(_sharded.take_rows(
        self.points, rows, self.mesh))


def fits_layout(points: _sharded.ShardedSet, max_candidates: int) -> bool:
  """Whether the chunk of max_candidates divides the rows each device
  holds (true at the default 128; else the one-device code serves it)."""
  return points.per % _lsh_knn._block_shape(max_candidates).shape[0] == 0  # pylint: disable=protected-access


class Indexed(_lsh_knn.Indexed):
  """`_lsh_knn.Indexed` of a set on the mesh: tables sorted on one device
  from the gathered keys, candidate radii on the mesh."""

  def __init__(self, prepared: Prepared, width: float, k: int):  # pylint: disable=super-init-not-called
    self.prepared, self.width, self.k = prepared, width, k
    self.tables = _lsh_knn._sort_tables(*prepared.keys(width), prepared.n)  # pylint: disable=protected-access
    rho2 = np.full(prepared.size, -1.0, np.float32)
    rho2[:prepared.n] = candidate_radii_sq(
        prepared.points, self.tables, prepared.n, k,
        prepared.shape_ref.shape[1], prepared.mesh)
    self.rho2 = rho2  # host: a replicated input of every kernel reading it
    self._exact = None
    self._isolated = None

  def exact_radii_sq(self, which: np.ndarray) -> np.ndarray:
    """Exact squared NND_k of the points `which` (kept): the whole set's by
    the ring (`_sharded.nearest_sq`) when more than a third is missing,
    else theirs against every shard."""
    n = self.prepared.n
    if self._exact is None:
      self._exact = np.full(n, np.nan, np.float32)
    missing = which[np.isnan(self._exact[which])]
    if 3 * missing.size > n:
      self._exact = _sharded.host(_sharded.nearest_sq(
          self.prepared.points, self.prepared.pad, self.k,
          self.prepared.block, self.prepared.mesh))[:n, self.k - 1]
    elif missing.size:
      self._exact[missing] = exact_kth_sq(self.prepared, missing, self.k)
    return self._exact[which]

  def rescaled(self, exponent: int) -> "Indexed":
    out = super().rescaled(exponent)
    # The radii times 2^(2 exponent) (exact), still on the host.
    out.rho2 = np.where(self.rho2 < 0, self.rho2,
                        np.ldexp(self.rho2, 2 * exponent)).astype(np.float32)
    return out

def _local_kth(rows, rows_id, points, points_sq, num_valid, *, k: int,
               block: int):
  """Inside shard_map: the k smallest squared distances from `rows`
  (replicated, ids rows_id) to this device's points (self excluded by
  id), merged over the devices."""
  per, dim = points.shape
  first = jax.lax.axis_index(AXIS) * per
  rows_sq = jnp.sum(rows * rows, axis=1)

  def body(j, best):
    cols = jax.lax.dynamic_slice_in_dim(points, j * block, block)
    cols_sq = jax.lax.dynamic_slice_in_dim(points_sq, j * block, block)
    index = first + j * block + jnp.arange(block)
    dots = jnp.dot(rows, cols.T, precision=jax.lax.Precision.HIGHEST)
    d2 = knn.expand_sq_dists(rows_sq[:, None] + cols_sq[None, :], dots, dim)
    d2 = jnp.where((index[None, :] >= num_valid) |
                   (index[None, :] == rows_id[:, None]), jnp.inf, d2)
    return knn._merge_smallest(best, d2)  # pylint: disable=protected-access

  best = jax.lax.fori_loop(
      0, per // block, body,
      _sharded._varying(jnp.full((rows.shape[0], k), jnp.inf, jnp.float32)))  # pylint: disable=protected-access
  every = jax.lax.all_gather(best, AXIS, axis=1, tiled=True)
  neg, _ = jax.lax.top_k(-every, k)
  return -neg[None, :, -1]  # every device's copy (the same values)


@functools.lru_cache(maxsize=None)
def _kth_fn(mesh: Mesh, k: int, block: int):
  return jax.jit(jax.shard_map(
      functools.partial(_local_kth, k=k, block=block), mesh=mesh,
      in_specs=(P(), P(), P(AXIS), P(AXIS), P()), out_specs=P(AXIS)))


def exact_kth_sq(prepared: Prepared, which: np.ndarray, k: int) -> np.ndarray:
  """Exact squared NND_k of the points `which` of a set on the mesh, in
  calls of 256 (each one pass over every device's rows)."""
  out = np.empty(which.size, np.float32)
  block = COVER_BLOCK
  for start in range(0, which.size, 256):
    part = which[start:start + 256]
    ids = np.full(256 if which.size > 64 else 64, -1, np.int32)
    ids[:part.size] = part
    rows = prepared.take(np.maximum(ids, 0))  # numpy: replicated
    got = np.asarray(_kth_fn(prepared.mesh, k, block)(
        rows, ids, prepared.points, prepared.points_sq,
        np.int32(prepared.n)).addressable_data(0))[0]
    out[start:start + part.size] = got[:part.size]
  return out


def cover(index: Indexed, queries: Prepared) -> np.ndarray:
  """`_lsh_knn.covered` of a set on the mesh against an index on it."""
  key1, key2, order_key = queries.keys(index.width)
  max_candidates = index.prepared.shape_ref.shape[1]
  largest = max(1, int(_lsh_knn._largest_bucket(index.tables)))  # pylint: disable=protected-access
  window = min(max_candidates, 1 << (largest - 1).bit_length())
  lo, hi = (np.asarray(a)[:queries.n] for a in _lsh_knn._query_windows(  # pylint: disable=protected-access
      key1, key2, order_key, queries.n, index.tables, index.prepared.n,
      window=window))
  return covered(index.prepared.points, np.asarray(index.rho2), index.tables,
                 window, max_candidates, queries.points, lo, hi, queries.n,
                 index.prepared.mesh)
