"""One real set, scored against many fake sets: its side computed once.

The launcher scores about twenty compressed generators against one set of
real embeddings. `Reference(real)` validates and centres the real set once,
and keeps whatever each metric computes from it alone, the first time that
metric asks for it:

  exact KNN    the squared distances to each real point's nearest neighbours
               (one R x R pass, up to the largest k asked for so far)
  LSH-only     the real projections, the real set's default width and its
               sorted tables, per (num_tables, num_hashes, width, seed)
  LSH + KNN    the centred, padded real points, the occupancy width and
               the candidate radii, per (k, num_tables, num_hashes, width,
               max_candidates, seed)
  FID          the real mean, covariance and its square root

Scoring a fake set then costs only its own side and the cross terms.
`computed` counts the real-side computations by kind, so a caller (or a
test) can see that a second fake set recomputed nothing.

The module-level functions (`knn_precision_recall`, `lsh_precision_recall`,
...) are one-shot uses of the same code, so both give the same numbers.

Units: the real set is kept divided by 2^exponent when its magnitude is
outside float32's comfortable range (`_checks.reference_set`), and every fake
set is divided by the same power of two, so the scale-invariant metrics give
the same numbers at any scale. A fake set whose values exceed 2^50 in those
units is computed in units large enough for it, the cached real side divided
by the matching power of two for that call (exact; nothing is recomputed);
sets more than 2^100 apart raise a ValueError.
"""

from __future__ import annotations

import collections
import math

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.metrics import _checks
from lsh_gan.metrics import _hashing
from lsh_gan.metrics import _lsh
from lsh_gan.metrics import _lsh_knn
from lsh_gan.metrics import _robust
from lsh_gan.metrics import _sharded
from lsh_gan.metrics import _sharded_lsh_knn
from lsh_gan.metrics import _stored
from lsh_gan.metrics import fid
from lsh_gan.metrics import knn


class Reference:
  """The real side of every metric, computed once and kept.

  Args:
    real: (n, d) real embeddings: an array, or a jax.Array sharded by rows
      over several devices.
    mesh: a `jax.sharding.Mesh` to keep the real side on, sharded by rows
      over all its devices; None: the mesh of a `real` on several devices,
      else one device. On a mesh every metric runs there (`_sharded`,
      `_sharded_lsh_knn`; the same numbers as on one device).

  Attributes:
    n, dim: the real set's shape.
    mesh: the one-axis ("data") mesh the real side is on, or None.
    exponent: the real set is held as real / 2^exponent (0 for embeddings
      of ordinary magnitude).
    computed: `collections.Counter` of real-side computations by kind
      ("knn", "family", "projection", "tables", "lsh_knn_points",
      "lsh_knn_width", "lsh_knn_radii", "gaussian").

  Raises:
    ValueError: for NaN/inf, non-2-D, ragged or empty input.

  Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = Reference(rng.normal(size=(500, 8)))
    >>> scores = [ref.lsh_precision_recall(rng.normal(size=(400, 8)) + shift)
    ...           for shift in (0.0, 100.0)]
    >>> scores[1]
    {'precision': 0.0, 'recall': 0.0}
    >>> ref.computed["tables"]  # the real tables were built once
    1
  """

  _max_abs = None  # the largest |value| in data units, where known

  def __init__(self, real, *, mesh=None):
    self.computed = collections.Counter()
    self._cache = {}
    self._knn = None
    self.sharded = None
    if _sharded.wants_mesh(mesh, real):
      self.mesh = _sharded.as_mesh(mesh, real)
      self.sharded, self.exponent = _sharded.reference_set(real, self.mesh)
      self.n, self.dim = self.sharded.n, self.sharded.dim
      self._real = self._centre_value = None
      return
    self.mesh = None
    self._real, self.exponent = _checks.reference_set(real, "real")
    self.n, self.dim = self._real.shape
    self._centre_value = _hashing.mean_rows(self._real)

  @classmethod
  def from_batches(cls, batches, *, mesh=None,
                   directory: str | None = None) -> "Reference":
    """A reference read from an iterable of (b, d) arrays, never held whole.

    The batches (slices of memory-mapped `.npy` files, chunks of an
    embedder's output; any sizes) are read once, each validated as it
    arrives and appended to a float32 file in a private temporary folder;
    every real-side computation then reads that file block by block: the
    mean and the FID statistics by streaming sums, the LSH projections and
    tables one row block at a time (keeping the bucket keys, 8 bytes per
    point and table), the exact k-NN radii by pairs of blocks. Memory
    beyond the file's pages is the per-point results (bucket keys, k-NN
    radii) and a few blocks. LSH + KNN reads the set into memory on one
    device (on a mesh, each device holds its rows); KID reads only its
    subsets.

    Equal numbers: the same as `Reference(np.concatenate(batches))`, bit
    for bit for every metric but FID (the same blocks, centre and
    products); FID to float32 rounding (its sums are streamed).

    Args:
      batches: an iterable of (b, d) arrays of numbers (read once).
      mesh: a `jax.sharding.Mesh`: the set is laid out on it from the file
        (each device's rows read from it in turn) and scored as
        `Reference(..., mesh=mesh)` is.
      directory: where the private folder is made (default: the system's
        temporary folder); it holds n * d * 4 bytes (up to 12 per value
        while float64 batches are converted) and is removed when the
        reference is collected, or at exit.

    Raises:
      ValueError: naming the batch (and its first bad row) for NaN/inf, a
        batch not 2-D, a feature size unlike the first batch's, no rows.

    Example:
      >>> import numpy as np
      >>> rng = np.random.default_rng(0)
      >>> ref = Reference.from_batches(rng.normal(size=(300, 8))
      ...                              for _ in range(4))
      >>> ref.n
      1200
      >>> ref.lsh_precision_recall(rng.normal(size=(500, 8)) + 100.0)
      {'precision': 0.0, 'recall': 0.0}
    """
    # The mesh first: a bad one fails before the batches are read.
    mesh = None if mesh is None else _sharded.as_mesh(mesh)
    stored, exponent, max_abs = _stored.spill(batches, "real", directory)
    ref = cls.__new__(cls)
    ref.computed, ref._cache, ref._knn = collections.Counter(), {}, None
    ref.exponent, ref._max_abs = exponent, max_abs
    ref.n, ref.dim = stored.shape
    ref._real = ref._centre_value = ref.sharded = ref.mesh = None
    if mesh is not None:
      ref.mesh = mesh
      ref.sharded = _sharded.place(stored, max_abs, 0, mesh)
    else:
      ref._real = stored
      ref._centre_value = _hashing.mean_rows(stored)
    return ref

  def fake_from_batches(self, batches, *,
                        directory: str | None = None) -> "FakeSet":
    """A fake set read from an iterable of (b, d) arrays as `from_batches`
    reads the real one (into a private file, in this reference's units):
    pass it to any scoring method.

    Raises:
      ValueError: as `from_batches`, and for a feature size other than the
        reference's (at the first batch) or magnitudes too far from it.
    """
    units = {}

    def choose(max_abs, dim):
      units["shift"], units["own"] = _checks.fake_units(
          dim, max_abs, self.dim, self.exponent)
      return self.exponent + units["shift"]

    stored, _, max_abs = _stored.spill(batches, "fake", directory,
                                       dim=self.dim, units=choose)
    if self.sharded is not None:
      values = _sharded.place(stored, max_abs, 0, self.mesh)
    else:
      values = stored
    fake = FakeSet(self, values, units["shift"], units["own"])
    fake._max_exponent = _checks.magnitude_exponent(max_abs)  # pylint: disable=protected-access
    return fake

  @property
  def real(self) -> jax.Array:
    """The real set in units 2^exponent, on one device (a read-only
    np.memmap of its file for a reference `from_batches`). A reference on a
    mesh gathers it here, once, if asked (LSH + KNN at a max_candidates
    whose chunk does not divide its devices' rows)."""
    if self._real is None:
      self._real = jnp.asarray(_sharded.host_rows(self.sharded))
    return self._real

  @property
  def centre(self) -> jax.Array:
    """The real set's mean, in units 2^exponent."""
    if self._centre_value is None:  # a reference on a mesh: its mean there
      self._centre_value = jnp.asarray(
          _sharded.replicated_value(_sharded.mean_rows(self.sharded)))
    return self._centre_value

  def _cached(self, kind: str, key, make):
    if (kind, key) not in self._cache:
      self.computed[kind] += 1
      self._cache[kind, key] = make()
    return self._cache[kind, key]

  def fake_set(self, fake) -> "FakeSet":
    """`fake` validated and moved to the device once, in this reference's
    units: pass the result to any scoring method instead of the array (the
    launcher scores one fake set with every metric; each would otherwise
    validate and transfer it again).

    Raises:
      ValueError: as the scoring methods, for bad input.
    """
    if isinstance(fake, FakeSet):
      if fake.reference is self:
        return fake
      fake = fake.data()  # validated for another reference: again, here
    if self.sharded is not None:
      values, shift, own = _sharded.fake_set(fake, self.dim, self.exponent,
                                             self.mesh)
    else:
      values, shift, own = _checks.fake_set(fake, self.dim, self.exponent)
    return FakeSet(self, values, shift, own)

  def _fake(self, fake, k: int = 0):
    """(fake in units 2^(exponent + shift), shift, its own exponent there)."""
    fake = self.fake_set(fake)
    _checks.enough_points(fake.n, k, "fake")
    return fake.values, fake.shift, fake.own

  def _centre(self, shift: int):
    return knn.times_power_of_two(self.centre, -shift)

  def _in_units(self, width: float | None, shift: int = 0) -> float | None:
    """A width given in data units, in units of 2^(exponent + shift)."""
    return None if width is None else math.ldexp(width, -self.exponent - shift)

  # Exact KNN.

  def _knn_reference(self, k: int) -> knn.KNNReference:
    _checks.enough_points(self.n, k, "real")
    if self._knn is None or self._knn.max_k < k:
      self.computed["knn"] += 1
      # About the reference's centre (the blocked mean every metric here
      # uses), so a set read from batches gives the in-memory numbers.
      self._knn = knn.KNNReference.in_units(self.real, self.exponent,
                                            max_k=max(k, 5),
                                            centre=self.centre)
    return self._knn

  def knn_metrics(self, fake, *, k: int = 3,
                  density_k: int = 5) -> dict[str, float]:
    """Precision, recall (k), density and coverage (density_k), one pass."""
    k = _checks.positive_int(k, "k")
    density_k = _checks.positive_int(density_k, "density_k")
    if self.sharded is not None:
      _checks.enough_points(self.n, max(k, density_k), "real")
      side = self._knn
      if side is None or side.max_k < max(k, density_k):
        self.computed["knn"] += 1
        side = self._knn = _sharded.knn_side(self.sharded, self.exponent,
                                             max(k, density_k, 5))
      fake = self.fake_set(fake)
      return _sharded.knn_score(side, fake.on_mesh, fake.shift, k=k,
                                density_k=density_k)
    ref = self._knn_reference(max(k, density_k))
    fake, shift, _ = self._fake(fake, k)
    return ref.score_in_units(fake, shift, k=k, density_k=density_k)

  def knn_precision_recall(self, fake, *, k: int = 3) -> dict[str, float]:
    """`metrics.knn_precision_recall` against this reference."""
    out = self.knn_metrics(fake, k=k, density_k=k)
    return {"precision": out["precision"], "recall": out["recall"]}

  def density_coverage(self, fake, *, k: int = 5) -> dict[str, float]:
    """`metrics.density_coverage` against this reference."""
    out = self.knn_metrics(fake, k=k, density_k=k)
    return {"density": out["density"], "coverage": out["coverage"]}

  # LSH.

  def _family(self, num_tables, num_hashes, seed) -> _hashing.HashFamily:
    return self._cached("family", (num_tables, num_hashes, seed),
                        lambda: _hashing.HashFamily.create(self.dim, num_tables,
                                                      num_hashes, seed))

  def _projected(self, family: _hashing.HashFamily, seed) -> _hashing.Projected:
    return self._cached(
        "projection", (family.num_tables, family.num_hashes, seed),
        lambda: family.project(self.real, self.centre, radii_seed=seed))

  def _width(self, family: _hashing.HashFamily, seed) -> float:
    """4 times the real set's sampled median 3-NN distance (the scale LSH+KNN
    starts its width search from)."""
    projected = self._lsh_projected(family, seed)
    radius = (float(np.median(projected.sample_radii))
              if self.n > _hashing.WIDTH_K else 0.0)
    if radius <= 0:  # too few points or a collapsed set: raises, saying why
      return _lsh.default_width(projected, family, "real")
    return 4.0 * radius

  def _lsh_projected(self, family: _hashing.HashFamily, seed):
    """The real projections LSH-only reads: on the mesh for a reference
    on one (`_sharded.Projected`), else `_projected`'s."""
    if self.sharded is None:
      return self._projected(family, seed)
    return self._cached(
        "projection", ("mesh", family.num_tables, family.num_hashes, seed),
        lambda: _sharded.project(self.sharded, family, self.centre, seed))

  def _lsh_width(self, family: _hashing.HashFamily, seed) -> float:
    """The real set's LSH-only default width (occupancy), cached."""
    return self._cached(
        "lsh_width", (family.num_tables, family.num_hashes, seed),
        lambda: _default_width(self._lsh_projected(family, seed), family,
                               "real"))

  def lsh_width(self, *, num_tables: int = _lsh.NUM_TABLES,
                num_hashes: int = _lsh.NUM_HASHES, seed: int = 0) -> float:
    """The real set's default LSH-only bucket width, in data units: the width
    at which its median point has 2 bucket-mates per table. Pass it as
    `bucket_width` to hash both sets at it."""
    num_tables, num_hashes = _hashing.check_family(num_tables, num_hashes)
    seed = _checks.seed(seed)
    width = self._lsh_width(self._family(num_tables, num_hashes, seed), seed)
    return math.ldexp(width, self.exponent)

  def _fake_width(self, family: _hashing.HashFamily, fake, shift: int,
                  own: int, seed: int, projected: _hashing.Projected) -> float:
    """The fake set's default width in the units `fake` is given in.

    Its 3-NN distances and buckets are read at its own scale: a set far
    smaller than the reference would lose them to underflow in the
    reference's units. The projections keep the reference's centre (at that
    scale too, exactly), so the buckets, and the width, are those of the
    reference's units scaled by a power of two.
    """
    own = _checks.own_scale(own)
    if own:
      centre = knn.times_power_of_two(self._centre(shift), -own)
      if not np.all(np.isfinite(np.asarray(centre))):
        # The reference's centre is beyond float32 at the set's scale (sets
        # near 2^78 apart): the set's own buckets, centred on itself.
        centre = None
      if isinstance(fake, _sharded.ShardedSet):
        own_scale = _sharded.project(_sharded.times_power_of_two(fake, -own),
                                     family, centre, seed)
      else:
        own_scale = family.project(knn.times_power_of_two(fake, -own),
                                   centre, radii_seed=seed)
      return math.ldexp(_default_width(own_scale, family, "fake"), own)
    return _default_width(projected, family, "fake")

  def _lsh_side(self, family, width: float, seed: int, min_count: int,
                coverage: str):
    """The real tables at `width` and, for the calibrated rule, the hits its
    own points reach (cached)."""
    key = (family.num_tables, family.num_hashes, width, seed)
    tables = self._cached(
        "tables", key, lambda: _tables(self._lsh_projected(family, seed),
                                       family, width))
    calibration = None
    if coverage == "calibrated":
      calibration = self._cached(
          "calibration", key + (min_count,),
          lambda: _lsh.Calibration.from_histogram(
              tables.own_histogram(min_count)))
    return tables, calibration

  def lsh_precision_recall(self, fake, *, num_tables: int = _lsh.NUM_TABLES,
                           num_hashes: int = _lsh.NUM_HASHES,
                           bucket_width: float | None = None,
                           min_count: int = 1, coverage: str = "calibrated",
                           seed: int = 0) -> dict[str, float]:
    """`metrics.lsh_precision_recall` against this reference."""
    num_tables, num_hashes = _hashing.check_family(num_tables, num_hashes)
    bucket_width = _hashing.check_width(bucket_width)
    min_count = _checks.positive_int(min_count, "min_count")
    coverage = _lsh.check_coverage(coverage)
    seed = _checks.seed(seed)
    fake = self.fake_set(fake)
    shift, own = fake.shift, fake.own
    fake = fake.on_mesh if fake.on_mesh is not None else fake.values
    family = self._family(num_tables, num_hashes, seed)
    real_proj = self._lsh_projected(family, seed)
    real_width = self._in_units(bucket_width)
    if real_width is None:
      real_width = self._lsh_width(family, seed)
    real_tables, real_calibration = self._lsh_side(family, real_width, seed,
                                                   min_count, coverage)
    if shift:  # computed in the fake set's units: see the module doc
      real_proj = real_proj.rescaled(-shift)
      real_tables = real_tables.rescaled(-shift)
    # Recall reads the fake set's own structure: its width, its tables.
    own_width = bucket_width is None and not _checks.own_scale(own)
    fake_proj = _project(family, fake, self._centre(shift),
                         seed if own_width else None)
    fake_width = self._in_units(bucket_width, shift)
    if fake_width is None:
      fake_width = self._fake_width(family, fake, shift, own, seed,
                                    fake_proj)
    fake_tables = _tables(fake_proj, family, fake_width)
    fake_calibration = None
    if coverage == "calibrated":
      fake_calibration = _lsh.Calibration.from_histogram(
          fake_tables.own_histogram(min_count))
    score = lambda histogram, calibration: (
        _lsh.covered_fraction_of_histogram(histogram, coverage, num_tables,
                                           calibration))
    return {
        "precision": score(real_tables.histogram(fake_proj, min_count),
                           real_calibration),
        "recall": score(fake_tables.histogram(real_proj, min_count),
                        fake_calibration),
    }

  def lsh_knn_precision_recall(
      self, fake, *, k: int = 3, num_tables: int = _lsh_knn.NUM_TABLES,
      num_hashes: int | None = None, bucket_width: float | None = None,
      max_candidates: int = _lsh_knn.MAX_CANDIDATES, seed: int = 0,
      error_sample: int = _lsh_knn.ERROR_SAMPLE) -> dict[str, float]:
    """`metrics.lsh_knn_precision_recall` against this reference."""
    k = _checks.positive_int(k, "k")
    if error_sample != 0:
      error_sample = _checks.positive_int(error_sample, "error_sample")
    if num_hashes is None:
      num_hashes = min(_lsh_knn.NUM_HASHES, self.dim)
    num_tables, num_hashes = _hashing.check_family(num_tables, num_hashes)
    bucket_width = _hashing.check_width(bucket_width)
    max_candidates = _checks.positive_int(max_candidates, "max_candidates")
    seed = _checks.seed(seed)
    _checks.enough_points(self.n, k, "real")
    family = self._family(num_tables, num_hashes, seed)
    fake = self.fake_set(fake)
    _checks.enough_points(fake.n, k, "fake")
    # On a mesh the sets stay there (`_sharded_lsh_knn`) when max_candidates'
    # chunk divides each device's rows (always at the default); else they
    # are read onto one device.
    on_mesh = self.sharded is not None and all(
        _sharded_lsh_knn.fits_layout(s, max_candidates)
        for s in (self.sharded, fake.on_mesh))
    fake, shift = (fake.on_mesh if on_mesh else fake.values), fake.shift
    if on_mesh:
      prepare, index_of, cover = (_sharded_lsh_knn.Prepared,
                                  _sharded_lsh_knn.Indexed,
                                  _sharded_lsh_knn.cover)
      points, projected = self.sharded, self._lsh_projected
    else:
      prepare, index_of, cover = (_lsh_knn.Prepared, _lsh_knn.Indexed,
                                  _lsh_knn.covered)
      points, projected = self.real, self._projected
    real = self._cached(
        "lsh_knn_points",
        (num_tables, num_hashes, max_candidates, seed, on_mesh),
        lambda: prepare(points, self.centre, family, max_candidates,
                        projected(family, seed)))
    width = self._in_units(bucket_width)
    if width is None:
      width = self._cached(
          "lsh_knn_width",
          (num_tables, num_hashes, _lsh_knn.BUCKET_MATES, seed, on_mesh),
          lambda: _lsh_knn.fill_width(real, _lsh_knn.BUCKET_MATES,
                                     self._width(family, seed)))
    index = self._cached(
        "lsh_knn_radii",
        (k, num_tables, num_hashes, width, max_candidates, seed, on_mesh),
        lambda: index_of(real, width, k))
    if (index._exact is None and isinstance(self._knn, knn.KNNReference)  # pylint: disable=protected-access
        and self._knn.max_k >= k):
      # The exact radii its error estimate reads are already known.
      index.know_exact(self._knn.nearest_sq[:, k - 1])
    if shift:  # computed in the fake set's units: see the module doc
      index = index.rescaled(-shift)
    fake = prepare(fake, self._centre(shift), family, max_candidates)
    # Recall reads the fake set's structure: its balls come from its own
    # tables at its own occupancy width (a sparse fake set hashed at the
    # real width would leave most of its points isolated).
    fake_width = self._in_units(bucket_width, shift)
    if fake_width is None:
      fake_width = _lsh_knn.fill_width(
          fake, _lsh_knn.BUCKET_MATES,
          index.width * max(1.0, self.n / fake.n) ** (1 / num_hashes))
    fake_index = index_of(fake, fake_width, k)
    precise = cover(index, fake)
    recalled = cover(fake_index, index.prepared)
    out = {"precision": int(precise.sum()) / fake.n,
           "recall": int(recalled.sum()) / self.n}
    if error_sample:
      precision_error = _lsh_knn.error_estimate(index, fake, precise, k, seed,
                                                error_sample)
      recall_error = _lsh_knn.error_estimate(fake_index, index.prepared,
                                             recalled, k, seed, error_sample)
      out.update(precision_error=precision_error[0],
                 precision_error_se=precision_error[1],
                 recall_error=recall_error[0],
                 recall_error_se=recall_error[1])
      _lsh_knn.warn_if_off(out)
    return out

  # FID and KID.

  def frechet_distance(self, fake) -> dict[str, float]:
    """`metrics.frechet_distance` against this reference."""
    _checks.enough_points(self.n, 1, "real")
    if self.sharded is not None:
      stats = self._cached("gaussian", None, lambda: _sharded.gaussian_stats(
          self.sharded, self.centre, self.exponent))
      fake = self.fake_set(fake)
      _checks.enough_points(fake.n, 1, "fake")
      return fid.frechet_from_stats(stats, _sharded.gaussian_stats(
          fake.on_mesh, self._centre(fake.shift), self.exponent + fake.shift))
    stats = self._cached(
        "gaussian", None,
        lambda: fid.gaussian_stats(self.real, self.centre, self.exponent))
    fake, shift, _ = self._fake(fake, 1)
    return fid.frechet_from_stats(
        stats, fid.gaussian_stats(fake, self._centre(shift),
                                  self.exponent + shift))

  def kernel_distance(self, fake, **kwargs) -> dict[str, float]:
    """`metrics.kernel_distance` against this reference (same keywords)."""
    fake = self.fake_set(fake)
    _checks.enough_points(fake.n, 1, "fake")
    if self.sharded is not None:
      return _sharded.kernel_distance_in_units(
          self.sharded, self.exponent, fake.on_mesh,
          self.exponent + fake.shift, **kwargs)
    real_max = self._cached("magnitude", None, lambda: (
        fid.max_exponent(self.real, self.exponent) if self._max_abs is None
        else _checks.magnitude_exponent(self._max_abs)))
    return fid.kernel_distance_in_units(
        self.real, self.exponent, fake.values, self.exponent + fake.shift,
        max_exponents=(real_max, fake.max_exponent), **kwargs)


  # The robust peers (`robust`): on one device (a reference on a mesh
  # gathers its set once for them).

  def _peer_knn(self, k: int) -> knn.KNNReference:
    """The single-device exact k-NN side, with at least k neighbours."""
    if self.sharded is None:
      return self._knn_reference(k)
    _checks.enough_points(self.n, k, "real")
    side = self._cache.get(("peer_knn", None))
    if side is None or side.max_k < k:
      self.computed["knn"] += 1
      side = self._cache["peer_knn", None] = knn.KNNReference.in_units(
          self.real, self.exponent, max_k=max(k, 5), centre=self.centre)
    return side

  def _peer_sides(self, fake, k: int, fake_k: int):
    """(real points and their squared k-NN distances, the fake points), in
    the fake set's units; the fake set must have more than fake_k points."""
    side = self._peer_knn(k)
    fake, shift, _ = self._fake(fake, fake_k)  # (validated once: FakeSet)
    real_points, nearest_sq = side.points, side.nearest_sq
    if shift:
      real_points = real_points.rescaled(-shift)
      nearest_sq = nearest_sq * np.float32(4.0 ** -shift)
    return (real_points, nearest_sq,
            _robust._points(fake, self._centre(shift)))  # pylint: disable=protected-access

  def probabilistic_precision_recall(self, fake, *, k: int = 4,
                                     scale: float = 1.2) -> dict[str, float]:
    """`metrics.probabilistic_precision_recall` against this reference."""
    k = _checks.positive_int(k, "k")
    scale = _checks.positive_float(scale, "scale")
    fake = self.fake_set(fake)
    real_points, nearest_sq, fake_points = self._peer_sides(fake, k, k)
    # The fake set's own radius from points centred on its own median and,
    # for a set far smaller than the reference, at its own scale (a set far
    # from the reference would lose its spread about the real centre, a
    # tiny one its distances to underflow).
    values, own_exponent = _own_scale(fake)
    own = _robust.own_points(values)
    fake_nearest = _robust._host(knn.nearest_sq_distances(own, k), own.n)  # pylint: disable=protected-access
    real_r = scale * _robust.mean_radius(nearest_sq, k, "real")
    fake_r = math.ldexp(scale * _robust.mean_radius(fake_nearest, k, "fake"),
                        own_exponent)
    return _robust.probabilistic_score(fake_points, real_points, real_r**2,
                                       fake_r**2)

  def clipped_density_coverage(self, fake, *, k: int = 5) -> dict[str, float]:
    """`metrics.clipped_density_coverage` against this reference."""
    k = _checks.positive_int(k, "k")
    fake = self.fake_set(fake)
    side = self._peer_knn(k)
    clipped = self._cached("clipped", k, lambda: _robust.clipped_side(
        side.points, side.nearest_sq, k))
    # Coverage's calibration needs at least k fake points (as published).
    if fake.n < k:
      raise ValueError(f"fake: has {fake.n} points; clipped coverage with "
                       f"k={k} needs at least {k}")
    real_points, _, fake_points = self._peer_sides(fake, k, 0)
    return _robust.clipped_score(clipped.in_units(fake.shift), real_points,
                                 fake_points)

  def realism_scores(self, fake, *, k: int = 3) -> np.ndarray:
    """`metrics.realism_scores` against this reference."""
    k = _checks.positive_int(k, "k")
    real_points, nearest_sq, fake_points = self._peer_sides(fake, k, 0)
    return _robust.realism(fake_points, real_points,
                           _robust.realism_kept_r2(nearest_sq, k))

  def top_precision_recall(self, fake, *, alpha: float = 0.1,
                           projection_dim: int = _robust.TOP_PROJECTION_DIM,
                           bootstraps: int = 10,
                           seed: int = _robust.TOP_SEED) -> dict[str, float]:
    """`metrics.top_precision_recall` against this reference."""
    alpha = _checks.fraction(alpha, "alpha")
    projection_dim = _checks.positive_int(projection_dim, "projection_dim")
    bootstraps = _checks.positive_int(bootstraps, "bootstraps")
    seed = _checks.seed(seed)
    if seed >= 2 ** 32:  # numpy's RandomState draws the resamples
      raise ValueError(f"seed={seed!r} must be below 2**32 for TopP&R")
    key = (alpha, projection_dim, bootstraps, seed)

    def real_side():
      projection = _robust.top_projection(self.dim, projection_dim, seed)
      real = _robust.project(self.real, projection)
      centre = np.mean(np.asarray(real), axis=0,
                       dtype=np.float64).astype(np.float32)
      rng = np.random.RandomState(seed)
      side = _robust.top_side(real, centre, "real", alpha=alpha,
                              bootstraps=bootstraps, rng=rng)
      return projection, centre, side, rng.get_state()

    projection, centre, real, state = self._cached("top", key, real_side)
    fake = self.fake_set(fake)
    rng = np.random.RandomState()
    rng.set_state(state)  # the fake set's resamples follow the real set's
    projected = _robust.project(fake.values, projection)
    # Its own passes about its own median and at its own scale (its kernel
    # sums do not depend on the scale), the cross pass about the real mean.
    values, own_exponent = _own_scale(fake, projected)
    fake_side = _robust.top_side(values, None, "fake", alpha=alpha,
                                 bootstraps=bootstraps, rng=rng)
    fake_side = fake_side.with_bandwidth(
        math.ldexp(fake_side.h2, 2 * own_exponent))
    return _robust.top_score(
        real.in_units(fake.shift), fake_side, _robust._points(  # pylint: disable=protected-access
            projected, knn.times_power_of_two(centre, -fake.shift)))


def _own_scale(fake: "FakeSet", values=None):
  """(a fake set's values, or `values` computed from them, at its own scale;
  e): the values times 2^-e, e = `_checks.own_scale` of the set (its own
  exponent when distances within it would underflow in the reference's
  units, else 0). The LSH width (`Reference._fake_width`) reads a set at the
  same scale."""
  values = fake.values if values is None else values
  own = _checks.own_scale(fake.own)
  if not own:
    return values, 0
  # On the host (exact for these normal numbers; no device round trip).
  return np.ldexp(np.asarray(values, np.float32), -own), own


def _project(family: _hashing.HashFamily, points, centre, radii_seed):
  """`HashFamily.project` of a set on one device or on a mesh."""
  if isinstance(points, _sharded.ShardedSet):
    return _sharded.project(points, family, centre, radii_seed)
  return family.project(points, centre, radii_seed=radii_seed)


def _tables(projected, family: _hashing.HashFamily, width: float):
  """Sorted tables of projections on one device or on a mesh."""
  if isinstance(projected, _sharded.Projected):
    return _sharded.Tables(projected, family, width)
  return _lsh.Tables(projected, family, width)


def _default_width(projected, family: _hashing.HashFamily, name: str):
  if isinstance(projected, _sharded.Projected):
    return _sharded.default_width(projected, family, name)
  return _lsh.default_width(projected, family, name)


class FakeSet:
  """A fake set validated against one `Reference` (`Reference.fake_set`).

  Attributes:
    reference: the Reference it was validated for.
    values: (m, d) float32 on one device, in units 2^(exponent + shift)
      (for a reference on a mesh: gathered from it when first read; for a
      set `fake_from_batches`: a read-only np.memmap of its file).
    on_mesh: for a reference on a mesh, the set laid out on it.
    n: the number of points.
    shift: see `_checks.fake_set`; own: its own magnitude exponent there.
  """

  def __init__(self, reference: Reference, values, shift: int, own: int):
    self.reference = reference
    if isinstance(values, _sharded.ShardedSet):
      self.on_mesh, self._values, self.n = values, None, values.n
    else:
      self.on_mesh, self._values, self.n = None, values, values.shape[0]
    self.shift = shift
    self.own = own
    self._max_exponent = None

  @property
  def values(self) -> jax.Array:
    if self._values is None:
      self._values = jnp.asarray(_sharded.host_rows(self.on_mesh))
    return self._values

  def data(self) -> np.ndarray:
    """The set in data units (float64 numpy)."""
    return np.ldexp(np.asarray(self.values, np.float64),
                    self.reference.exponent + self.shift)

  @property
  def max_exponent(self) -> int:
    """round(log2(max |fake|)) in data units (computed once)."""
    if self._max_exponent is None and self.on_mesh is not None:
      self._max_exponent = _checks.magnitude_exponent(self.on_mesh.max_abs)
    if self._max_exponent is None:
      self._max_exponent = fid.max_exponent(
          self.values, self.reference.exponent + self.shift)
    return self._max_exponent
