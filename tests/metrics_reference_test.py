"""metrics.Reference: the real side computed once; shapes that do not retrace."""

from unittest import mock

import chex
import jax
import numpy as np
import pytest

from lsh_gan import metrics
from lsh_gan.metrics import knn
from lsh_gan.metrics import _checks
from lsh_gan.metrics import _hashing
from lsh_gan.metrics import _lsh_knn
from lsh_gan.metrics import lsh
from lsh_gan.metrics import lsh_knn
from metrics_lsh_test import Mixture


@pytest.fixture(scope="module")
def sets():
  mix = Mixture(12, modes=6, seed=11)
  return (mix.sample(1500, range(6)), mix.sample(1300, range(4)),
          mix.sample(1400, range(6)))


def test_reference_equals_the_functions(sets):
  real, fake, _ = sets
  ref = metrics.Reference(real)
  assert ref.knn_precision_recall(fake) == metrics.knn_precision_recall(
      real, fake)
  assert ref.density_coverage(fake) == metrics.density_coverage(real, fake)
  assert ref.lsh_precision_recall(fake) == metrics.lsh_precision_recall(
      real, fake)
  assert ref.lsh_knn_precision_recall(fake) == (
      metrics.lsh_knn_precision_recall(real, fake))
  # The two centre the data on means summed in different orders.
  assert ref.frechet_distance(fake)["fid"] == pytest.approx(
      metrics.frechet_distance(real, fake)["fid"], rel=1e-6)
  assert ref.kernel_distance(fake, num_subsets=5) == metrics.kernel_distance(
      real, fake, num_subsets=5)
  four = ref.knn_metrics(fake, k=3, density_k=5)
  assert four == {**metrics.knn_precision_recall(real, fake, k=3),
                  **metrics.density_coverage(real, fake, k=5)}


def test_a_second_fake_set_does_not_recompute_the_real_side(sets):
  real, fake, other = sets
  ref = metrics.Reference(real)
  calls = []
  radii = _lsh_knn.padded_radii_sq
  nearest = knn.nearest_sq_distances

  def count(name, fn):
    def wrapped(*args, **kwargs):
      calls.append(name)
      return fn(*args, **kwargs)
    return wrapped

  with mock.patch.object(_lsh_knn, "padded_radii_sq",
                         count("lsh_knn radii", radii)), mock.patch.object(
                             knn, "nearest_sq_distances",
                             count("knn radii", nearest)):
    score = lambda f: (ref.knn_metrics(f), ref.lsh_precision_recall(f),
                       ref.lsh_knn_precision_recall(f),
                       ref.frechet_distance(f))
    first = score(fake)
    after_first = dict(ref.computed)
    # Real and fake radii of both metrics. (LSH+KNN's recall error estimate
    # reads the exact radii of the few fake points that decide its sample,
    # point by point: not a whole radius pass.)
    assert sorted(calls) == ["knn radii"] * 2 + ["lsh_knn radii"] * 2
    calls.clear()
    second = score(other)
  # The second fake set only paid for its own side.
  assert sorted(calls) == ["knn radii", "lsh_knn radii"]
  assert dict(ref.computed) == after_first
  assert after_first == {"knn": 1, "family": 2, "projection": 2, "tables": 1,
                         "lsh_width": 1, "calibration": 1,
                         "lsh_knn_points": 1, "lsh_knn_width": 1,
                         "lsh_knn_radii": 1, "gaussian": 1}
  assert first != second
  assert second[0] == metrics.Reference(real).knn_metrics(other)


def test_a_fake_set_is_validated_once_for_every_metric(sets):
  real, fake, _ = sets
  ref = metrics.Reference(real)
  want = (ref.knn_metrics(fake), ref.lsh_precision_recall(fake),
          ref.frechet_distance(fake), ref.kernel_distance(fake, num_subsets=5))
  validated = []
  check = _checks.fake_set

  def counted(*args, **kwargs):
    validated.append(1)
    return check(*args, **kwargs)

  with mock.patch.object(_checks, "fake_set", counted):
    prepared = ref.fake_set(fake)
    got = (ref.knn_metrics(prepared), ref.lsh_precision_recall(prepared),
           ref.frechet_distance(prepared),
           ref.kernel_distance(prepared, num_subsets=5))
    assert len(validated) == 1 and got == want
    # Prepared for another reference: validated again, for this one.
    other = metrics.Reference(real[:-1]).fake_set(fake)
    assert ref.frechet_distance(other) == want[2]
    assert len(validated) == 3


def test_larger_k_extends_the_knn_side_once(sets):
  real, fake, _ = sets
  ref = metrics.Reference(real)
  ref.knn_precision_recall(fake, k=3)
  ref.knn_precision_recall(fake, k=5)
  assert ref.computed["knn"] == 1  # the first pass keeps up to k = 5
  got = ref.knn_precision_recall(fake, k=7)
  assert ref.computed["knn"] == 2
  assert got == metrics.knn_precision_recall(real, fake, k=7)


def test_bad_fake_set_names_it(sets):
  real, _, _ = sets
  ref = metrics.Reference(real)
  with pytest.raises(ValueError, match="fake: has 5 features"):
    ref.lsh_precision_recall(np.ones((100, 5)))
  with pytest.raises(ValueError, match="fake: contains NaN"):
    ref.lsh_knn_precision_recall(np.full((100, 12), np.nan))
  with pytest.raises(ValueError, match="fake: has 3 points; k=3"):
    ref.lsh_knn_precision_recall(real[:3])
  with pytest.raises(ValueError, match="real: expected a 2-D array"):
    metrics.Reference(real[0])
  with pytest.raises(ValueError, match="seed=2.5 must be an integer"):
    ref.lsh_width(seed=2.5)
  with pytest.raises(ValueError, match="seed=-1 must be an integer"):
    ref.kernel_distance(real, seed=-1)
  with pytest.raises(ValueError, match="fake: cannot be read as a 2-D"):
    ref.knn_metrics([list(row) for row in real[:10]] + [[1.0]])


def test_padded_sizes_are_few_and_tight():
  sizes = [_hashing.padded_size(n) for n in range(1, 300_000, 97)]
  for n, size in zip(range(1, 300_000, 97), sizes):
    assert size >= n and size % 1024 == 0
    assert size < n + max(1024, n / 8)
  assert sizes == sorted(sizes)
  # Eight sizes per doubling: 4,000 neighbouring values of n share one shape.
  assert len({_hashing.padded_size(n) for n in range(41_000, 45_000)}) == 1


def test_a_new_n_in_the_same_size_class_compiles_nothing(sets):
  real, fake, other = sets
  jitted = [_hashing._project, _hashing._keys,  # pylint: disable=protected-access
            _hashing.sort_tables, _hashing.bucket_counts, _lsh_knn._table_nearest,  # pylint: disable=protected-access
            _lsh_knn._table_cover]  # pylint: disable=protected-access
  ref = metrics.Reference(real)
  ref.lsh_precision_recall(fake)
  ref.lsh_knn_precision_recall(fake)
  before = [f._cache_size() for f in jitted]  # pylint: disable=protected-access
  assert _hashing.padded_size(fake.shape[0]) == _hashing.padded_size(other.shape[0] - 50)
  ref.lsh_precision_recall(other[:-50])
  ref.lsh_knn_precision_recall(other[:-50])
  assert [f._cache_size() for f in jitted] == before  # pylint: disable=protected-access


def test_table_passes_trace_once_for_many_n():
  x = np.random.default_rng(0).normal(size=(3000, 8)).astype(np.float32)
  family = _hashing.HashFamily.create(8, num_tables=2, num_hashes=4, seed=0)
  nearest = _lsh_knn._table_nearest  # pylint: disable=protected-access
  traced = jax.jit(chex.assert_max_traces(nearest.__wrapped__, n=1))
  with mock.patch.object(_lsh_knn, "_table_nearest", traced):
    for n in (2100, 2500, 2900, 3000):  # one size class: 3,072 rows
      prepared = _lsh_knn.Prepared(jax.device_put(x[:n]), x[:n].mean(0),
                                  family, max_candidates=16)
      rho2 = _lsh_knn.candidate_radii_sq(prepared, 1.0, 3)
      assert rho2.shape == (n,)


@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_width_sample_radii_equal_numpy(offset):
  rng = np.random.default_rng(3)
  x = (rng.normal(size=(5000, 7)) + offset).astype(np.float32)
  family = _hashing.HashFamily.create(7, 2, 3, seed=0)
  # Centred on another set's mean (as the fake set is): radii unaffected.
  projected = family.project(jax.device_put(x), jax.numpy.zeros(7), radii_seed=4)
  idx = np.sort(np.random.default_rng(4).choice(5000, _hashing.WIDTH_SAMPLE,
                                                replace=False))
  x64 = x.astype(np.float64)
  d = np.linalg.norm(x64[idx, None, :] - x64[None, :, :], axis=-1)
  d[np.arange(idx.size), idx] = np.inf  # self, by index
  want = np.sort(d, axis=1)[:, _hashing.WIDTH_K - 1]
  np.testing.assert_allclose(projected.sample_radii, want, rtol=2e-3)
  np.testing.assert_allclose(
      np.asarray(projected.all_values()[:5000]), x64 @ np.asarray(
          family.projections, np.float64), rtol=1e-4, atol=1e-2)


def _numpy_sample_radii(x, seed):
  idx = np.sort(np.random.default_rng(seed).choice(
      len(x), _hashing.WIDTH_SAMPLE, replace=False))
  x64 = x.astype(np.float64)
  d = np.linalg.norm(x64[idx, None, :] - x64[None, :, :], axis=-1)
  d[np.arange(idx.size), idx] = np.inf  # self, by index
  return np.sort(d, axis=1)[:, _hashing.WIDTH_K - 1]


@pytest.mark.parametrize("dense_far_out", [False, True])
def test_width_sample_radii_survive_float32_rounding(dense_far_out):
  """Where the float32 candidate pass cannot resolve the neighbours (a
  dense cluster next to points 3e5 times as far out), the radii come from
  the float64 pass instead, and equal numpy's; elsewhere they need it for
  no point."""
  rng = np.random.default_rng(5)
  x = rng.normal(size=(6000, 3)).astype(np.float32)
  if dense_far_out:
    x[:5000] = 1e-2 * x[:5000]  # 5,000 points around 0, radii ~ 1e-3
    x[5000:] *= 3e3 / np.linalg.norm(x[5000:], axis=1, keepdims=True)
  calls = []
  exact = _hashing._exact_kth  # pylint: disable=protected-access
  with mock.patch.object(_hashing, "_exact_kth",
                         lambda *a: calls.extend(a[2]) or exact(*a)):
    got = _hashing.sample_radii(jax.device_put(x), 7)
  np.testing.assert_allclose(got, _numpy_sample_radii(x, 7), rtol=1e-6)
  in_bulk = np.sum(np.sort(np.random.default_rng(7).choice(
      6000, _hashing.WIDTH_SAMPLE, replace=False)) < 5000)
  assert len(calls) == (in_bulk if dense_far_out else 0)


@pytest.mark.parametrize("n", [3, 5, 20, 33, 34])
def test_width_sample_radii_of_small_sets_equal_numpy(n):
  """Sets with fewer points than the sample or the candidates (a slot with
  no point in it; fewer than k others: inf)."""
  x = np.random.default_rng(n).normal(size=(n, 4)).astype(np.float32)
  got = _hashing.sample_radii(jax.device_put(x), 2)
  x64 = x.astype(np.float64)
  d = np.linalg.norm(x64[:, None, :] - x64[None, :, :], axis=-1)
  np.fill_diagonal(d, np.inf)
  want = (np.sort(d, axis=1)[:, _hashing.WIDTH_K - 1] if n > _hashing.WIDTH_K
          else np.full(n, np.inf))
  idx = np.sort(np.random.default_rng(2).choice(
      n, min(n, _hashing.WIDTH_SAMPLE), replace=False))
  np.testing.assert_allclose(got, want[idx], rtol=1e-6)


def test_reference_is_unchanged_by_changing_the_callers_array():
  """An aligned float32 array could be shared with the device: the
  reference keeps its own copy, so results read after the caller changed
  the array are those of the array it was given."""
  rng = np.random.default_rng(0)
  real = _checks._aligned_float32((800, 6))  # pylint: disable=protected-access
  real[...] = rng.normal(size=(800, 6))
  fake = rng.normal(size=(700, 6)).astype(np.float32)
  want = metrics.Reference(real.copy()).knn_metrics(fake)
  # Passed as it is, and as a jax array that may share its buffer.
  refs = [metrics.Reference(real), metrics.Reference(jax.device_put(real))]
  real[...] = 100.0
  for ref in refs:
    assert ref.knn_metrics(fake) == want
