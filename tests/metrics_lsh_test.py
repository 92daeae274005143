"""LSH-only precision/recall: hashing, buckets, known answers, robustness."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lsh_gan import metrics
from lsh_gan.metrics import _hashing
from lsh_gan.metrics import _lsh
from lsh_gan.metrics import lsh


class Mixture:
  """Well-separated Gaussian modes (unit spread, centres ~ N(0, 10^2 I))."""

  def __init__(self, dim, modes, seed):
    self.rng = np.random.default_rng(seed)
    self.centres = self.rng.normal(size=(modes, dim)) * 10.0
    self.dim = dim

  def sample(self, n, modes):
    modes = np.asarray(modes)
    labels = modes[self.rng.integers(0, len(modes), n)]
    return (self.centres[labels] +
            self.rng.normal(size=(n, self.dim))).astype(np.float32)

  def far(self, n):
    return (self.rng.normal(size=(n, self.dim)) * 30.0).astype(np.float32)


def test_distinct_code_vectors_do_not_share_keys():
  family = _hashing.HashFamily.create(dim=3, num_tables=2, num_hashes=3, seed=0)
  # Integer grid points hashed at width 1: every point has its own codes,
  # including codes that differ by powers of two and by sign.
  g = np.arange(-40, 40, dtype=np.float32)
  grid = np.stack(np.meshgrid(g, g * 2 ** 10, g * 2 ** 20), -1).reshape(-1, 3)
  family = _hashing.HashFamily(jnp.eye(3, 6, dtype=jnp.float32),
                          jnp.zeros(6, jnp.float32), family.seeds,
                          family.multipliers, 2, 3)
  key1, key2 = family.keys(family.project(jnp.asarray(grid)).all_values(), 1.0)
  key1, key2 = key1[:grid.shape[0]], key2[:grid.shape[0]]
  pairs = set(zip(np.asarray(key1[:, 0]).tolist(), np.asarray(key2[:, 0]).tolist()))
  assert len(pairs) == grid.shape[0]  # 512,000 code vectors, no collision
  assert len(set(np.asarray(key1[:, 0]).tolist())) > 0.999 * grid.shape[0]


def test_points_beyond_the_int32_code_range_share_no_bucket():
  family = _hashing.HashFamily.create(dim=2, num_tables=2, num_hashes=2, seed=0)
  family = _hashing.HashFamily(jnp.tile(jnp.eye(2, dtype=jnp.float32), (1, 2)),
                          jnp.zeros(4, jnp.float32), family.seeds,
                          family.multipliers, 2, 2)
  # Far apart, both past 2^31 widths on the same side: saturated codes would
  # put them in one bucket.
  far = np.array([[3e9, 3e9], [9e9, 7e9], [1.0, 2.0]], np.float32)
  tables = _lsh.Tables(family.project(jnp.asarray(far[:1])), family, 1.0)
  counts = np.asarray(tables.counts(family.project(jnp.asarray(far))))
  np.testing.assert_array_equal(counts, [[0, 0], [0, 0], [0, 0]])
  near = _lsh.Tables(family.project(jnp.asarray(far[2:])), family, 1.0)
  np.testing.assert_array_equal(
      np.asarray(near.counts(family.project(jnp.asarray(far[2:])))), [[1, 1]])


def test_bucket_counts_equal_brute_force():
  rng = np.random.default_rng(1)
  points = jnp.asarray(rng.normal(size=(3000, 5)), jnp.float32)
  queries = jnp.asarray(rng.normal(size=(700, 5)), jnp.float32)
  family = _hashing.HashFamily.create(5, num_tables=4, num_hashes=2, seed=3)
  points, queries = family.project(points), family.project(queries)
  tables = _lsh.Tables(points, family, width=1.5)
  got = np.asarray(tables.counts(queries))
  assert got.shape == (700, 4)
  p1, p2 = (np.asarray(k)[:3000] for k in family.keys(points.values, 1.5))
  q1, q2 = (np.asarray(k)[:700] for k in family.keys(queries.values, 1.5))
  for table in range(4):
    sizes = collections.Counter(zip(p1[:, table], p2[:, table]))
    want = [sizes[(a, b)] for a, b in zip(q1[:, table], q2[:, table])]
    np.testing.assert_array_equal(got[:, table], want)
  assert got.max() > 1 and (got == 0).any()


def test_one_hash_collision_rate_matches_the_p_stable_formula():
  rng = np.random.default_rng(2)
  dim, n = 16, 2000
  # 200 tables of one function each: the formula averages over random a.
  family = _hashing.HashFamily.create(dim, num_tables=200, num_hashes=1, seed=4)
  x = rng.normal(size=(n, dim)).astype(np.float32)
  direction = rng.normal(size=(n, dim))
  direction /= np.linalg.norm(direction, axis=1, keepdims=True)
  for distance in (0.5, 1.0, 2.0, 4.0):
    y = (x + distance * direction).astype(np.float32)
    a, b = (np.asarray(family.keys(family.project(jnp.asarray(v)).all_values(),
                                   2.0)[0])[:n] for v in (x, y))
    rate = np.mean(a == b)
    assert rate == pytest.approx(_hashing.collision_probability(distance, 2.0),
                                 abs=0.02)


@pytest.mark.parametrize("dim", [2, 64, 2048])
def test_reads_dropped_and_invented_modes_within_a_tenth(dim):
  mix = Mixture(dim, modes=10, seed=dim)
  real = mix.sample(2000, range(10))
  dropped = metrics.lsh_precision_recall(real, mix.sample(2000, range(6)))
  assert dropped["precision"] == pytest.approx(1.0, abs=0.1)
  assert dropped["recall"] == pytest.approx(0.6, abs=0.1)
  # The invented modes sit 60 away from every real one in each coordinate
  # (without the shift, one lands 1.3 from a real mode at d = 2).
  invented = np.concatenate([mix.sample(1400, range(10)), Mixture(
      dim, modes=3, seed=dim + 1).sample(600, range(3)) + 60.0])
  got = metrics.lsh_precision_recall(real, invented)
  assert got["precision"] == pytest.approx(0.7, abs=0.1)
  assert got["recall"] == pytest.approx(1.0, abs=0.1)


def test_identical_sets_score_one_and_far_sets_zero():
  mix = Mixture(32, modes=5, seed=0)
  real = mix.sample(1000, range(5))
  assert metrics.lsh_precision_recall(real, real) == {"precision": 1.0,
                                                      "recall": 1.0}
  assert metrics.lsh_precision_recall(real, real + 1e3) == {"precision": 0.0,
                                                            "recall": 0.0}


def test_outliers_move_knn_far_more_than_lsh():
  mix = Mixture(16, modes=8, seed=5)
  real = mix.sample(2000, range(8))
  # Precision: 30% of the fake mass lies off the data (truth 0.7); 5% far
  # outliers join the real set.
  fake = np.concatenate([mix.sample(1400, range(8)), mix.far(600)])
  real_out = np.concatenate([real, mix.far(100)])
  knn_move = (metrics.knn_precision_recall(real_out, fake)["precision"] -
              metrics.knn_precision_recall(real, fake)["precision"])
  lsh_clean = metrics.lsh_precision_recall(real, fake)["precision"]
  lsh_move = metrics.lsh_precision_recall(real_out, fake)["precision"] - lsh_clean
  assert lsh_clean == pytest.approx(0.7, abs=0.05)
  assert knn_move > 0.1 and abs(lsh_move) < 0.02
  # Recall: the fake set keeps half the modes (truth 0.5); 1% far outliers
  # join it.
  half = mix.sample(2000, range(4))
  half_out = np.concatenate([half, mix.far(20)])
  knn_move = (metrics.knn_precision_recall(real, half_out)["recall"] -
              metrics.knn_precision_recall(real, half)["recall"])
  lsh_clean = metrics.lsh_precision_recall(real, half)["recall"]
  lsh_move = metrics.lsh_precision_recall(real, half_out)["recall"] - lsh_clean
  assert lsh_clean == pytest.approx(0.5, abs=0.05)
  assert knn_move > 0.3 and abs(lsh_move) < 0.02


def test_deterministic_for_a_seed():
  mix = Mixture(8, modes=4, seed=6)
  real, fake = mix.sample(800, range(4)), mix.sample(800, range(3))
  kwargs = dict(num_tables=3, num_hashes=6, bucket_width=2.0)
  a = metrics.lsh_precision_recall(real, fake, seed=1, **kwargs)
  assert a == metrics.lsh_precision_recall(real, fake, seed=1, **kwargs)
  family_a = _hashing.HashFamily.create(8, 3, 6, seed=1)
  family_b = _hashing.HashFamily.create(8, 3, 6, seed=2)
  assert not np.array_equal(family_a.projections, family_b.projections)


def test_min_count_and_width_behave_monotonically():
  mix = Mixture(8, modes=4, seed=7)
  real, fake = mix.sample(1000, range(4)), mix.sample(1000, range(4))
  # Under the "any" rule a larger min_count can only uncover points (the
  # calibrated rule moves its threshold with it).
  scores = [metrics.lsh_precision_recall(real, fake, min_count=m,
                                         coverage="any")["precision"]
            for m in (1, 3, 10)]
  assert scores[0] >= scores[1] >= scores[2] and scores[0] > scores[2]
  narrow = metrics.lsh_precision_recall(real, fake, bucket_width=0.2)
  wide = metrics.lsh_precision_recall(real, fake, bucket_width=1e4)
  assert narrow["precision"] < 0.5 and wide["precision"] == 1.0


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_tables=0), "num_tables=0 must be a positive integer"),
    (dict(num_hashes=-1), "num_hashes=-1"),
    (dict(min_count=0), "min_count=0"),
    (dict(coverage="all"), "coverage='all' must be one of 'calibrated'"),
    (dict(bucket_width=0.0), r"bucket_width=0\.0 must be a finite number > 0"),
    (dict(bucket_width=float("nan")), "bucket_width=nan"),
    (dict(bucket_width=-2), "bucket_width=-2"),
])
def test_bad_arguments(kwargs, match):
  x = np.random.default_rng(0).normal(size=(50, 3))
  with pytest.raises(ValueError, match=match):
    metrics.lsh_precision_recall(x, x, **kwargs)


def test_bad_input_names_the_set():
  x = np.random.default_rng(0).normal(size=(50, 3))
  with pytest.raises(ValueError, match="fake: has 2 features"):
    metrics.lsh_precision_recall(x, x[:, :2])
  with pytest.raises(ValueError, match="real: contains NaN"):
    metrics.lsh_precision_recall(np.where(x > 1, np.nan, x), x)
  with pytest.raises(ValueError, match="too small to read a default bucket"):
    metrics.lsh_precision_recall(x, x[:3])
  with pytest.raises(metrics.DegenerateError,
                     match="median k-NN distance is 0"):
    metrics.lsh_precision_recall(x, np.zeros((10, 3)))
  with pytest.raises(ValueError, match="seed=2.5 must be an integer"):
    metrics.lsh_precision_recall(x, x, seed=2.5)


def test_tables_sorted_on_the_host_count_as_the_jitted_sort():
  """numpy's sort on CPU and XLA's give the same runs and bucket sizes,
  including rows outside the code range (key (NO_KEY, NO_KEY), as the
  padding has): they have no bucket (count 0), in any order of that run."""
  rng = np.random.default_rng(0)
  n, size, tables = 1000, 1024, 4
  key1 = rng.integers(0, 50, size=(size, tables)).astype(np.uint32)
  key2 = rng.integers(0, 3, size=(size, tables)).astype(np.uint32)
  outside = rng.random((size, tables)) < 0.04
  key1[outside] = key2[outside] = _hashing.NO_KEY
  key1, key2 = jax.device_put(key1), jax.device_put(key2)
  want = _lsh._sort_and_count(key1, key2, n)  # pylint: disable=protected-access
  s1, s2, order = _hashing.host_sorted(key1, key2, n)
  got = (s1, s2) + _lsh._count(s1, s2, order, n)  # pylint: disable=protected-access
  for a, b in zip(got, want):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  own = np.asarray(want[3])  # (L, rows) in the rows' own order
  assert np.all(own[:, n:] == 0)
  assert np.all(own[outside.T & (np.arange(size) < n)[None, :]] == 0)
  assert np.all(own[~outside.T & (np.arange(size) < n)[None, :]] >= 1)


def test_a_set_read_at_its_own_scale_keeps_the_reference_buckets(tmp_path):
  # Sets whose largest value is below about 2^-20 are hashed in the
  # reference's units, but the fake set's width is read at its own scale (it
  # would underflow otherwise). That reading must use the same bucket grid
  # (the reference's centre): the numbers then equal those of the same sets
  # scaled up, exactly. Real embeddings: non-negative unit-length blocks,
  # far from the origin, where the centre moves the buckets.
  from lsh_gan import data  # pylint: disable=g-import-not-at-top
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  embed_fn, params = pretrained.embedder("digits")
  images = data.images("digits", data_dir=str(tmp_path))
  real = pretrained.embed_all(embed_fn, params, images[np.sort(
      np.random.default_rng(0).choice(images.shape[0], 600, replace=False))])
  sample_fn, variables = pretrained.generator("dcgan_digits")
  fake = pretrained.embed_all(embed_fn, params, np.asarray(
      sample_fn(variables, jax.random.key(0), 400)))
  scale = np.float32(2.0 ** -20)
  small = [(x * scale).astype(np.float32) for x in (real, fake)]
  ref = metrics.Reference(small[0])
  # The case under test: the reference kept in units 2^0, the fake set
  # below 2^-20 there (read at its own scale).
  assert ref.exponent == 0 and ref.fake_set(small[1]).own < -20
  assert (ref.lsh_precision_recall(small[1]) ==
          metrics.Reference(real).lsh_precision_recall(fake))
