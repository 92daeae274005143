"""Generic properties every metric must have, over one shared list.

Adding a public metric function to `lsh_gan.metrics` means adding an entry to
METRICS; `test_every_public_metric_is_listed` fails until it is. The data are
real: the committed digits embedder applied to the digits split (real) and to
samples of the committed DCGAN (fake).
"""

import dataclasses
import functools
import inspect
from typing import Callable

import jax
import numpy as np
import pytest
import scipy.spatial

import metrics_fid_test

from lsh_gan import data
from lsh_gan import metrics
from lsh_gan import pretrained


SCALES = (1e-20, 1e-6, 1e6, 1e20)
# Scaling by a power of two is exact in float32, so scale-invariant metrics
# must then give bit-identical numbers; by 1e20 the inputs themselves are
# rounded, and a point within rounding of a ball or bucket boundary may move.
POWER_OF_TWO_SCALES = (2.0 ** -66, 2.0 ** -20, 2.0 ** 20, 2.0 ** 66)
KID_ARGS = dict(num_subsets=6, subset_size=150)


@dataclasses.dataclass(frozen=True)
class Metric:
  """A metric as the generic tests see it.

  Attributes:
    fn: (real, fake, **kwargs) -> dict of floats.
    bounds: per key, (low, high) every value lies in.
    identical: per key, the value for fake == real (None: not checked).
    far: per key, the value for sets far apart.
    scale_power: 0 for scale-invariant metrics; FID scales as s^2; None for
      KID (checked against float64 numpy instead).
    seeded: takes a `seed`.
  """
  fn: Callable
  bounds: dict
  identical: dict | None
  far: dict
  scale_power: int | None = 0
  seeded: bool = False


_FRACTION = (0.0, 1.0)
_ZERO = {"precision": 0.0, "recall": 0.0}

METRICS = {
    "knn_precision_recall": Metric(
        metrics.knn_precision_recall,
        bounds={"precision": _FRACTION, "recall": _FRACTION},
        identical={"precision": 1.0, "recall": 1.0}, far=_ZERO),
    "density_coverage": Metric(
        metrics.density_coverage,
        bounds={"density": (0.0, 1e3), "coverage": _FRACTION},
        # Each point lies in its own ball and its k = 5 neighbours'.
        identical={"density": 6 / 5, "coverage": 1.0},
        far={"density": 0.0, "coverage": 0.0}),
    "lsh_precision_recall": Metric(
        metrics.lsh_precision_recall,
        bounds={"precision": _FRACTION, "recall": _FRACTION},
        identical={"precision": 1.0, "recall": 1.0}, far=_ZERO, seeded=True),
    "lsh_knn_precision_recall": Metric(
        metrics.lsh_knn_precision_recall,
        # With its own error estimate against exact KNN (a difference of
        # fractions, and its standard error).
        bounds={"precision": _FRACTION, "recall": _FRACTION,
                "precision_error": (-1.0, 1.0), "recall_error": (-1.0, 1.0),
                "precision_error_se": _FRACTION,
                "recall_error_se": _FRACTION},
        # A point whose twin has fewer than k candidates is not covered.
        identical={"precision": 1.0, "recall": 1.0}, far=_ZERO, seeded=True),
    "probabilistic_precision_recall": Metric(
        metrics.probabilistic_precision_recall,
        bounds={"precision": _FRACTION, "recall": _FRACTION},
        # Each point sits on its twin: a ball that holds it surely.
        identical={"precision": 1.0, "recall": 1.0}, far=_ZERO),
    "top_precision_recall": Metric(
        metrics.top_precision_recall,
        bounds={"precision": _FRACTION, "recall": _FRACTION},
        # The two sets' confidence bands come from different resamples, so
        # a point between the two bands counts on one side only.
        identical={"precision": 1.0, "recall": 1.0}, far=_ZERO, seeded=True),
    "clipped_density_coverage": Metric(
        metrics.clipped_density_coverage,
        bounds={"density": _FRACTION, "coverage": _FRACTION},
        identical={"density": 1.0, "coverage": 1.0},
        far={"density": 0.0, "coverage": 0.0}),
    "realism_scores": Metric(
        # Per sample; the generic tests read their median.
        lambda real, fake, **kw: {"median": float(np.median(
            metrics.realism_scores(real, fake, **kw)))},
        bounds={"median": (0.0, np.inf)}, identical=None, far={}),
    "frechet_distance": Metric(
        metrics.frechet_distance, bounds={"fid": (0.0, np.inf)},
        identical={"fid": 0.0}, far={}, scale_power=2),
    "kernel_distance": Metric(
        lambda real, fake, **kw: metrics.kernel_distance(real, fake,
                                                         **KID_ARGS, **kw),
        bounds={"kid": (-np.inf, np.inf), "kid_std": (0.0, np.inf)},
        identical=None, far={}, scale_power=None, seeded=True),
}


@pytest.fixture(scope="module")
def sets(data_dir):
  """(real, fake) embeddings: 600 digits and 400 DCGAN samples, float32."""
  embed_fn, params = pretrained.embedder("digits")
  images = data.images("digits", data_dir=data_dir)
  pick = np.random.default_rng(0).choice(images.shape[0], 600, replace=False)
  real = pretrained.embed_all(embed_fn, params, images[np.sort(pick)])
  sample_fn, variables = pretrained.generator("dcgan_digits")
  fake = pretrained.embed_all(embed_fn, params, np.asarray(
      sample_fn(variables, jax.random.key(0), 400)))
  return real, fake


_UNSCALED = {}


def _unscaled(name, sets):
  if name not in _UNSCALED:
    _UNSCALED[name] = METRICS[name].fn(*sets)
  return _UNSCALED[name]


def test_every_public_metric_is_listed():
  public = {name for name in metrics.__all__
            if inspect.isfunction(getattr(metrics, name))}
  assert public == set(METRICS)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_values_lie_in_their_bounds(name, sets):
  out = _unscaled(name, sets)
  assert set(out) == set(METRICS[name].bounds)
  for key, (low, high) in METRICS[name].bounds.items():
    assert low <= out[key] <= high, key
  if METRICS[name].scale_power == 0:
    assert 0 < max(out.values())  # not a trivial case


@pytest.mark.parametrize("name", sorted(METRICS))
def test_identical_sets(name, sets):
  real, _ = sets
  want = METRICS[name].identical
  if want is None and name != "kernel_distance":
    return
  out = METRICS[name].fn(real, real)
  if name == "kernel_distance":
    # Both sides' subsets come from the same n points, independently: a
    # cross pair is one point twice with probability 1/n, so the unbiased
    # MMD^2 has mean -(2/n)(mean k(x, x) - mean k(x, x')), not 0.
    x = real.astype(np.float64)
    kernel = (x @ x.T / x.shape[1] + 1) ** 3
    n = x.shape[0]
    self_k = np.mean(np.diag(kernel))
    cross_k = (kernel.sum() - np.trace(kernel)) / (n * (n - 1))
    expected = -2 / n * (self_k - cross_k)
    # Six subsets: their spread is itself uncertain (on these data 6.9e-6
    # here, 2.0e-5 over 400 subsets), hence the wide bound; the value equals
    # float64 numpy's on the same subsets (test_kid_at_unit_scale...).
    assert abs(out["kid"] - expected) < 5 * out["kid_std"]
    assert out["kid"] == pytest.approx(
        stable_numpy_kid(real, real, **KID_ARGS)[0], rel=1e-4)
    return
  for key, value in want.items():
    # Relative to the spread for FID (0 up to rounding); one point in a
    # hundred for the counts, whose ball boundaries are rounding-dependent.
    tolerance = (1e-5 * np.trace(np.cov(real, rowvar=False))
                 if name == "frechet_distance" else 0.01 * value)
    assert out[key] == pytest.approx(value, abs=tolerance), key


@pytest.mark.parametrize("name", sorted(METRICS))
def test_far_apart_sets(name, sets):
  real, fake = sets
  out = METRICS[name].fn(real, fake + 1e3 * np.abs(real).max())
  for key, value in METRICS[name].far.items():
    assert out[key] == value, key
  near = _unscaled(name, sets)
  for key in ("fid", "kid"):
    if key in out:
      assert out[key] > 1e3 * near[key]


@pytest.mark.parametrize("name", sorted(n for n in METRICS
                                        if METRICS[n].seeded))
def test_deterministic_for_a_seed(name, sets):
  fn = METRICS[name].fn
  assert fn(*sets, seed=3) == fn(*sets, seed=3)


@pytest.mark.parametrize("name", sorted(n for n in METRICS
                                        if METRICS[n].seeded))
@pytest.mark.parametrize("seed", [2.5, -1, True, "0", None])
def test_a_bad_seed_is_named(name, seed, sets):
  with pytest.raises(ValueError, match=rf"seed={seed!r} must be an integer"):
    METRICS[name].fn(*sets, seed=seed)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_ragged_lists_are_named(name, sets):
  real, fake = sets
  ragged = [list(row) for row in real[:50]]
  ragged[7] = ragged[7][:-1]
  with pytest.raises(ValueError, match="real: cannot be read as a 2-D array"):
    METRICS[name].fn(ragged, fake)
  with pytest.raises(ValueError, match="fake: cannot be read as a 2-D array"):
    METRICS[name].fn(real, ragged)


def stable_numpy_kid(real, fake, num_subsets, subset_size, seed=0,
                     textbook=False):
  """KID in float64 numpy, kernel minus its constant: 3t + 3t^2 + t^3.

  The constant 1 of (t + 1)^3 cancels exactly in the unbiased MMD^2; leaving
  it in would drown t at tiny scales even in float64. `textbook` uses the
  kernel as published, (x.y/d + 1)^3, fine at unit scale.
  """
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  rng = np.random.default_rng(seed)
  d, m = real.shape[1], subset_size
  values = []
  for _ in range(num_subsets):
    x = real[rng.choice(len(real), m, replace=False)]
    y = fake[rng.choice(len(fake), m, replace=False)]
    if textbook:
      kernel = lambda a, b: (a @ b.T / d + 1) ** 3
    else:
      kernel = lambda a, b: (lambda t: 3 * t + 3 * t * t + t ** 3)(a @ b.T / d)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    values.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) +
                  (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
  return float(np.mean(values)), float(np.std(values))


def _assert_kid_equals_numpy(got, real, fake):
  want, want_std = stable_numpy_kid(real, fake, **KID_ARGS)
  # The subset values are differences of kernel sums computed from float32
  # products: rounding is relative to those sums, which in this embedding
  # (non-negative unit-length blocks) are 1e5 times KID. 1e-3 of the
  # subsets' spread is far below KID's own sampling error.
  assert got["kid"] == pytest.approx(want, rel=1e-4, abs=1e-3 * want_std)
  assert got["kid_std"] == pytest.approx(want_std, rel=1e-3)


@pytest.mark.parametrize("scale", SCALES + POWER_OF_TWO_SCALES)
@pytest.mark.parametrize("name", sorted(METRICS))
def test_scaling_both_sets(name, scale, sets):
  real, fake = sets
  scaled = [(x * scale).astype(np.float32) for x in (real, fake)]
  out = METRICS[name].fn(*scaled)
  power = METRICS[name].scale_power
  if power is None:
    _assert_kid_equals_numpy(out, *scaled)
  elif power == 0 and scale in POWER_OF_TWO_SCALES:
    assert out == _unscaled(name, sets)
  elif power == 0:
    for key, value in _unscaled(name, sets).items():
      assert out[key] == pytest.approx(value, abs=1.5 / len(fake)), key
  else:
    assert out["fid"] == pytest.approx(
        _unscaled(name, sets)["fid"] * scale ** power, rel=1e-4)


def test_kid_at_unit_scale_equals_numpy(sets):
  _assert_kid_equals_numpy(_unscaled("kernel_distance", sets), *sets)


def test_kid_equals_the_textbook_kernel(sets):
  # Independent of the expansion the code and the reference above share.
  got = _unscaled("kernel_distance", sets)
  want, want_std = stable_numpy_kid(*sets, **KID_ARGS, textbook=True)
  assert got["kid"] == pytest.approx(want, rel=1e-4, abs=1e-4 * want_std)
  assert got["kid_std"] == pytest.approx(want_std, rel=1e-3)


def numpy_knn(real, fake, k=3, density_k=5):
  """The four KNN metrics by brute force in float64 (scipy's cdist)."""
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)

  def radii(x, kth):
    d = scipy.spatial.distance.cdist(x, x)
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, kth - 1]

  d = scipy.spatial.distance.cdist(fake, real)
  real_radii, fake_radii = radii(real, k), radii(fake, k)
  real_radii_dc = radii(real, density_k)
  return {"precision": np.mean(np.any(d <= real_radii, axis=1)),
          "recall": np.mean(np.any(d.T <= fake_radii, axis=1)),
          "density": np.sum(d <= real_radii_dc) / (density_k * len(fake)),
          "coverage": np.mean(d.min(axis=0) <= real_radii_dc)}


def _assert_knn_equals_numpy(got, real, fake):
  want = numpy_knn(real, fake)
  for key, value in want.items():
    # One point either way: a distance within rounding of a radius.
    assert got[key] == pytest.approx(value, abs=1.5 / len(fake)), key


@pytest.mark.parametrize("scale", [2.0 ** -170, 2.0 ** 170])
def test_float64_embeddings_beyond_the_float32_range(scale, sets):
  real, fake = (np.asarray(x, np.float64) * scale for x in sets)
  for name in set(METRICS) - {"kernel_distance"}:
    out = METRICS[name].fn(real, fake)
    if METRICS[name].scale_power == 0:
      assert out == _unscaled(name, sets), name
    elif name == "frechet_distance":
      assert out["fid"] == pytest.approx(
          _unscaled(name, sets)["fid"] * scale ** 2, rel=1e-5)
  # KID grows as s^6 at large scales: past float64's range, a clear error.
  if scale > 1:
    with pytest.raises(ValueError, match="kid: the distance exceeds the "
                       "float64 range"):
      METRICS["kernel_distance"].fn(real, fake)
  else:
    _assert_kid_equals_numpy(METRICS["kernel_distance"].fn(real, fake), real,
                             fake)


@pytest.mark.filterwarnings("ignore:Matrix is singular")
@pytest.mark.parametrize("scale", [1e25, 1e-25])
def test_a_reference_scores_fake_sets_of_another_scale(scale, sets):
  real, fake = sets
  fake = (fake * scale).astype(np.float32)
  ref = metrics.Reference(real)
  _assert_knn_equals_numpy(ref.knn_metrics(fake), real, fake)
  assert ref.frechet_distance(fake)["fid"] == pytest.approx(
      metrics_fid_test.scipy_fid(real, fake), rel=1e-4)
  _assert_kid_equals_numpy(ref.kernel_distance(fake, **KID_ARGS), real, fake)
  # The smaller set is a single point at the larger one's resolution: a
  # huge fake set covers no real ball, a tiny one's balls hold no real point.
  for out in (ref.lsh_precision_recall(fake),
              ref.lsh_knn_precision_recall(fake)):
    assert out["precision" if scale > 1 else "recall"] == 0.0
    assert out["precision"] in (0.0, 1.0) and out["recall"] in (0.0, 1.0)


def test_a_reference_of_any_scale_equals_the_unscaled_one(sets):
  real, fake = sets
  unscaled = metrics.Reference(real)
  want = (unscaled.knn_metrics(fake), unscaled.lsh_precision_recall(fake),
          unscaled.lsh_knn_precision_recall(fake))
  for scale in POWER_OF_TWO_SCALES:
    ref = metrics.Reference((real * scale).astype(np.float32))
    scaled_fake = (fake * scale).astype(np.float32)
    assert (ref.knn_metrics(scaled_fake), ref.lsh_precision_recall(scaled_fake),
            ref.lsh_knn_precision_recall(scaled_fake)) == want
    # The width is reported in data units and read back exactly.
    width = ref.lsh_width()
    assert width == unscaled.lsh_width() * scale
    assert ref.lsh_precision_recall(scaled_fake, bucket_width=width) == (
        unscaled.lsh_precision_recall(fake,
                                      bucket_width=unscaled.lsh_width()))


def test_outliers_beyond_float32_squares_leave_the_other_scores(sets):
  real, fake = sets
  bulk, outliers = fake[:300], fake[300:] * np.float32(1e25)
  with_outliers = np.concatenate([bulk, outliers])
  ref = metrics.Reference(real)
  _assert_knn_equals_numpy(ref.knn_metrics(with_outliers), real,
                           with_outliers)
  # Precision reads only the real buckets and balls: the bulk's hits count
  # as before, the outliers' never.
  lsh = functools.partial(ref.lsh_precision_recall,
                          bucket_width=ref.lsh_width())
  for method in (lsh, ref.lsh_knn_precision_recall):
    hits = method(bulk)["precision"] * 300
    assert method(with_outliers)["precision"] == pytest.approx(hits / 400,
                                                               abs=1e-12)
  # The fake set's own width cannot be read: next to the outliers its bulk
  # is within float32 rounding of one point.
  with pytest.raises(metrics.DegenerateError, match="far larger ones"):
    ref.lsh_precision_recall(with_outliers)


@pytest.mark.parametrize("scale", [1e35, 1e-35])
def test_sets_too_far_apart_in_scale_raise(scale, sets):
  real, fake = sets
  for name in METRICS:
    with pytest.raises(ValueError, match="cannot be compared in float32"):
      METRICS[name].fn(real, fake * scale)


def test_a_collapsed_set_is_degenerate_at_its_float32_noise_level(sets):
  real, _ = sets
  ref = metrics.Reference(real)
  # Copies of one embedded row: their mean is that row only up to
  # rounding, which must not read as a distance between the copies.
  for row in range(40):
    collapsed = np.repeat(real[row:row + 1], 300, axis=0)
    with pytest.raises(metrics.DegenerateError, match="k-NN distance is 0"):
      ref.lsh_precision_recall(collapsed)
  assert issubclass(metrics.DegenerateError, ValueError)
  out = ref.lsh_precision_recall(collapsed, bucket_width=ref.lsh_width())
  assert out["recall"] < 0.2 and 0 <= out["precision"] <= 1


@pytest.mark.parametrize("scale", [2.0 ** 520, 1e300])
def test_fid_past_the_float64_range_is_a_clear_error(scale, sets):
  real, fake = (np.asarray(x, np.float64) * scale for x in sets)
  with pytest.raises(ValueError, match="fid: the covariance of a set exceeds "
                     "the float64 range"):
    metrics.frechet_distance(real, fake)
  with pytest.raises(ValueError, match="fid: .* exceeds the float64 range"):
    metrics.Reference(real).frechet_distance(fake)
