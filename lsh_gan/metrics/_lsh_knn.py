"""LSH + KNN precision and recall: k-NN balls among hash-bucket candidates
(private; the public function is `lsh_knn.lsh_knn_precision_recall`).

Candidates (this project's definition): both sets are hashed at one width w
(the buckets only choose candidates; each side's balls keep their own k-NN
radii). In table l the points are sorted by bucket key and, within a bucket,
by their projection on the table's first direction; the candidates of x
among a set S are the points of S in x's bucket that lie within
W = ceil(max_candidates / 2) positions of x in that order, so at most
max_candidates per table; C_S(x) is their union over the tables.

  rho(r) = k-th smallest distance from r to C_R(r) \\ {r}, over distinct
           candidates; a point with fewer than k candidates is isolated and
           covers nothing.
  precision = 1/|G| sum_g 1[exists r in C_R(g): d(g, r) <= rho(r)]
  recall    = 1/|R| sum_r 1[exists g in C_G(r): d(r, g) <= rho(g)]

Default width: the w at which the median real point shares its bucket with
BUCKET_MATES = 16 other real points (median over points and tables), found
by bisection on the real projections (keys and a sort per step, no
distances). A multiple of the k-NN distance does not serve every n: a bucket
is a slab product unbounded in d - K directions, so at a fixed multiple its
population grows about as n^(1 - K/d_int) while the window stays M.

The radii of a set come from that set's own sorted tables (so the real side
does not depend on the fake set); the coverage tests use the key-sorted union
of both sets, one pass per table for both: fake rows against real balls
(precision), real rows against fake balls (recall). Since candidates are a
subset of the set, rho(r) >= NND_k(r, R); with one bucket (a huge width) and
max_candidates >= 2 (n + m) every point is a candidate and the metrics equal
exact KNN.

How it is computed, without gathering candidates one by one: sorting a table
puts bucket-mates next to each other, so cutting the sorted order into chunks
of C = max(128, W) points, each point's window lies in its chunk and the W
points on either side. Per table and chunk, one dense (C x (C + 2W)) block of
squared distances (float32, full matmul precision, centred points) is masked
to same-key pairs within the window: cost L * n * (C + 2W) * d per set,
memory read once per table. (Chunks of W = 32 rows ran XLA's CPU batched
matmul at 22 GFLOP/s; 128 rows at about 100.)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.metrics import _checks
from lsh_gan.metrics import knn
from lsh_gan.metrics import _hashing

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


def _chunked(x, chunk, halo):
  """(n_pad, ...) -> rows (nc, chunk, ...) and columns (nc, chunk + 2 halo, ...).

  A chunk's columns are its rows plus the `halo` points before and after it
  (zeros, later masked as invalid, past either end); halo <= chunk.
  """
  nc = x.shape[0] // chunk
  zeros = jnp.zeros_like(x[:halo])
  before = jnp.concatenate([zeros, x[:-halo]]).reshape((nc, chunk) + x.shape[1:])
  after = jnp.concatenate([x[halo:], zeros]).reshape((nc, chunk) + x.shape[1:])
  rows = x.reshape((nc, chunk) + x.shape[1:])
  return rows, jnp.concatenate([before[:, :halo], rows, after[:, chunk - halo:]],
                               axis=1)


def _window_sq_dists(x, chunk, halo):
  """Squared distances of each chunk's rows to its columns (see `_chunked`).

  Three products per chunk (the halo before, the chunk itself, the halo
  after) instead of one against a concatenated copy of the columns: the
  halos are the only copies made.
  """
  nc, dim = x.shape[0] // chunk, x.shape[1]
  rows = x.reshape(nc, chunk, dim)
  zeros = jnp.zeros((1, halo, dim), x.dtype)
  before = jnp.concatenate([zeros, rows[:-1, chunk - halo:]])
  after = jnp.concatenate([rows[1:, :halo], zeros])
  dot = lambda a, b: jnp.einsum("cid,cjd->cij", a, b,
                                precision=jax.lax.Precision.HIGHEST)
  dots = jnp.concatenate([dot(rows, before), dot(rows, rows),
                          dot(rows, after)], axis=2)
  sq_rows, sq_cols = _chunked(jnp.sum(x * x, axis=1), chunk, halo)
  return knn.expand_sq_dists(sq_rows[:, :, None] + sq_cols[:, None, :], dots,
                             dim)


def _table_view(points, key1, key2, order_key, valid, chunk, halo):
  """Sorts one table's points by key: sorted points and chunked data.

  Within a bucket, points are ordered by `order_key` (a projection on a
  random direction), so the window around a point holds bucket-mates that
  are close along that direction rather than arbitrary ones.
  """
  n_pad = points.shape[0]
  index = jnp.arange(n_pad, dtype=jnp.int32)
  # Padding sorts last: its keys are the largest and it is marked invalid.
  big = jnp.uint32(0xFFFFFFFF)
  k1 = jnp.where(valid, key1, big)
  k2 = jnp.where(valid, key2, big)
  inv = (~valid).astype(jnp.uint32)
  _, k1, k2, _, order = jax.lax.sort((inv, k1, k2, order_key, index),
                                     num_keys=4, is_stable=True)
  pos = index  # sorted position
  data = {}
  for name, v in (("k1", k1), ("k2", k2), ("valid", valid[order]),
                  ("pos", pos), ("id", order)):
    data[name] = _chunked(v, chunk, halo)
  return points[order], data


def _pair_mask(data, halo):
  (r1, c1), (r2, c2) = data["k1"], data["k2"]
  # The columns added before the first and after the last chunk are zeros,
  # so their `valid` is False and their positions never matter.
  (rv, cv), (rp, cp) = data["valid"], data["pos"]
  same = (r1[:, :, None] == c1[:, None, :]) & (r2[:, :, None] == c2[:, None, :])
  window = jnp.abs(rp[:, :, None] - cp[:, None, :]) <= halo
  return same & window & rv[:, :, None] & cv[:, None, :] & (
      rp[:, :, None] != cp[:, None, :])


@jax.jit
def _table_nearest(best_d2, best_id, points, key1, key2, order_key, valid,
                   shape_ref):
  """Merges one table's candidates into each point's k best (distinct)."""
  chunk, halo = shape_ref.shape
  n_pad, k = best_d2.shape
  sorted_points, data = _table_view(points, key1, key2, order_key, valid,
                                    chunk, halo)
  mask = _pair_mask(data, halo)
  d2 = jnp.where(mask, _window_sq_dists(sorted_points, chunk, halo), jnp.inf)
  col_id = jnp.broadcast_to(data["id"][1][:, None, :], d2.shape)
  d2 = d2.reshape(n_pad, chunk + 2 * halo)
  col_id = col_id.reshape(n_pad, chunk + 2 * halo)
  # Merge in the table's sorted order (moving the k kept values, not the
  # block rows), counting each candidate once: one table's candidates are
  # distinct points, so a repeat can only be one of the k entries kept.
  row_id = data["id"][0].reshape(n_pad)
  kept_d2, kept_id = best_d2[row_id], best_id[row_id]
  seen = jnp.any(col_id[:, :, None] == kept_id[:, None, :], axis=2)
  d2 = jnp.where(seen, jnp.inf, d2)
  neg, pick = jax.lax.top_k(-jnp.concatenate([kept_d2, d2], axis=1), k)
  ids = jnp.take_along_axis(jnp.concatenate([kept_id, col_id], axis=1), pick,
                            axis=1)
  ids = jnp.where(jnp.isinf(neg), -1, ids)
  # Back to the original order of the rows.
  return (jnp.zeros_like(best_d2).at[row_id].set(-neg),
          jnp.zeros_like(best_id).at[row_id].set(ids))


@jax.jit
def _table_cover(covered, points, key1, key2, order_key, valid, is_real, rho2,
                 shape_ref):
  """Per point of the union: inside a candidate's ball from the other set?

  Fake rows are tested against real balls (precision), real rows against
  fake balls (recall), in the same pass.
  """
  chunk, halo = shape_ref.shape
  n_pad = points.shape[0]
  sorted_points, data = _table_view(points, key1, key2, order_key, valid,
                                    chunk, halo)
  order = data["id"]
  real_rows, real_cols = _chunked(is_real[order[0].reshape(-1)], chunk, halo)
  rho_cols = _chunked(rho2[order[0].reshape(-1)], chunk, halo)[1]
  other = real_rows[:, :, None] != real_cols[:, None, :]
  mask = _pair_mask(data, halo) & other
  d2 = _window_sq_dists(sorted_points, chunk, halo)
  hit = jnp.any(mask & (d2 <= rho_cols[:, None, :]), axis=2).reshape(n_pad)
  row_id = order[0].reshape(n_pad)
  return covered | jnp.zeros_like(covered).at[row_id].set(hit)


def _order_keys(values, family):
  """(rows, L) within-bucket order: the projection on each table's first
  direction. (A Z-order of the point's place in its K-D cell read no better
  in a trial: -0.039 against -0.043 from exact KNN at n = 50k.)"""
  return values[:, ::family.num_hashes]


@jax.jit
def _share_with_mates(key1, key2, num_valid, target):
  """Fraction of (point, table) pairs whose bucket holds >= target others."""
  s1, s2, run_end = _hashing.sort_tables(key1, key2, num_valid)
  size = s1.shape[1]
  position = jnp.arange(size, dtype=jnp.int32)[None, :]
  first = jnp.concatenate([jnp.ones((s1.shape[0], 1), bool),
                           (s1[:, 1:] != s1[:, :-1]) | (s2[:, 1:] != s2[:, :-1])],
                          axis=1)
  run_start = jax.lax.cummax(jnp.where(first, position, 0), axis=1)
  mates = jnp.minimum(run_end, num_valid) - run_start - 1
  hits = jnp.sum((mates >= target) & (position < num_valid), dtype=jnp.int32)
  return hits / (num_valid * s1.shape[0])


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
    if float(_share_with_mates(key1, key2, prepared.n, target)) >= 0.5:
      hi = mid
    else:
      lo = mid
  return math.exp(hi)


def _block_shape(max_candidates: int):
  """(chunk rows, halo) as the shape of a dummy array (static under jit)."""
  halo = math.ceil(max_candidates / 2)
  return jnp.zeros((max(CHUNK_ROWS, halo), halo))


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
    values = projected.values
    self.values = (values[:self.size] if values.shape[0] >= self.size else
                   _pad_to(values, self.size))
    self.valid = _row_mask(self.size, self.n)
    self.family = family

  def rescaled(self, exponent: int) -> "Prepared":
    """The same set with its points and projections times 2^exponent."""
    out = object.__new__(Prepared)
    out.__dict__.update(self.__dict__)
    out.points = knn.times_power_of_two(self.points, exponent)
    out.values = knn.times_power_of_two(self.values, exponent)
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


def padded_radii_sq(prepared: Prepared, width: float, k: int):
  """(size,) squared radius rho^2 per row; -1 for isolated and padding."""
  key1, key2, order_keys = prepared.keys(width)
  best_d2 = jnp.full((prepared.size, k), jnp.inf, jnp.float32)
  best_id = jnp.full((prepared.size, k), -1, jnp.int32)
  for table in range(prepared.family.num_tables):
    best_d2, best_id = _table_nearest(best_d2, best_id, prepared.points,
                                      key1[:, table], key2[:, table],
                                      order_keys[:, table], prepared.valid,
                                      prepared.shape_ref)
  return _kth_radius(best_d2, prepared.valid)


def rescale_radii_sq(rho2: jax.Array, exponent: int) -> jax.Array:
  """Squared radii times 2^(2 exponent); the -1 flags stay negative."""
  return jnp.where(rho2 < 0, rho2, knn.times_power_of_two(rho2, 2 * exponent))


def candidate_radii_sq(prepared: Prepared, width: float, k: int) -> np.ndarray:
  """(n,) squared LSH+KNN radius rho^2 of each point (-1 if isolated)."""
  return np.asarray(padded_radii_sq(prepared, width, k))[:prepared.n]


@jax.jit
def _count_hits(hit, fake_rows, real_rows):
  count = lambda mask: jnp.sum(hit & mask, dtype=jnp.int32)
  return count(fake_rows), count(real_rows)


def coverage(real: Prepared, fake: Prepared, width: float, real_rho2,
             fake_rho2) -> tuple[int, int]:
  """(fake points covered by a real ball, real points covered by a fake one).

  Both sets are sorted together in each table, hashed at `width`. The union
  is the two padded sets end to end (padding rows are invalid and sort
  last), so its shape depends only on the two size classes. `real_rho2` and
  `fake_rho2` are padded radii (`padded_radii_sq`).
  """
  points = jnp.concatenate([real.points, fake.points])
  values = jnp.concatenate([real.values, fake.values])
  key1, key2 = real.family.keys(values, width)
  order_keys = _order_keys(values, real.family)
  real_rows = jnp.concatenate([real.valid, jnp.zeros(fake.size, bool)])
  fake_rows = jnp.concatenate([jnp.zeros(real.size, bool), fake.valid])
  is_real = jnp.concatenate([jnp.ones(real.size, bool),
                             jnp.zeros(fake.size, bool)])
  rho2 = jnp.concatenate([real_rho2, fake_rho2])
  hit = jnp.zeros(points.shape[0], bool)
  for table in range(real.family.num_tables):
    hit = _table_cover(hit, points, key1[:, table], key2[:, table],
                       order_keys[:, table], real_rows | fake_rows, is_real,
                       rho2, real.shape_ref)
  fake_hits, real_hits = _count_hits(hit, fake_rows, real_rows)
  return int(fake_hits), int(real_hits)
