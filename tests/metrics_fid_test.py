"""FID against the scipy sqrtm formula, KID against a numpy reference."""

import numpy as np
import pytest
import scipy.linalg

from lsh_gan import metrics
from lsh_gan.metrics import fid


def scipy_fid(real, fake):
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  mu_r, mu_f = real.mean(0), fake.mean(0)
  cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
  root = scipy.linalg.sqrtm(cov_r @ cov_f).real
  return float(np.sum((mu_r - mu_f) ** 2) + np.trace(cov_r + cov_f - 2 * root))


def numpy_kid(real, fake, num_subsets, subset_size, seed):
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  rng = np.random.default_rng(seed)
  d = real.shape[1]
  values = []
  for _ in range(num_subsets):
    x = real[rng.choice(len(real), subset_size, replace=False)]
    y = fake[rng.choice(len(fake), subset_size, replace=False)]
    kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    m = subset_size
    values.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) +
                  (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
  return float(np.mean(values)), float(np.std(values))


@pytest.mark.parametrize("n_real,n_fake,dim", [(400, 600, 8), (1500, 1000, 64),
                                               (3000, 2000, 128)])
def test_fid_equals_scipy_sqrtm_formula(n_real, n_fake, dim):
  rng = np.random.default_rng(dim)
  mix = rng.normal(size=(dim, dim)) / np.sqrt(dim)
  real = rng.normal(size=(n_real, dim)) @ mix + 3.0
  fake = rng.normal(size=(n_fake, dim)) * 1.3 + 3.2
  want = scipy_fid(real, fake)
  assert metrics.frechet_distance(real, fake)["fid"] == pytest.approx(
      want, rel=1e-4)


def test_fid_hand_computed_properties():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2000, 16))
  assert metrics.frechet_distance(x, x)["fid"] == pytest.approx(0, abs=1e-4)
  shift = np.full(16, 0.5)
  assert metrics.frechet_distance(x, x + shift)["fid"] == pytest.approx(
      16 * 0.25, rel=1e-5)
  # Scaling by s: Tr(C) (1 + s^2 - 2 s) = Tr(C) (1 - s)^2.
  trace = np.trace(np.cov(x, rowvar=False))
  assert metrics.frechet_distance(x, 2 * x)["fid"] == pytest.approx(
      trace + np.sum(x.mean(0) ** 2), rel=1e-4)


@pytest.mark.parametrize("subset_size,num_subsets", [(50, 7), (200, 12)])
def test_kid_equals_numpy_reference(subset_size, num_subsets):
  rng = np.random.default_rng(1)
  real = rng.normal(size=(500, 32))
  fake = rng.normal(size=(400, 32)) * 1.2 + 0.1
  got = metrics.kernel_distance(real, fake, num_subsets=num_subsets,
                                subset_size=subset_size, seed=3, batch=5)
  want_mean, want_std = numpy_kid(real, fake, num_subsets, subset_size, seed=3)
  assert got["kid"] == pytest.approx(want_mean, rel=1e-4)
  assert got["kid_std"] == pytest.approx(want_std, rel=1e-3)


def test_kid_is_near_zero_for_same_distribution_and_deterministic():
  rng = np.random.default_rng(2)
  real, fake = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
  a = metrics.kernel_distance(real, fake, num_subsets=20, subset_size=200)
  b = metrics.kernel_distance(real, fake, num_subsets=20, subset_size=200)
  assert a == b
  assert abs(a["kid"]) < 3 * a["kid_std"] / np.sqrt(20) + 1e-3
  far = metrics.kernel_distance(real, fake + 2.0, num_subsets=20,
                                subset_size=200)
  assert far["kid"] > 100 * abs(a["kid"])


def test_kid_subset_size_is_capped_by_the_smaller_set():
  rng = np.random.default_rng(3)
  real, fake = rng.normal(size=(30, 4)), rng.normal(size=(20, 4))
  got = metrics.kernel_distance(real, fake, num_subsets=3, subset_size=1000)
  want, _ = numpy_kid(real, fake, 3, 20, seed=0)
  assert got["kid"] == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("call,match", [
    (lambda r, f: metrics.frechet_distance(r, f[:, :2]), "fake: has 2 features"),
    (lambda r, f: metrics.frechet_distance(r[:1], f), "real: has 1 points"),
    (lambda r, f: metrics.frechet_distance(r, np.full_like(f, np.nan)), "fake: contains NaN"),
    (lambda r, f: metrics.kernel_distance(r, f, num_subsets=0), "num_subsets=0"),
    (lambda r, f: metrics.kernel_distance(r, f, subset_size=1), "subset_size=1 must be >= 2"),
    (lambda r, f: metrics.kernel_distance(r[None], f), "real: expected a 2-D"),
])
def test_bad_input(call, match):
  rng = np.random.default_rng(4)
  with pytest.raises(ValueError, match=match):
    call(rng.normal(size=(20, 3)), rng.normal(size=(20, 3)))


def test_subset_indices_are_without_replacement():
  real_idx, fake_idx = fid.subset_indices(50, 40, 4, 30, seed=0)
  assert real_idx.shape == fake_idx.shape == (4, 30)
  assert all(len(set(row)) == 30 for row in np.concatenate([real_idx, fake_idx]))
