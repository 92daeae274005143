"""LSH + KNN precision/recall: the exact limit, radii bounds, known answers."""

import collections
from unittest import mock
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from lsh_gan import metrics
from lsh_gan.metrics import knn
from lsh_gan.metrics import _hashing
from lsh_gan.metrics import _lsh_knn
from lsh_gan.metrics import lsh
from lsh_gan.metrics import lsh_knn
from metrics_lsh_test import Mixture


PR = ("precision", "recall")


def _pr(out):
  return {key: out[key] for key in PR}


@pytest.mark.parametrize("n,m,k", [(97, 131, 1), (203, 77, 5)])
def test_one_bucket_and_enough_candidates_equal_exact_knn(n, m, k):
  # One bucket (a huge width) and max_candidates >= max(n, m): every point
  # is a candidate of every other, so the balls and the covering pairs are
  # exact KNN's, bit for bit (duplicates included: distance 0 both ways).
  rng = np.random.default_rng(n)
  real = rng.normal(size=(n, 6)).astype(np.float32)
  fake = (rng.normal(size=(m, 6)) * 1.3 + 0.3).astype(np.float32)
  fake[:10] = real[:10]
  real[20:25] = real[30:35]
  got = metrics.lsh_knn_precision_recall(real, fake, k=k, bucket_width=1e6,
                                         max_candidates=max(n, m),
                                         num_tables=1)
  assert _pr(got) == metrics.knn_precision_recall(real, fake, k=k)
  # The error estimate is then exactly 0.
  assert got["precision_error"] == got["recall_error"] == 0.0


def test_a_second_fake_set_sorts_only_its_own_side():
  rng = np.random.default_rng(5)
  real = rng.normal(size=(3000, 8)).astype(np.float32)
  ref = metrics.Reference(real)
  sorts = []
  sort = _lsh_knn._sort_tables  # pylint: disable=protected-access

  def counted(key1, *args):
    sorts.append(key1.shape[0])
    return sort(key1, *args)

  with mock.patch.object(_lsh_knn, "_sort_tables", counted):
    ref.lsh_knn_precision_recall(real[:500] + 0.1, error_sample=0)
    after_first = dict(ref.computed)
    sorts.clear()
    ref.lsh_knn_precision_recall(real[500:900] * 1.1, error_sample=0)
  assert sorts == [1024]  # the fake set's tables (padded size), nothing else
  assert dict(ref.computed) == after_first


def _gaussians(n, m, dim, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(n, dim)).astype(np.float32),
          (rng.normal(size=(m, dim)) * 1.1 + 0.1).astype(np.float32))


def test_error_estimate_finds_a_known_gap_and_warns():
  # m = 300 against n = 5,000 isotropic Gaussians at d = 64: candidate radii
  # are inflated and LSH+KNN precision reads about 0.13 above exact KNN's.
  real, fake = _gaussians(5000, 300, 64)
  exact = metrics.knn_precision_recall(real, fake)
  with pytest.warns(_lsh_knn.AccuracyWarning, match="precision"):
    got = metrics.lsh_knn_precision_recall(real, fake)
  for key in PR:
    gap = got[key] - exact[key]
    assert abs(got[f"{key}_error"] - gap) <= 2 * got[f"{key}_error_se"] + 1e-9
  assert got["precision"] - exact["precision"] > 0.05


def test_no_warning_where_it_agrees():
  mix = Mixture(16, modes=5, seed=2)
  real, fake = mix.sample(2000, range(5)), mix.sample(1500, range(3))
  with warnings.catch_warnings():
    warnings.simplefilter("error", _lsh_knn.AccuracyWarning)
    got = metrics.lsh_knn_precision_recall(real, fake)
  exact = metrics.knn_precision_recall(real, fake)
  for key in PR:
    gap = got[key] - exact[key]
    assert abs(gap) <= 0.03
    assert abs(got[f"{key}_error"] - gap) <= 2 * got[f"{key}_error_se"] + 1e-9


def test_radii_bound_exact_radii_and_isolated_points_are_flagged():
  rng = np.random.default_rng(0)
  real = rng.normal(size=(600, 6)).astype(np.float32)
  family = _hashing.HashFamily.create(6, num_tables=8, num_hashes=4, seed=0)
  prepared = _lsh_knn.Prepared(jnp.asarray(real), jnp.asarray(real.mean(0)),
                              family, max_candidates=16)
  rho2 = np.asarray(_lsh_knn.candidate_radii_sq(prepared, 2.0, 3))
  exact = knn.KNNReference(real, max_k=3).radii(3)
  isolated = rho2 < 0
  assert 0 < isolated.sum() < 600
  assert np.all(np.sqrt(rho2[~isolated]) >= exact[~isolated] * (1 - 1e-5))
  # Candidates are near neighbours, not arbitrary points: the radii are
  # close to the exact ones (16 random points would give about (599/16)^(1/6)
  # = 1.8 times the exact radius in 6-D; these give about 1.1).
  ratio = np.sqrt(rho2[~isolated]) / exact[~isolated]
  assert np.median(ratio) < 1.5


@pytest.mark.parametrize("dim", [2, 64])
def test_close_to_exact_knn_on_mixtures_at_the_defaults(dim):
  mix = Mixture(dim, modes=10, seed=dim)
  real = mix.sample(2000, range(10))
  fake = mix.sample(2000, range(6))
  exact = metrics.knn_precision_recall(real, fake)
  got = metrics.lsh_knn_precision_recall(real, fake)
  assert got["precision"] == pytest.approx(exact["precision"], abs=0.03)
  assert got["recall"] == pytest.approx(exact["recall"], abs=0.03)


def test_identical_far_and_deterministic():
  mix = Mixture(16, modes=5, seed=1)
  real = mix.sample(800, range(5))
  # Each point lies in its own twin's ball unless the twin is isolated (fewer
  # than k candidates in all L = 4 tables of K = 8 functions: under 1% here).
  same = metrics.lsh_knn_precision_recall(real, real)
  assert same["precision"] >= 0.99 and same["recall"] >= 0.99
  assert _pr(metrics.lsh_knn_precision_recall(real, real, num_tables=16)) == {
      "precision": 1.0, "recall": 1.0}
  assert _pr(metrics.lsh_knn_precision_recall(real, real + 1e3)) == {
      "precision": 0.0, "recall": 0.0}
  fake = mix.sample(700, range(3))
  assert (metrics.lsh_knn_precision_recall(real, fake, seed=3) ==
          metrics.lsh_knn_precision_recall(real, fake, seed=3))


@pytest.mark.parametrize("kwargs,match", [
    (dict(k=0), "k=0 must be a positive integer"),
    (dict(max_candidates=0), "max_candidates=0"),
    (dict(num_tables=-1), "num_tables=-1"),
    (dict(bucket_width=-1.0), "bucket_width=-1.0"),
    (dict(error_sample=-2), "error_sample=-2"),
])
def test_bad_arguments(kwargs, match):
  x = np.random.default_rng(0).normal(size=(50, 3))
  with pytest.raises(ValueError, match=match):
    metrics.lsh_knn_precision_recall(x, x, **kwargs)


def test_too_few_points_names_the_set():
  x = np.random.default_rng(0).normal(size=(50, 3))
  with pytest.raises(ValueError, match="fake: has 3 points; k=3 needs"):
    metrics.lsh_knn_precision_recall(x, x[:3])


def test_bucket_mates_equal_numpy_and_fill_width_reaches_the_target():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(2500, 5)).astype(np.float32)
  family = _hashing.HashFamily.create(5, num_tables=3, num_hashes=4, seed=1)
  prepared = _lsh_knn.Prepared(jnp.asarray(x), jnp.zeros(5), family,
                              max_candidates=32)

  def numpy_mates(width):
    key1, key2 = (np.asarray(k)[:2500] for k in family.keys(prepared.values,
                                                              width))
    mates = []
    for table in range(3):
      pairs = list(zip(key1[:, table], key2[:, table]))
      sizes = collections.Counter(pairs)
      mates += [sizes[p] - 1 for p in pairs]
    return np.asarray(mates)

  for width in (0.5, 1.0, 3.0):
    key1, key2 = family.keys(prepared.values, width)
    for target in (1, 8, 30):
      s1, s2, _ = _hashing.sort_tables(key1, key2, 2500)
      count = _hashing.pairs_with_mates((s1, s2), 2500, target)
      assert int(count) == np.sum(numpy_mates(width) >= target)
  width = _lsh_knn.fill_width(prepared, target=8, start=1.0)
  median = lambda w: np.sort(numpy_mates(w))[(3 * 2500 - 1) // 2]
  assert median(width) >= 8 > median(width * 0.95)


@pytest.mark.parametrize("known,rounds", [(False, 3), (False, 0),
                                          (False, 1000), (True, 3)])
def test_exact_indicator_over_every_query_is_exact_knn(known, rounds):
  # The error estimate's exact side, on every query at once, must give exact
  # KNN precision and recall: with the radii computed by the index itself
  # (as they decide queries, in `rounds` rounds of one per undecided query,
  # then all at once), or taken from a Reference's exact KNN side.
  mix = Mixture(10, modes=4, seed=5)
  real, fake = mix.sample(900, range(4)), mix.sample(700, range(3))
  exact = metrics.knn_precision_recall(real, fake)
  ref = metrics.Reference(real)
  if known:
    ref.knn_metrics(fake)
  with mock.patch.object(_lsh_knn, "EXACT_ROUNDS", rounds):
    got = ref.lsh_knn_precision_recall(fake, error_sample=900)
  for key in PR:
    assert got[f"{key}_error_se"] >= 0
    assert got[key] - got[f"{key}_error"] == pytest.approx(exact[key],
                                                           abs=1e-12)
