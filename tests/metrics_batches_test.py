"""Reference.from_batches / fake_from_batches: sets read from batches into a
private file, scored block by block, with the numbers of the in-memory
reference."""

import gc
import os

import numpy as np
import pytest
from sklearn import datasets

from lsh_gan import metrics
from lsh_gan.metrics import _hashing
from lsh_gan.metrics import _stored
from lsh_gan.metrics import knn


def _batches(x, sizes):
  """x cut into batches of the given sizes, cycled."""
  out, start, i = [], 0, 0
  while start < x.shape[0]:
    out.append(x[start:start + sizes[i % len(sizes)]])
    start += sizes[i % len(sizes)]
    i += 1
  return out


@pytest.fixture(scope="module")
def digits():
  """Real data: scikit-learn's 1,797 digits as 64-pixel vectors; the real
  set is every digit, the fake set the digits 0-6 with noise added."""
  images, labels = datasets.load_digits(return_X_y=True)
  rng = np.random.default_rng(0)
  fake = images[labels < 7] + rng.normal(scale=1.0, size=(
      int((labels < 7).sum()), 64))
  return images.astype(np.float32), fake.astype(np.float32)


def _all_metrics(ref, fake):
  out = {}
  out.update(ref.knn_metrics(fake, k=3, density_k=5))
  out.update({f"lsh_{k}": v for k, v in ref.lsh_precision_recall(fake).items()})
  out.update(ref.frechet_distance(fake))
  out.update(ref.kernel_distance(fake, num_subsets=5, subset_size=200))
  out.update({f"lsh_knn_{k}": v for k, v in ref.lsh_knn_precision_recall(
      fake, error_sample=0).items()})
  return out


def _assert_same(got, want):
  assert set(got) == set(want)
  for key, value in want.items():
    if key == "fid":  # the means and moments summed in another order
      assert got[key] == pytest.approx(value, rel=1e-5), key
    else:
      assert got[key] == value, key


@pytest.mark.parametrize("sizes", [(100,), (1, 500, 37), (2000,)])
def test_batches_give_the_in_memory_numbers_on_real_digits(digits, sizes):
  real, fake = digits
  want = _all_metrics(metrics.Reference(real), fake)
  ref = metrics.Reference.from_batches(iter(_batches(real, sizes)))
  assert (ref.n, ref.dim) == real.shape
  got = _all_metrics(ref, ref.fake_from_batches(_batches(fake, sizes[::-1])))
  _assert_same(got, want)
  # Known answers: the fake set lies on the digits 0-6 (70.3% of the set)
  # and far from 7-9.
  assert got["precision"] > 0.9
  assert got["recall"] == pytest.approx(fake.shape[0] / real.shape[0],
                                        abs=0.1)


def test_the_set_is_read_block_by_block(digits):
  real, fake = digits
  ref = metrics.Reference.from_batches([real[:900], real[900:]])
  assert isinstance(ref.real, np.memmap)
  ref.knn_metrics(fake)
  # pylint: disable=protected-access
  assert isinstance(ref._knn.points.blocks, knn._FileBlocks)
  family = ref._family(32, 8, 0)
  projected = ref._projected(family, 0)
  # Only the tables the width search reads are kept (4 x 8 columns of 256).
  assert projected.values.shape[1] == _hashing.STORED_TABLES * 8
  assert projected.source.x is ref.real
  # In memory, a set this small keeps all 256: it is projected once.
  in_memory = metrics.Reference(real)
  assert in_memory._projected(family, 0).values.shape[1] == 256
  # pylint: enable=protected-access


@pytest.mark.parametrize("kind", ["float64", "int", "mixed", "huge", "tiny",
                                  "huge32", "fake_far_larger",
                                  "fake_far_smaller"])
def test_dtypes_and_scales_as_in_memory(digits, kind):
  real, fake = digits
  real64, fake64 = real.astype(np.float64), fake.astype(np.float64)
  scale = {"huge": 1e30, "tiny": 1e-30, "huge32": 1e30}.get(kind, 1.0)
  real64, fake64 = real64 * scale, fake64 * scale
  # A fake set 2^60 times as large as the reference (computed in units 2^10
  # larger: shift != 0), and one 2^-40 times as small (its own width read
  # at its own scale).
  fake64 = fake64 * {"fake_far_larger": 2.0 ** 60,
                     "fake_far_smaller": 2.0 ** -40}.get(kind, 1.0)
  if kind == "huge32":  # float32 batches divided by a power of two
    real64 = real64.astype(np.float32).astype(np.float64)
    fake64 = fake64.astype(np.float32).astype(np.float64)
    real_b = _batches(real64.astype(np.float32), (500,))
    fake_b = _batches(fake64.astype(np.float32), (333,))
  elif kind == "int":
    real_b, fake_b = ([np.rint(b).astype(np.int16) for b in _batches(x, (600,))]
                      for x in (real64, fake64))
    real64 = np.concatenate(real_b).astype(np.float64)
    fake64 = np.concatenate(fake_b).astype(np.float64)
  elif kind == "mixed":  # a float64 batch after float32 ones: widened
    real_b = [real[:700], real64[700:1000], real[1000:]]
    fake_b = [fake[:10], fake64[10:]]
  else:
    real_b, fake_b = _batches(real64, (500,)), _batches(fake64, (333,))
  ref = metrics.Reference.from_batches(real_b)
  want_ref = metrics.Reference(real64)
  assert ref.exponent == want_ref.exponent
  np.testing.assert_array_equal(np.asarray(ref.real),
                                np.asarray(want_ref.real))
  got = ref.fake_from_batches(fake_b)
  want = want_ref.fake_set(fake64)
  assert (got.shift, got.own) == (want.shift, want.own)
  assert (got.shift != 0) == (kind == "fake_far_larger")
  assert (got.own < -20) == (kind == "fake_far_smaller")
  np.testing.assert_array_equal(np.asarray(got.values),
                                np.asarray(want.values))
  assert ref.lsh_precision_recall(got) == want_ref.lsh_precision_recall(want)
  assert ref.knn_metrics(got) == want_ref.knn_metrics(want)


def test_errors_name_the_batch_and_row(digits, tmp_path):
  real, fake = digits
  bad = real[:300].copy()
  bad[17, 3] = np.nan
  with pytest.raises(ValueError, match=r"real, batch 2 \(rows from 600\): "
                     r"contains NaN or inf \(1 values; first in row 17\)"):
    metrics.Reference.from_batches([real[:300], real[300:600], bad],
                                   directory=str(tmp_path))
  here = {"directory": str(tmp_path)}
  with pytest.raises(ValueError, match=r"batch 1 \(rows from 10\): has 5 "
                     "features per point, the first batch has 64"):
    metrics.Reference.from_batches([real[:10], real[10:20, :5]], **here)
  with pytest.raises(ValueError, match="expected a 2-D array"):
    metrics.Reference.from_batches([real[:10], real[10]], **here)
  with pytest.raises(ValueError, match="the batches hold no rows"):
    metrics.Reference.from_batches([real[:0]], **here)
  with pytest.raises(ValueError, match="not one array"):
    metrics.Reference.from_batches(real, **here)
  with pytest.raises(ValueError, match="got int"):
    metrics.Reference.from_batches(3, **here)
  # A bad mesh fails before any batch is read.
  with pytest.raises(ValueError, match="must be a jax.sharding.Mesh"):
    metrics.Reference.from_batches(_never_read(), mesh="all", **here)
  ref = metrics.Reference.from_batches([real], **here)
  with pytest.raises(ValueError, match="fake: has 8 features per point, "
                     "real has 64"):
    ref.fake_from_batches((np.zeros((5, 8)) for _ in range(10 ** 9)), **here)
  del ref
  gc.collect()
  # A failed read leaves nothing behind.
  assert not os.listdir(tmp_path)


def _never_read():
  raise AssertionError("read a batch")
  yield  # pylint: disable=unreachable


def test_the_private_file_goes_with_the_reference(digits, tmp_path):
  real, _ = digits
  refs = [metrics.Reference.from_batches([real], directory=str(tmp_path))
          for _ in range(2)]
  folders = sorted(os.listdir(tmp_path))
  assert len(folders) == 2  # two references in one folder: two files
  for folder in folders:
    files = os.listdir(tmp_path / folder)
    assert [os.path.getsize(tmp_path / folder / f) for f in files] == [
        real.size * 4]
  del refs
  gc.collect()
  assert not os.listdir(tmp_path)


def test_spill_writes_exactly_the_in_memory_units():
  # float64 values beyond float32's range: divided by 2^e before the cast.
  x = np.random.default_rng(1).normal(size=(50, 3)) * 1e200
  stored, exponent, max_abs = _stored.spill([x[:20], x[20:]], "real")
  assert max_abs == np.abs(x).max() and exponent > 600
  np.testing.assert_array_equal(
      np.asarray(stored), np.ldexp(x, -exponent).astype(np.float32))
