"""Metrics on embeddings sharded by rows over a `jax.sharding.Mesh` (private).

A set on the mesh is a global float32 array of D * per rows (D devices of
the mesh, flattened to one axis "data"), sharded by rows: the set's n valid
rows first, then padding rows, which a padding vector marks (0 for a valid
row, +inf for padding, sharded alike). `per`, the rows each device holds, is
a multiple of the distance block (`knn.block_size` of n / D rows), so every
kernel sees fixed shapes and a new n compiles at most a handful of them.

Nothing leaves the devices but per-point results and scalars, and no device
ever holds another device's rows beyond one visiting shard:

  k-NN radii of a set   a ring: each device keeps its rows and their k
                        smallest squared distances; the shards travel round
                        the ring (`ppermute`, D steps), each device merging
                        its rows' distances to the visiting shard, block by
                        block (the diagonal of a row's own block excluded
                        on the first step: neighbours are other points, by
                        index). A full product per set (the one-device code
                        computes half of it, using symmetry).
  precision, recall,    a ring of the real shards, with their radii and their
  density, coverage     running minima, past the fake rows of every device:
                        each device keeps its fake rows' minima and counts;
                        after D steps every real shard is back home with its
                        own. Counts are then summed exactly (int64 on the host,
                        per shard, and across processes).
  FID                   mean (one pass) and the centred second moments (a
                        second pass): a row-sharded X^T X, partial sums per
                        device added by XLA's all-reduce.
  KID                   each subset's rows gathered by a psum of the rows each
                        device owns (one device contributes each row, the
                        others zeros: exact), then the one-device kernel.

Validation reads the global array with jitted reductions (finite, largest
magnitude) without copying it to the host; a set outside float32's
comfortable range is divided by a power of two (`_checks`) exactly as on one
device. The numbers are those of the one-device code: counts identical unless
a distance lies within float32 rounding of a radius (the two compute their
sums in different orders), FID and KID to float32 rounding.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from lsh_gan.metrics import _checks
from lsh_gan.metrics import knn

AXIS = "data"
_HIGHEST = jax.lax.Precision.HIGHEST


def is_sharded(x) -> bool:
  """Whether x is a concrete jax.Array laid out over more than one device."""
  return (isinstance(x, jax.Array) and
          not isinstance(x, jax.core.Tracer) and
          len(x.sharding.device_set) > 1)


def mesh_for(mesh, *sets):
  """The mesh a call on these sets runs on, or None for one device."""
  return as_mesh(mesh, *sets) if wants_mesh(mesh, *sets) else None


def wants_mesh(mesh, *sets) -> bool:
  """Whether a call goes to the sharded code: a mesh was given, or a set is
  a jax.Array spread over several devices."""
  return mesh is not None or any(is_sharded(x) for x in sets)


def as_mesh(mesh, *sets) -> Mesh:
  """A one-axis ("data") mesh: the given mesh's devices flattened, else the
  mesh a sharded input lives on, else every device of every process."""
  if mesh is None:
    for x in sets:
      if is_sharded(x) and isinstance(x.sharding, NamedSharding):
        mesh = x.sharding.mesh
        break
  if mesh is None:
    devices = np.asarray(jax.devices())
  elif isinstance(mesh, Mesh):
    devices = np.asarray(mesh.devices)
  else:
    raise ValueError(f"mesh={mesh!r} must be a jax.sharding.Mesh or None")
  devices = devices.reshape(-1)
  return Mesh(devices, (AXIS,))


def replicated_value(x) -> np.ndarray:
  """The value of a small result on this process: its local copy when it is
  replicated (or on one device), else gathered (every process must call
  it, as for any collective)."""
  if x.is_fully_replicated:
    return np.asarray(x.addressable_data(0))
  return host(x)


@jax.jit
def _global_checks(x):
  """(max |x| as float32, whether any value is not finite, how many (int32:
  shown, not relied on), the first bad row)."""
  finite = jnp.isfinite(x)
  bad_rows = ~jnp.all(finite, axis=1)
  return (jnp.max(jnp.where(finite, jnp.abs(x), 0)).astype(jnp.float32),
          jnp.any(bad_rows), jnp.sum(~finite, dtype=jnp.int32),
          jnp.argmax(bad_rows))


def _checked_array(x: jax.Array, name: str) -> float:
  """Validates a jax.Array set in place; returns its largest |value|."""
  _checks.check_layout(x.shape, x.dtype, name)
  max_abs, any_bad, bad, row = (replicated_value(v)
                                for v in _global_checks(x))
  if any_bad:
    raise ValueError(f"{name}: contains NaN or inf ({int(bad)} values; "
                     f"first in row {int(row)})")
  return float(max_abs)


@dataclasses.dataclass(frozen=True)
class ShardedSet:
  """A set on the mesh, in units of 2^exponent (see the module docstring).

  Attributes:
    x: (D * per, d) float32 rows, sharded by rows; padding rows are 0.
    pad: (D * per,) 0 for valid rows, +inf for padding.
    n: valid rows.
    block: the distance block (divides per).
    max_abs: the largest |value| in data units.
    mesh: the one-axis mesh.
  """
  x: jax.Array
  pad: jax.Array
  n: int
  block: int
  max_abs: float
  mesh: Mesh

  @property
  def dim(self) -> int:
    return self.x.shape[1]

  @property
  def devices(self) -> int:
    return self.mesh.shape[AXIS]

  @property
  def per(self) -> int:
    return self.x.shape[0] // self.devices


def layout(n: int, dim: int, devices: int) -> tuple[int, int]:
  """(block, rows per device) for n rows of dim features over `devices`."""
  share = -(-n // devices)
  block = knn.block_size(share, dim)
  return block, -(-share // block) * block


def _pad_rows(x, low, high, *, rows: int):
  """x * low * high (powers of two, exact) as float32, zero rows appended to
  `rows`, with its padding vector (0 for x's rows, +inf after)."""
  n = x.shape[0]
  x = x.astype(jnp.float32) * low * high
  pad = jnp.where(jnp.arange(rows) < n, 0.0, jnp.inf).astype(jnp.float32)
  return jnp.pad(x, ((0, rows - n), (0, 0))), pad


@functools.lru_cache(maxsize=None)
def _padded(rows: int, sharding):
  return jax.jit(functools.partial(_pad_rows, rows=rows),
                 out_shardings=(sharding, sharding))


def _factors(exponent: int):
  """Two float32 powers of two whose product is 2^-exponent (each normal)."""
  half = -exponent // 2
  return np.float32(2.0 ** half), np.float32(2.0 ** (-exponent - half))


def checked(x, name: str):
  """(x, its largest |value|): a jax.Array checked on its devices, anything
  else read and checked on the host (`_checks.host_embeddings`; a float64
  array stays float64 until `place` scales it)."""
  if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
    return x, _checked_array(x, name)
  return _checks.host_embeddings(x, name)


def place(x, max_abs: float, exponent: int, mesh: Mesh) -> ShardedSet:
  """A checked set (`checked`) in units 2^exponent, laid out on the mesh.

  Host data (an array, or a memory-mapped file) go to each device straight
  from its own rows, scaled and padded one device at a time (no second host
  copy of the set beyond one device's rows; on a CPU backend the devices'
  buffers are themselves host memory); a jax.Array is scaled and padded by one
  jitted call that lays the result out by rows.
  """
  n, dim = x.shape
  devices = mesh.shape[AXIS]
  block, per = layout(n, dim, devices)
  rows = per * devices
  sharding = NamedSharding(mesh, P(AXIS))
  if isinstance(x, jax.Array) and x.sharding.device_set != set(
      mesh.devices.flat):
    if not x.is_fully_addressable:
      raise ValueError(
          f"a set on devices {sorted(d.id for d in x.sharding.device_set)} "
          f"cannot be scored on a mesh of devices "
          f"{sorted(d.id for d in mesh.devices.flat)} (the mesh given, or "
          "the other set's); put both sets on one mesh, or pass mesh=None to "
          "use its own devices")
    x = np.asarray(x)  # e.g. on one device: to the mesh through the host
  if isinstance(x, jax.Array):
    values, pad = _padded(rows, sharding)(x, *_factors(exponent))
    return ShardedSet(values, pad, n, block, max_abs, mesh)

  def device_rows(index):
    """One device's rows, scaled and padded (nothing else of x copied)."""
    start, stop, _ = index[0].indices(rows)
    out = np.zeros((stop - start, dim), np.float32)
    end = max(start, min(stop, n))
    if exponent:
      np.ldexp(x[start:end], -exponent, out=out[:end - start],
               casting="same_kind")
    else:
      out[:end - start] = x[start:end]
    return out

  def device_pad(index):
    start, stop, _ = index[0].indices(rows)
    return np.where(np.arange(start, stop) < n, 0.0, np.inf).astype(
        np.float32)

  return ShardedSet(_built_on_devices((rows, dim), sharding, device_rows),
                    _built_on_devices((rows,), sharding, device_pad),
                    n, block, max_abs, mesh)


def _built_on_devices(shape, sharding, build) -> jax.Array:
  """A global array whose shards `build(index)` makes on the host, each put
  on its device before the next is built (`jax.make_array_from_callback`
  builds every local shard first: a second host copy of the set)."""
  shards = [jax.device_put(build(index), device) for device, index in
            sharding.addressable_devices_indices_map(shape).items()]
  return jax.make_array_from_single_device_arrays(shape, sharding, shards)


def reference_set(x, mesh: Mesh, name: str = "real"):
  """`_checks.reference_set` on the mesh: (set, exponent)."""
  x, max_abs = checked(x, name)
  exponent = _checks.unit_exponent(max_abs)
  return place(x, max_abs, exponent, mesh), exponent


def fake_set(x, dim: int, real_exponent: int, mesh: Mesh, name="fake"):
  """`_checks.fake_set` on the mesh: (set, shift, own exponent)."""
  x, max_abs = checked(x, name)
  shift, own = _checks.fake_units(x.shape[1], max_abs, dim, real_exponent,
                                  name)
  return place(x, max_abs, real_exponent + shift, mesh), shift, own


def host_rows(points: ShardedSet) -> np.ndarray:
  """The set's valid rows on the host (every process gets them all): for
  the metrics not computed on the mesh."""
  return host(points.x)[:points.n]


def mean_rows(points: ShardedSet) -> jax.Array:
  """The mean of the valid rows, replicated on the mesh."""
  return _centred_mean(points.x, points.pad, np.float32(0),
                       np.float32(points.n))


# Exact k-NN metrics.


@jax.jit
def _centred(x, pad, centre):
  return jnp.where((pad == 0)[:, None], x - centre, 0.0)


def _varying(x):
  """A per-device value (a loop carry inside shard_map starts as one)."""
  return jax.lax.pcast(x, (AXIS,), to="varying")


def _ring_permutation(devices: int):
  return [(i, (i + 1) % devices) for i in range(devices)]


def _blocks(x, block):
  return x.reshape((x.shape[0] // block, block) + x.shape[1:])


def _ring_radii(x, pad, *, k: int, block: int, devices: int):
  """Per local row, its k smallest squared distances to the set's other rows
  (inside shard_map: x (per, d), pad (per,) of this device)."""
  rows, rows_pad = _blocks(x, block), _blocks(pad, block)
  rows_sq = jnp.sum(rows * rows, axis=2)
  num = rows.shape[0]
  eye = jnp.eye(block, dtype=bool)

  def visit(step, carry):
    best, cols, cols_sq, cols_pad = carry

    def pair(t, best):
      i, j = t // num, t % num
      d2 = knn._block_sq_dists(rows[i], rows_sq[i], rows_pad[i], cols[j],  # pylint: disable=protected-access
                               cols_sq[j], cols_pad[j])
      d2 = jnp.where(eye & (step == 0) & (i == j), jnp.inf, d2)
      return best.at[i].set(knn._merge_smallest(best[i], d2))  # pylint: disable=protected-access

    best = jax.lax.fori_loop(0, num * num, pair, best)
    cols, cols_sq, cols_pad = (
        jax.lax.ppermute(v, AXIS, _ring_permutation(devices))
        for v in (cols, cols_sq, cols_pad))
    return best, cols, cols_sq, cols_pad

  best = _varying(jnp.full((num, block, k), jnp.inf, jnp.float32))
  best, *_ = jax.lax.fori_loop(0, devices, visit,
                               (best, rows, rows_sq, rows_pad))
  return best.reshape(-1, k)


@functools.lru_cache(maxsize=None)
def _radii_fn(mesh: Mesh, k: int, block: int):
  return jax.jit(jax.shard_map(
      functools.partial(_ring_radii, k=k, block=block,
                        devices=mesh.shape[AXIS]),
      mesh=mesh, in_specs=(P(AXIS), P(AXIS)), out_specs=P(AXIS)))


def nearest_sq(points: jax.Array, pad: jax.Array, k: int, block: int,
               mesh: Mesh) -> jax.Array:
  """(rows, k) ascending squared distances of every row to its k nearest
  other rows (+inf for padding rows), sharded like the rows."""
  return _radii_fn(mesh, k, block)(points, pad)


def _ring_cross(fake, fake_pad, fake_rho2, real, real_pad, real_rho2_pr,
                real_rho2_dc, *, block: int, devices: int):
  """The four KNN statistics (`knn._cross_pair`), the real shards in a ring.

  Returns per local fake row (min of d^2 - rho_R^2, count of d^2 <= rho_R^2
  at density_k) and per local real row (min d^2, min of d^2 - rho_G^2).
  """
  fakes, fakes_pad = _blocks(fake, block), _blocks(fake_pad, block)
  fakes_sq = jnp.sum(fakes * fakes, axis=2)
  fakes_rho2 = _blocks(jnp.where(fake_pad == 0, fake_rho2, 0.0), block)
  num_fake = fakes.shape[0]
  reals = _blocks(real, block)
  num_real = reals.shape[0]
  valid = lambda rho2: _blocks(jnp.where(real_pad == 0, rho2, 0.0), block)
  travelling = (reals, jnp.sum(reals * reals, axis=2), _blocks(real_pad, block),
                valid(real_rho2_pr), valid(real_rho2_dc),
                _varying(jnp.full((num_real, block), jnp.inf, jnp.float32)),
                _varying(jnp.full((num_real, block), jnp.inf, jnp.float32)))

  def visit(_, carry):
    (fake_margin, fake_count), shard = carry
    cols, cols_sq, cols_pad, rho2_pr, rho2_dc, real_min, real_margin = shard

    def pair(t, acc):
      fake_margin, fake_count, real_min, real_margin = acc
      i, j = t // num_real, t % num_real
      d2 = knn._block_sq_dists(fakes[i], fakes_sq[i], fakes_pad[i], cols[j],  # pylint: disable=protected-access
                               cols_sq[j], cols_pad[j])
      fake_margin = fake_margin.at[i].min(
          jnp.min(d2 - rho2_pr[j][None, :], axis=1))
      fake_count = fake_count.at[i].add(
          jnp.sum(d2 <= rho2_dc[j][None, :], axis=1, dtype=jnp.int32))
      real_min = real_min.at[j].min(jnp.min(d2, axis=0))
      real_margin = real_margin.at[j].min(
          jnp.min(d2 - fakes_rho2[i][:, None], axis=0))
      return fake_margin, fake_count, real_min, real_margin

    fake_margin, fake_count, real_min, real_margin = jax.lax.fori_loop(
        0, num_fake * num_real, pair,
        (fake_margin, fake_count, real_min, real_margin))
    shard = (cols, cols_sq, cols_pad, rho2_pr, rho2_dc, real_min, real_margin)
    shard = tuple(jax.lax.ppermute(v, AXIS, _ring_permutation(devices))
                  for v in shard)
    return (fake_margin, fake_count), shard

  fake_acc = (_varying(jnp.full((num_fake, block), jnp.inf, jnp.float32)),
              _varying(jnp.zeros((num_fake, block), jnp.int32)))
  (fake_margin, fake_count), shard = jax.lax.fori_loop(
      0, devices, visit, (fake_acc, travelling))
  # After `devices` steps every real shard is home with its own minima.
  return (fake_margin.reshape(-1), fake_count.reshape(-1),
          shard[5].reshape(-1), shard[6].reshape(-1))


@functools.lru_cache(maxsize=None)
def _cross_fn(mesh: Mesh, block: int):
  spec = P(AXIS)
  return jax.jit(jax.shard_map(
      functools.partial(_ring_cross, block=block, devices=mesh.shape[AXIS]),
      mesh=mesh, in_specs=(spec,) * 7, out_specs=(spec,) * 4))


@functools.partial(jax.jit, static_argnums=(1,))
def _column(best, index: int):
  return best[:, index]


@jax.jit
def _per_point_counts(fake_margin, fake_count, fake_pad, real_min,
                      real_margin, real_rho2_dc, real_pad):
  """Per-point 0/1 (or count) values whose sums are the four metrics."""
  fake_ok, real_ok = fake_pad == 0, real_pad == 0
  return ((fake_ok & (fake_margin <= 0)).astype(jnp.int32),
          jnp.where(fake_ok, fake_count, 0),
          (real_ok & (real_margin <= 0)).astype(jnp.int32),
          (real_ok & (real_min <= real_rho2_dc)).astype(jnp.int32))


def global_sums(*arrays: jax.Array) -> list[int]:
  """Exact integer sums of row-sharded int32 arrays: each process sums its
  own shards in int64, then the processes' sums are added (sent as 31-bit
  pieces, since int64 needs JAX's x64 mode)."""
  local = [sum(int(np.sum(np.asarray(shard.data), dtype=np.int64))
               for shard in a.addressable_shards if shard.replica_id == 0)
           for a in arrays]
  if jax.process_count() == 1:
    return local
  pieces = np.array([[v & (2**31 - 1), v >> 31] for v in local], np.int32)
  gathered = np.asarray(multihost_utils.process_allgather(pieces))
  return [int(sum(int(p[i, 0]) + (int(p[i, 1]) << 31) for p in gathered))
          for i in range(len(arrays))]


@dataclasses.dataclass
class KNNSide:
  """The real side of the sharded KNN metrics: centred points and radii."""
  points: ShardedSet
  centre: jax.Array
  nearest: jax.Array  # (rows, max_k), sharded like the points
  max_k: int
  exponent: int


def knn_side(real: ShardedSet, exponent: int, max_k: int) -> KNNSide:
  _checks.enough_points(real.n, max_k, "real")
  mean = mean_rows(real)
  points = dataclasses.replace(real, x=_centred(real.x, real.pad, mean))
  nearest = nearest_sq(points.x, points.pad, max_k, points.block, real.mesh)
  return KNNSide(points, mean, nearest, max_k, exponent)


@jax.jit
def _scaled(x, low, high):
  return x * low * high


def knn_score(side: KNNSide, fake: ShardedSet, shift: int, *, k: int,
              density_k: int) -> dict[str, float]:
  """The four KNN metrics of a fake set in units 2^(exponent + shift)."""
  _checks.enough_points(fake.n, k, "fake")
  real, nearest, centre = side.points, side.nearest, side.centre
  if shift:
    real = dataclasses.replace(real, x=_scaled(real.x, *_factors(shift)))
    nearest = _scaled(nearest, *_factors(2 * shift))
    centre = _scaled(centre, *_factors(shift))
  # Fake and real blocks must match for the cross kernel: the fake set
  # takes the real set's block (and so its own rows per device).
  fake_points = _reblocked(dataclasses.replace(
      fake, x=_centred(fake.x, fake.pad, centre)), real.block)
  fake_best = nearest_sq(fake_points.x, fake_points.pad, k, real.block,
                         real.mesh)
  fake_rho2 = _column(fake_best, k - 1)
  rho_pr, rho_dc = _column(nearest, k - 1), _column(nearest, density_k - 1)
  out = _cross_fn(real.mesh, real.block)(
      fake_points.x, fake_points.pad, fake_rho2, real.x, real.pad, rho_pr,
      rho_dc)
  precision, density, recall, coverage = global_sums(*_per_point_counts(
      out[0], out[1], fake_points.pad, out[2], out[3], rho_dc, real.pad))
  return {"precision": precision / fake.n, "recall": recall / real.n,
          "density": density / (density_k * fake.n),
          "coverage": coverage / real.n}


def _reblocked(points: ShardedSet, block: int) -> ShardedSet:
  """The set with rows per device a multiple of `block` (padding added)."""
  if points.per % block == 0:
    return dataclasses.replace(points, block=block)
  per = -(-points.per // block) * block
  sharding = NamedSharding(points.mesh, P(AXIS))
  x, pad = _repadded(points.per, per, sharding)(points.x, points.pad)
  return dataclasses.replace(points, x=x, pad=pad, block=block)


def _repad(x, pad, *, per: int, new_per: int):
  devices = x.shape[0] // per
  more = new_per - per
  x = jnp.pad(x.reshape(devices, per, -1), ((0, 0), (0, more), (0, 0)))
  pad = jnp.pad(pad.reshape(devices, per), ((0, 0), (0, more)),
                constant_values=jnp.inf)
  return x.reshape(devices * new_per, -1), pad.reshape(-1)


@functools.lru_cache(maxsize=None)
def _repadded(per: int, new_per: int, sharding):
  return jax.jit(functools.partial(_repad, per=per, new_per=new_per),
                 out_shardings=(sharding, sharding))


def knn_all_four(real, fake, *, k: int, density_k: int, mesh=None):
  mesh = as_mesh(mesh, real, fake)
  real_set, exponent = reference_set(real, mesh)
  fake_set_, shift, _ = fake_set(fake, real_set.dim, exponent, mesh)
  side = knn_side(real_set, exponent, max(k, density_k))
  return knn_score(side, fake_set_, shift, k=k, density_k=density_k)


# FID and KID.


@jax.jit
def _centred_mean(x, pad, centre, n):
  return jnp.sum(jnp.where((pad == 0)[:, None], x - centre, 0.0), axis=0) / n


@jax.jit
def _centred_cov(x, pad, centre, mean, n):
  centred = jnp.where((pad == 0)[:, None], x - centre - mean, 0.0)
  return jnp.dot(centred.T, centred, precision=_HIGHEST) / (n - 1)


def gaussian_stats(points: ShardedSet, centre, exponent: int):
  """`fid.gaussian_stats` of a set on the mesh: the mean in one pass, the
  centred covariance in a second (row-sharded products, summed by XLA)."""
  from lsh_gan.metrics import fid  # pylint: disable=g-import-not-at-top
  n = np.float32(points.n)
  mean = _centred_mean(points.x, points.pad, centre, n)
  cov = _centred_cov(points.x, points.pad, centre, mean, n)
  return fid.stats_from_moments(replicated_value(mean),
                                replicated_value(cov), exponent)


def _local_take(x, indices, *, per: int):
  """Rows of the global array at `indices`: each device contributes the rows
  it holds, zeros elsewhere, and a psum adds them (exact: one term each)."""
  local = indices - jax.lax.axis_index(AXIS) * per
  here = (local >= 0) & (local < per)
  rows = x[jnp.clip(local, 0, per - 1)]
  return jax.lax.psum(jnp.where(here[..., None], rows, 0.0), AXIS)


@functools.lru_cache(maxsize=None)
def _take_fn(mesh: Mesh, per: int):
  return jax.jit(jax.shard_map(
      functools.partial(_local_take, per=per), mesh=mesh,
      in_specs=(P(AXIS), P()), out_specs=P()))


def take_rows(x: jax.Array, rows, mesh: Mesh) -> jax.Array:
  """The rows `rows` (few) of a row-sharded global array, replicated."""
  return _take_fn(mesh, x.shape[0] // mesh.shape[AXIS])(
      x, np.asarray(rows, np.int32))


def take(points: ShardedSet):
  """`take(x, indices)` for `fid.kernel_distance_in_units` (x is ignored:
  the rows come from `points`)."""
  fn = _take_fn(points.mesh, points.per)
  return lambda _, indices: fn(points.x, np.asarray(indices, np.int32))


def frechet_distance(real, fake, *, mesh=None) -> dict[str, float]:
  from lsh_gan.metrics import fid  # pylint: disable=g-import-not-at-top
  mesh = as_mesh(mesh, real, fake)
  real_set, exponent = reference_set(real, mesh)
  fake_set_, shift, _ = fake_set(fake, real_set.dim, exponent, mesh)
  _checks.enough_points(real_set.n, 1, "real")
  _checks.enough_points(fake_set_.n, 1, "fake")
  mean = mean_rows(real_set)
  return fid.frechet_from_stats(
      gaussian_stats(real_set, mean, exponent),
      gaussian_stats(fake_set_, knn.times_power_of_two(mean, -shift),
                     exponent + shift))


def kernel_distance(real, fake, *, mesh=None, **kwargs) -> dict[str, float]:
  from lsh_gan.metrics import fid  # pylint: disable=g-import-not-at-top
  mesh = as_mesh(mesh, real, fake)
  real_set, exponent = reference_set(real, mesh)
  fake_set_, shift, _ = fake_set(fake, real_set.dim, exponent, mesh)
  return kernel_distance_in_units(real_set, exponent, fake_set_,
                                  exponent + shift, **kwargs)


def kernel_distance_in_units(real: ShardedSet, real_exponent: int,
                             fake: ShardedSet, fake_exponent: int, **kwargs):
  from lsh_gan.metrics import fid  # pylint: disable=g-import-not-at-top
  max_exponent = lambda s, e: (_checks.magnitude_exponent(s.max_abs)
                               if s.max_abs else e)
  return fid.kernel_distance_in_units(
      real.x, real_exponent, fake.x, fake_exponent,
      max_exponents=(max_exponent(real, real_exponent),
                     max_exponent(fake, fake_exponent)),
      sizes=(real.n, fake.n), take=lambda x, i: take(
          real if x is real.x else fake)(x, i), **kwargs)


# LSH-only: hash tables sorted per device, counts summed round the ring.


@dataclasses.dataclass(frozen=True)
class Projected:
  """`_hashing.Projected` of a set on the mesh: (rows, L*K) projections
  sharded by rows, the set's padding vector, and the sample radii."""
  values: jax.Array
  pad: jax.Array
  n: int
  mesh: Mesh
  sample_radii: np.ndarray | None = None

  def rescaled(self, exponent: int) -> "Projected":
    radii = (None if self.sample_radii is None else
             np.ldexp(self.sample_radii, exponent))
    return dataclasses.replace(
        self, values=_scaled(self.values, *_factors(-exponent)),
        sample_radii=radii)


@jax.jit
def _project_rows(x, centre, projections):
  shift = jnp.dot(centre, projections, precision=_HIGHEST)
  return jnp.dot(x, projections, precision=_HIGHEST) - shift


def _local_candidates(x, sample, sample_index, centre, *, n: int, keep: int):
  """One device's part of `_hashing.sample_radii`'s float32 pass."""
  from lsh_gan.metrics import _hashing  # pylint: disable=g-import-not-at-top
  start = jax.lax.axis_index(AXIS) * x.shape[0]
  size = (sample.shape[0], keep)
  best = (_varying(jnp.full(size, jnp.inf, jnp.float32)),
          _varying(jnp.zeros(size, jnp.int32)),
          _varying(jnp.zeros(2, jnp.float32)))
  d2, index, max_sq = _hashing._nearest_candidates(  # pylint: disable=protected-access
      *best, x, start.astype(jnp.int32), jnp.int32(n), sample, sample_index,
      centre)
  return d2[None], index[None], max_sq[None]


@functools.lru_cache(maxsize=None)
def _candidates_fn(mesh: Mesh, n: int, keep: int):
  return jax.jit(jax.shard_map(
      functools.partial(_local_candidates, n=n, keep=keep), mesh=mesh,
      in_specs=(P(AXIS), P(), P(), P()), out_specs=P(AXIS),
      check_vma=False))


def sample_radii(points: ShardedSet, seed: int) -> np.ndarray:
  """`_hashing.sample_radii` of a set on the mesh: the same sample, each
  device's candidates merged on the host, checked in float64 there."""
  from lsh_gan.metrics import _hashing  # pylint: disable=g-import-not-at-top
  n = points.n
  index = np.sort(np.random.default_rng(seed).choice(
      n, min(n, _hashing.WIDTH_SAMPLE), replace=False))
  rows = lambda i: np.asarray(replicated_value(take(points)(
      None, np.asarray(i)[None])))[0]
  sample = rows(index).astype(np.float64)
  centre = sample.mean(axis=0).astype(np.float32)
  keep = min(_hashing.WIDTH_CANDIDATES + 1, n)
  d2, where, max_sq = (host(v) for v in _candidates_fn(points.mesh, n, keep)(
      points.x, sample.astype(np.float32), index.astype(np.int32), centre))
  # Each device's `keep` smallest, merged: the set's `keep` smallest.
  d2 = np.concatenate(list(d2), axis=1)
  where = np.concatenate(list(where), axis=1)
  order = np.argsort(d2, axis=1, kind="stable")[:, :keep]
  return _hashing.radii_from_candidates(
      np.take_along_axis(d2, order, axis=1),
      np.take_along_axis(where, order, axis=1), max_sq.max(axis=0), sample,
      index, centre, (n, points.dim), rows, lambda: host_rows(points))


def host(x: jax.Array) -> np.ndarray:
  """A global array on the host of every process."""
  if x.is_fully_addressable:
    return np.asarray(x)
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def project(points: ShardedSet, family, centre,
            radii_seed: int | None = None) -> Projected:
  """`HashFamily.project` on the mesh (centre None: about 0)."""
  if centre is None:
    centre = np.zeros(points.dim, np.float32)
  values = _project_rows(points.x, centre, family.projections)
  radii = None if radii_seed is None else sample_radii(points, radii_seed)
  return Projected(values, points.pad, points.n, points.mesh, radii)


def _local_sorted(key1, key2, pad):
  """One device's tables: its keys sorted per table (padding last, as
  NO_KEY), where each run ends, and its number of valid rows."""
  from lsh_gan.metrics import _hashing  # pylint: disable=g-import-not-at-top
  no_key = jnp.uint32(_hashing.NO_KEY)
  padding = (pad > 0)[:, None]
  s1, s2 = jax.lax.sort((jnp.where(padding, no_key, key1).T,
                         jnp.where(padding, no_key, key2).T),
                        dimension=1, num_keys=2)
  valid = jnp.sum(pad == 0, dtype=jnp.int32)[None]
  return s1, s2, _hashing.run_bounds(s1, s2)[1], valid


@functools.lru_cache(maxsize=None)
def _sort_fn(mesh: Mesh):
  return jax.jit(jax.shard_map(
      _local_sorted, mesh=mesh, in_specs=(P(AXIS), P(AXIS), P(AXIS)),
      out_specs=(P(None, AXIS), P(None, AXIS), P(None, AXIS), P(AXIS))))


def _ring_hits(q1, q2, qpad, s1, s2, run_end, valid, min_count, *,
               devices: int, own: bool, num_tables: int):
  """Per local query row, the tables in which its bucket holds >=
  min_count points of the tabled set (`own`: the set itself, each point
  not counting itself), as a histogram over the valid rows, psummed."""
  from lsh_gan.metrics import _hashing  # pylint: disable=g-import-not-at-top

  def visit(_, carry):
    total, s1, s2, run_end, valid = carry
    total = total + _hashing.bucket_counts(s1, s2, run_end, valid[0], q1, q2)
    s1, s2, run_end, valid = (
        jax.lax.ppermute(v, AXIS, _ring_permutation(devices))
        for v in (s1, s2, run_end, valid))
    return total, s1, s2, run_end, valid

  total = _varying(jnp.zeros(q1.shape, jnp.int32))
  total, *_ = jax.lax.fori_loop(0, devices, visit,
                                (total, s1, s2, run_end, valid))
  hits = jnp.sum(total - (1 if own else 0) >= min_count, axis=1,
                 dtype=jnp.int32)
  counted = jnp.zeros(num_tables + 1, jnp.int32).at[hits].add(
      (qpad == 0).astype(jnp.int32))
  return jax.lax.psum(counted, AXIS)


@functools.lru_cache(maxsize=None)
def _hits_fn(mesh: Mesh, own: bool, num_tables: int):
  spec = P(AXIS)
  table = P(None, AXIS)
  return jax.jit(jax.shard_map(
      functools.partial(_ring_hits, devices=mesh.shape[AXIS], own=own,
                        num_tables=num_tables),
      mesh=mesh, in_specs=(spec, spec, spec, table, table, table, spec, P()),
      out_specs=P(),
      check_vma=False))


class Tables:
  """`_lsh.Tables` of a set on the mesh: each device's rows sorted per table
  there; a query's bucket size is summed over the devices' tables."""

  def __init__(self, projected: Projected, family, width: float):
    self.n = projected.n
    self.width = float(width)
    self.family = family
    self.mesh = projected.mesh
    self.projected = projected
    key1, key2 = family.keys(projected.values, width)
    self.sorted = _sort_fn(self.mesh)(key1, key2, projected.pad)

  def rescaled(self, exponent: int) -> "Tables":
    out = object.__new__(Tables)
    out.__dict__.update(self.__dict__)
    out.width = math.ldexp(self.width, exponent)
    return out

  def histogram(self, queries: Projected, min_count: int,
                own: bool = False) -> np.ndarray:
    """How many query points have each number of hits (0..L)."""
    q1, q2 = self.family.keys(queries.values, self.width)
    fn = _hits_fn(self.mesh, own, self.family.num_tables)
    return np.asarray(replicated_value(fn(q1, q2, queries.pad, *self.sorted,
                                          np.int32(min_count))), np.int64)

  def own_histogram(self, min_count: int) -> np.ndarray:
    return self.histogram(self.projected, min_count, own=True)


def _ring_mates(keys, pad, target, *, devices: int):
  """Valid (point, table) pairs with >= target others sharing the table's
  first key, psummed (`_hashing.pairs_with_mates` over the mesh)."""
  from lsh_gan.metrics import _hashing  # pylint: disable=g-import-not-at-top
  no_key = jnp.uint32(_hashing.NO_KEY)
  mine = jnp.sort(jnp.where((pad > 0)[:, None], no_key, keys).T, axis=1)
  padding = jnp.sum(pad > 0, dtype=jnp.int32)[None]
  queries = keys.T  # (T, rows)

  def visit(_, carry):
    count, ordered, padding = carry
    found = jax.vmap(lambda table, q: (
        jnp.searchsorted(table, q, side="right") -
        jnp.searchsorted(table, q, side="left")))(ordered, queries)
    # Padding rows were set to NO_KEY: not points a NO_KEY query shares.
    found = found - jnp.where(queries == no_key, padding[0], 0)
    count = count + found.astype(jnp.int32)
    ordered, padding = (jax.lax.ppermute(v, AXIS, _ring_permutation(devices))
                        for v in (ordered, padding))
    return count, ordered, padding

  count = _varying(jnp.zeros(queries.shape, jnp.int32))
  count, *_ = jax.lax.fori_loop(0, devices, visit, (count, mine, padding))
  pairs = jnp.sum(((count - 1) >= target) & (pad == 0)[None, :],
                  dtype=jnp.int32)
  return jax.lax.psum(pairs, AXIS)


@functools.lru_cache(maxsize=None)
def _mates_fn(mesh: Mesh):
  return jax.jit(jax.shard_map(
      functools.partial(_ring_mates, devices=mesh.shape[AXIS]), mesh=mesh,
      in_specs=(P(AXIS), P(AXIS), P()), out_specs=P(),
      check_vma=False))


def default_width(projected: Projected, family, name: str) -> float:
  """`_lsh.default_width` on the mesh (the same bisection, its bucket
  counts summed over the devices)."""
  from lsh_gan.metrics import _lsh  # pylint: disable=g-import-not-at-top
  return _lsh.default_width(projected, family, name, mates_reached=(
      lambda keys, n, target: int(replicated_value(_mates_fn(projected.mesh)(
          keys, projected.pad, np.int32(target)))) * 2 >= n * keys.shape[1]))


def times_power_of_two(points: ShardedSet, exponent: int) -> ShardedSet:
  """The set times 2^exponent (exact; its padding kept)."""
  return dataclasses.replace(points,
                             x=_scaled(points.x, *_factors(-exponent)))
