"""The robust peers (lsh_gan.metrics.robust) against their authors' code.

TopP&R is checked against the authors' package (`top_pr`, a test extra);
P-precision/recall, clipped density/coverage and the realism score against
numpy transcriptions of the authors' published code (benchmarks/_published.py,
each following that code step by step, with its own quirks), on Gaussians with outliers and
on real digit embeddings (the train split against the held-out cases of
benchmarks/known_truth.py).
"""

import os
import sys

from lsh_gan import metrics
from lsh_gan.metrics import _robust
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "benchmarks"))
import _published  # pylint: disable=g-import-not-at-top,wrong-import-position
import known_truth  # pylint: disable=g-import-not-at-top,wrong-import-position


# Data.


def gaussians_with_outliers(seed=0, n=700, m=600, dim=16):
  rng = np.random.default_rng(seed)
  real = rng.normal(size=(n, dim))
  fake = rng.normal(size=(m, dim)) * 1.2 + 0.3
  real[:7] *= 8.0  # far outliers in either set
  fake[:12] += 10.0
  return real, fake


@pytest.fixture(scope="module")
def digits(data_dir):
  """Digit embeddings (224 features): the train split and held-out cases."""
  return known_truth.embedded_cases("digits", data_dir)


def pairs(digits):
  real, cases = digits
  yield "gaussians", *gaussians_with_outliers()
  for case in ("heldout", "noise20", "half"):
    yield f"digits {case}", real, cases[case]


# Against the authors' code.


def test_probabilistic_matches_the_published_code(digits):
  for name, real, fake in pairs(digits):
    ours = metrics.probabilistic_precision_recall(real, fake)
    theirs = _published.p_precision_recall(real, fake)
    assert (ours["precision"], ours["recall"]) == pytest.approx(
        theirs, rel=1e-4, abs=1e-5), name
  real, fake = gaussians_with_outliers(1)
  ours = metrics.probabilistic_precision_recall(real, fake, k=2, scale=0.7)
  assert (ours["precision"], ours["recall"]) == pytest.approx(
      _published.p_precision_recall(real, fake, k=2, a=0.7), rel=1e-4)


def _torch_projection(dim):
  """The projection top_pr.compute_top_pr draws (its seeding, in order)."""
  torch = pytest.importorskip("torch")
  torch.manual_seed(42)
  layer = torch.nn.Linear(dim, 32, bias=False)
  torch.manual_seed(99)
  torch.nn.init.xavier_normal_(layer.weight)
  return layer.weight.detach().numpy().T.astype(np.float64)


def test_top_matches_the_authors_package(digits, capsys):
  top_pr = pytest.importorskip("top_pr")
  for name, real, fake in pairs(digits):
    if real.shape[1] > 32:
      # The package projects with torch's generator: ours is given the
      # projected sets (32 features, so it projects nothing more).
      projection = _torch_projection(real.shape[1])
      ours = metrics.top_precision_recall(real @ projection, fake @ projection)
    else:
      np.random.seed(42)  # the package seeds numpy only when it projects
      ours = metrics.top_precision_recall(real, fake)
    theirs = top_pr.compute_top_pr(
        real_features=np.asarray(real, np.float32),
        fake_features=np.asarray(fake, np.float32))
    # Float32 sums here, float64 there: a point on its band's edge may
    # fall either side.
    assert ours["precision"] == pytest.approx(theirs["fidelity"],
                                              abs=2.5 / len(fake)), name
    assert ours["recall"] == pytest.approx(theirs["diversity"],
                                           abs=2.5 / len(real)), name
  capsys.readouterr()  # the package prints progress


def test_clipped_matches_the_published_code(digits):
  for name, real, fake in pairs(digits):
    ours = metrics.clipped_density_coverage(real, fake)
    density, coverage, _ = _published.clipped_density_coverage(real, fake)
    assert ours["density"] == pytest.approx(density, abs=2 / len(fake)), name
    assert ours["coverage"] == pytest.approx(coverage, abs=2 / len(fake)), name


def test_clipped_calibration_matches_the_published_sum():
  for n, m, k in ((1438, 359, 5), (300, 900, 3), (50, 40, 7)):
    _, _, published = _published.clipped_density_coverage(
        np.zeros((n, 1)), np.zeros((m, 1)), k)
    np.testing.assert_allclose(_robust.expected_clipped_coverage(n, m, k),
                               published, rtol=1e-9, atol=1e-12)


def test_realism_matches_the_published_code(digits):
  for name, real, fake in pairs(digits):
    # Without the published eps: an absolute 1e-5 added to squared
    # distances, which these embeddings' (squared distances about 0.01-1)
    # would feel at 1e-3 (ours is the same at any scale).
    np.testing.assert_allclose(metrics.realism_scores(real, fake),
                               _published.realism_scores(real, fake, eps=0.0),
                               rtol=1e-4, err_msg=name)


# Known answers on real embeddings (the P/R peers: in
# tests/metrics_known_truth_test.py).


def test_realism_ranks_noise_images_below_digits(digits):
  real, cases = digits
  noise = metrics.realism_scores(real, cases["noise"])
  held = metrics.realism_scores(real, cases["heldout"])
  # Every noise image is less realistic than nine in ten held-out digits
  # (the ranking the score is for), and none lies inside a kept real ball
  # (the smaller half of the balls; 39% of held-out digits do).
  assert np.max(noise) < np.quantile(held, 0.1)
  assert np.max(noise) < 1.0 <= np.quantile(held, 0.7)


# Conventions: scale, caching, batches, errors.


def test_any_scale_gives_the_same_numbers():
  real, fake = gaussians_with_outliers(2, n=400, m=300, dim=8)
  base = {
      "p": metrics.probabilistic_precision_recall(real, fake),
      "top": metrics.top_precision_recall(real, fake),
      "clipped": metrics.clipped_density_coverage(real, fake),
  }
  realism = metrics.realism_scores(real, fake)
  for factor in (2.0 ** -90, 1e-30, 3e25, 2.0 ** 110):
    real_s, fake_s = real * factor, fake * factor
    assert metrics.top_precision_recall(real_s, fake_s) == base["top"]
    assert metrics.clipped_density_coverage(real_s, fake_s) == base["clipped"]
    p = metrics.probabilistic_precision_recall(real_s, fake_s)
    assert p == pytest.approx(base["p"], rel=1e-5)
    np.testing.assert_allclose(metrics.realism_scores(real_s, fake_s),
                               realism, rtol=1e-5)


def test_a_fake_set_far_larger_than_the_reference():
  # One fake value 2^60 times the real set's magnitude: the fake set is
  # computed in larger units and the cached real side divided to match.
  real, fake = gaussians_with_outliers(3, n=400, m=300, dim=8)
  fake[0] *= 2.0 ** 60
  small = 2.0 ** -40  # both sets at a scale where no shift is needed
  ref = metrics.Reference(real)
  assert ref.fake_set(fake).shift > 0
  assert ref.top_precision_recall(fake) == metrics.top_precision_recall(
      real * small, fake * small)
  assert ref.clipped_density_coverage(fake) == (
      metrics.clipped_density_coverage(real * small, fake * small))
  assert ref.probabilistic_precision_recall(fake) == pytest.approx(
      metrics.probabilistic_precision_recall(real * small, fake * small),
      rel=1e-5)
  np.testing.assert_allclose(
      ref.realism_scores(fake),
      metrics.realism_scores(real * small, fake * small), rtol=1e-5)


def test_a_fake_set_far_smaller_than_the_reference():
  # The fake set shrunk onto the real set's centre: every fake point lies
  # in the real bulk (precision 1) and its support is a point no real point
  # reaches (recall 0). Its own radius and bandwidth are read at its own
  # scale, so 2^-80 (where its distances underflow in the reference's
  # units) reads as 2^-30 does.
  real, fake = gaussians_with_outliers(4, n=400, m=300, dim=8)
  fake -= np.median(fake, axis=0)
  ref = metrics.Reference(real - np.median(real, axis=0))
  assert ref.fake_set(fake * 2.0 ** -80).own < -60
  for factor in (2.0 ** -30, 2.0 ** -80):
    p = ref.probabilistic_precision_recall(fake * factor)
    top = ref.top_precision_recall(fake * factor)
    assert p == pytest.approx({"precision": 1.0, "recall": 0.0}, abs=1e-6)
    assert top == {"precision": 1.0, "recall": 0.0}


def test_the_reference_computes_its_side_once():
  real, fake = gaussians_with_outliers(4, n=400, m=300, dim=8)
  ref = metrics.Reference(real)
  first = [ref.top_precision_recall(fake), ref.clipped_density_coverage(fake),
           ref.probabilistic_precision_recall(fake)]
  computed = dict(ref.computed)
  assert computed == {"knn": 1, "top": 1, "clipped": 1}
  other = fake[::-1] + 0.1
  ref.top_precision_recall(other)
  ref.clipped_density_coverage(other)
  ref.probabilistic_precision_recall(other)
  ref.realism_scores(other)
  assert dict(ref.computed) == computed
  # A cached side gives the one-shot numbers, for any fake set after any.
  assert first == [metrics.top_precision_recall(real, fake),
                   metrics.clipped_density_coverage(real, fake),
                   metrics.probabilistic_precision_recall(real, fake)]
  assert ref.top_precision_recall(fake, seed=1) == (
      metrics.top_precision_recall(real, fake, seed=1))


def test_a_reference_from_batches_gives_the_same_numbers(tmp_path):
  real, fake = gaussians_with_outliers(5, n=500, m=300, dim=40)
  ref = metrics.Reference.from_batches(np.array_split(real, 3),
                                       directory=str(tmp_path))
  whole = metrics.Reference(real)
  for method in ("top_precision_recall", "clipped_density_coverage",
                 "probabilistic_precision_recall"):
    assert getattr(ref, method)(fake) == getattr(whole, method)(fake), method
  np.testing.assert_array_equal(ref.realism_scores(fake),
                                whole.realism_scores(fake))


@pytest.mark.parametrize("call, message", [
    (lambda r, f: metrics.probabilistic_precision_recall(r, f, k=0), "k=0"),
    (lambda r, f: metrics.probabilistic_precision_recall(r, f, scale=0.0),
     "scale=0.0"),
    (lambda r, f: metrics.probabilistic_precision_recall(r, f, scale=np.nan),
     "scale=nan"),
    (lambda r, f: metrics.top_precision_recall(r, f, alpha=1.0), "alpha=1.0"),
    (lambda r, f: metrics.top_precision_recall(r, f, bootstraps=0),
     "bootstraps=0"),
    (lambda r, f: metrics.top_precision_recall(r, f, projection_dim=0),
     "projection_dim=0"),
    (lambda r, f: metrics.top_precision_recall(r, f, seed=-1), "seed=-1"),
    (lambda r, f: metrics.top_precision_recall(r, f[:40]),
     "fake: has 40 points; TopP&R"),
    (lambda r, f: metrics.clipped_density_coverage(r, f[:4]),
     "fake: has 4 points; clipped coverage with k=5"),
    (lambda r, f: metrics.top_precision_recall(r, f, seed=2 ** 40),
     "below 2\\*\\*32"),
    (lambda r, f: metrics.realism_scores(r, f[:, :3]), "feature sizes"),
    (lambda r, f: metrics.realism_scores(r[:3], f), "real: has 3 points"),
])
def test_bad_input_is_named(call, message):
  real, fake = gaussians_with_outliers(6, n=300, m=200, dim=8)
  with pytest.raises(ValueError, match=message.replace("(", r"\(")):
    call(real, fake)


def test_identical_points_raise_a_clear_error():
  same = np.ones((300, 4))
  fine = np.random.default_rng(0).normal(size=(300, 4))
  with pytest.raises(metrics.DegenerateError, match="fake: the mean"):
    metrics.probabilistic_precision_recall(fine, same)
  with pytest.raises(metrics.DegenerateError, match="real: TopP&R"):
    metrics.top_precision_recall(same, fine)
  # A copy of a kept real point is infinitely realistic.
  assert metrics.realism_scores(fine, fine[:5]).tolist() .count(np.inf) >= 1
