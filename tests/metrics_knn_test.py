"""Exact KNN metrics against the prdc package and hand computations."""

import contextlib
import io

import numpy as np
import prdc
import pytest

from lsh_gan import metrics
from lsh_gan.metrics import knn


def _prdc(real, fake, k):
  with contextlib.redirect_stdout(io.StringIO()):  # prdc prints its sizes
    return prdc.compute_prdc(real, fake, k)


def _sets(n_real, n_fake, dim, seed):
  rng = np.random.default_rng(seed)
  real = rng.normal(size=(n_real, dim)).astype(np.float32)
  fake = (rng.normal(size=(n_fake, dim)) * 1.3 + 0.4).astype(np.float32)
  return real, fake


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("n_real,n_fake,dim", [(300, 500, 2), (1100, 900, 16),
                                               (700, 1300, 64)])
def test_equals_prdc_on_tie_free_data(k, n_real, n_fake, dim):
  real, fake = _sets(n_real, n_fake, dim, seed=k + dim)
  want = _prdc(real, fake, k)
  pr = metrics.knn_precision_recall(real, fake, k=k)
  dc = metrics.density_coverage(real, fake, k=k)
  for name, value in {**pr, **dc}.items():
    assert value == pytest.approx(want[name], abs=1e-6), name
  assert 0 < pr["precision"] < 1  # the data is not a trivial case


def test_hand_computed_one_dimensional_example():
  real = np.array([[0.0], [1.0], [3.0]])
  fake = np.array([[0.5], [2.9], [10.0]])
  # k=1 radii: real 1, 1, 2; fake 2.4, 2.4, 7.1.
  ref = metrics.KNNReference(real, max_k=1)
  np.testing.assert_allclose(ref.radii(1), [1.0, 1.0, 2.0], rtol=1e-6)
  assert ref.score(fake, k=1, density_k=1) == pytest.approx(
      {"precision": 2 / 3, "recall": 1.0, "density": 1.0, "coverage": 1.0})


def test_identical_sets_score_one():
  real, _ = _sets(400, 1, 8, seed=0)
  assert metrics.knn_precision_recall(real, real) == {"precision": 1.0,
                                                      "recall": 1.0}
  # Each copy lies in its own ball and in its k neighbours' balls. The k-th
  # neighbour lies on its ball's boundary, where the cross pass's rounding
  # of that distance may differ from the radius pass's in the last bit.
  out = metrics.density_coverage(real, real, k=5)
  assert out["coverage"] == 1.0
  assert out["density"] == pytest.approx(6 / 5, abs=0.01)
  assert _prdc(real, real, 3)["precision"] == 1.0  # each point in its own ball


def test_with_zero_radii_le_counts_the_boundary_and_prdc_does_not():
  base, _ = _sets(200, 1, 8, seed=0)
  twins = np.concatenate([base, base])  # k=1 radius 0 everywhere
  assert metrics.knn_precision_recall(twins, twins, k=1) == {"precision": 1.0,
                                                             "recall": 1.0}
  # prdc's strict < fails at radius 0; only twins that its own rounding puts
  # at a non-zero distance pass (how many depends on the machine's BLAS).
  assert _prdc(twins, twins, 1)["precision"] < 0.5


def test_far_apart_sets_score_zero():
  real, fake = _sets(300, 300, 4, seed=1)
  out = knn.KNNReference(real).score(fake + 1e3)
  assert out == {"precision": 0.0, "recall": 0.0, "density": 0.0,
                 "coverage": 0.0}


def test_duplicates_are_excluded_by_index_not_by_distance():
  rng = np.random.default_rng(2)
  base = rng.normal(size=(50, 3))
  real = np.concatenate([base, base])  # every point has a twin
  ref = metrics.KNNReference(real, max_k=2)
  np.testing.assert_array_equal(ref.radii(1), np.zeros(100))  # the twin
  assert np.all(ref.radii(2) > 0)
  # k=1 balls have radius 0: only exact copies are inside.
  fake = np.concatenate([base[:10], base[:40] + 0.01])
  assert ref.score(fake, k=1, density_k=1)["precision"] == 10 / 50


@pytest.mark.parametrize("scale", [2.0 ** -70, 2.0 ** 70])
def test_power_of_two_scales_give_identical_radii_and_scores(scale):
  real, fake = _sets(300, 250, 10, seed=7)
  ref = metrics.KNNReference(real)
  scaled = metrics.KNNReference(real * scale)
  np.testing.assert_array_equal(scaled.radii(3), ref.radii(3) * scale)
  assert scaled.score(fake * scale) == ref.score(fake)


def test_blocking_and_padding_do_not_change_the_result():
  real, fake = _sets(333, 250, 10, seed=3)
  small_blocks = metrics.KNNReference(real, block=64).score(fake)
  one_block = metrics.KNNReference(real, block=1024).score(fake)
  assert small_blocks == one_block


def test_reference_side_is_computed_once(monkeypatch):
  real, fake = _sets(300, 200, 6, seed=4)
  ref = metrics.KNNReference(real)
  calls = []
  original = knn.nearest_sq_distances
  monkeypatch.setattr(knn, "nearest_sq_distances",
                      lambda points, k: calls.append(points.n) or original(points, k))
  first = ref.score(fake)
  second = ref.score(fake[:150] * 0.9)
  assert calls == [200, 150]  # only the fake sets' radii; never the real's
  assert first != second


_KERNELS = ("_block_of", "_radius_diagonal", "_radius_pair", "_cross_pair")


def _compiled():
  return [getattr(knn, name)._cache_size() for name in _KERNELS]  # pylint: disable=protected-access


def test_a_new_n_does_not_compile_new_kernels():
  real, fake = _sets(300, 500, 12, seed=5)
  ref = metrics.KNNReference(real, block=128)
  ref.score(fake)
  sizes = _compiled()
  ref.score(fake[:77])
  ref.score(fake[:431])
  assert _compiled() == sizes


def test_automatic_blocks_compile_a_handful_of_kernels_for_any_n():
  real, fake = _sets(700, 700, 12, seed=6)
  ref = metrics.KNNReference(real)
  ref.score(fake)
  before = _compiled()
  for m in range(5, 700, 37):  # 19 sizes, four automatic blocks
    ref.score(fake[:m])
  grown = [after - b for after, b in zip(_compiled(), before)]
  # Fake blocks of 128, 256 and 512 rows are new (1,024 was compiled).
  assert max(grown) <= 3, grown


def test_automatic_block_sizes():
  assert knn.block_size(1, 64) == knn.MIN_BLOCK
  assert knn.block_size(300, 64) == 512
  assert knn.block_size(10**6, 64) == knn.BLOCK
  assert knn.block_size(10**6, 2048) == knn.MAX_BLOCK
  assert knn.block_size(1500, 2048) == 2048


@pytest.mark.parametrize("call,match", [
    (lambda r, f: metrics.knn_precision_recall(r[:, 0], f), r"real: expected a 2-D"),
    (lambda r, f: metrics.knn_precision_recall(r, f[:, :3]), r"fake: has 3 features"),
    (lambda r, f: metrics.knn_precision_recall(r[:3], f), r"real: has 3 points; k=3 needs"),
    (lambda r, f: metrics.knn_precision_recall(r, f[:2]), r"fake: has 2 points"),
    (lambda r, f: metrics.density_coverage(r, f, k=0), r"k=0 must be a positive"),
    (lambda r, f: metrics.density_coverage(r, f, k=True), r"k=True"),
    (lambda r, f: metrics.knn_precision_recall(np.where(r > 2, np.nan, r), f),
     r"real: contains NaN or inf"),
    (lambda r, f: metrics.knn_precision_recall(r, f * np.inf), r"fake: contains"),
    (lambda r, f: metrics.KNNReference(r, max_k=3).score(f, k=4), r"k=4 is larger"),
    (lambda r, f: metrics.knn_precision_recall(r[:0], f), r"real: is empty"),
    (lambda r, f: metrics.KNNReference(r, block=0), r"block=0 must be a"),
    (lambda r, f: metrics.knn_precision_recall([[0.0, 1.0], [2.0]], f),
     r"real: cannot be read as a 2-D array"),
    (lambda r, f: metrics.KNNReference(r).score([[1.0] * 5, [1.0] * 4] * 3),
     r"fake: cannot be read as a 2-D array"),
])
def test_bad_input_raises_value_error_naming_the_set(call, match):
  real, fake = _sets(50, 40, 5, seed=6)
  with pytest.raises(ValueError, match=match):
    call(real, fake)
