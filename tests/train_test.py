"""lsh_gan.train: classifier training learns, logs, and resumes bit-exactly."""

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lsh_gan import train

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "configs"))
import train_embedder_digits  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


def _config(data_dir, steps):
  config = train_embedder_digits.get_config()
  config.data_dir = data_dir
  config.features = (8, 16)
  config.embed_dim = 16
  config.steps = steps
  config.log_every = 10
  config.checkpoint_every = 10
  return config


def test_interrupted_and_resumed_equals_uninterrupted(data_dir, tmp_path):
  whole = train.train_classifier(_config(data_dir, 30), str(tmp_path / "a"))
  first = train.train_classifier(_config(data_dir, 30), str(tmp_path / "b"),
                                 stop_after=20)
  assert first["step"] == 20
  resumed = train.train_classifier(_config(data_dir, 30), str(tmp_path / "b"))
  assert resumed["step"] == 30
  for a, b in zip(jax.tree.leaves(whole["params"]),
                  jax.tree.leaves(resumed["params"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  with open(tmp_path / "b" / "metrics.json") as f:
    assert json.load(f)["step"] == 30
  # Only the last two checkpoints are kept.
  assert sorted(os.listdir(tmp_path / "b" / "checkpoints")) == ["20", "30"]


def test_training_learns_digits(data_dir, tmp_path):
  out = train.train_classifier(_config(data_dir, 300), str(tmp_path))
  assert out["test_accuracy"] > 0.85  # 10 classes: chance is 0.1


def test_batches_cover_each_epoch_once():
  seen = np.concatenate([train._batch_indices(100, 10, seed=3, step=s)  # pylint: disable=protected-access
                         for s in range(10)])
  np.testing.assert_array_equal(np.sort(seen), np.arange(100))
  assert not np.array_equal(train._batch_indices(100, 10, 3, 0),  # pylint: disable=protected-access
                            train._batch_indices(100, 10, 3, 10))  # pylint: disable=protected-access


def test_random_shift_moves_images_within_bounds():
  images = jnp.full((50, 8, 8, 1), -1.0).at[:, 4, 4, 0].set(1.0)
  moved = train.random_shift(jax.random.key(0), images, 1)
  rows, cols = np.nonzero(np.asarray(moved[..., 0]).max(axis=0) > 0)
  assert set(rows) <= {3, 4, 5} and set(cols) <= {3, 4, 5}
  assert len(set(zip(rows, cols))) > 4  # several different shifts
  np.testing.assert_array_equal(np.sort(np.asarray(moved).ravel())[-50:], 1.0)
  assert train.random_shift(jax.random.key(0), images, 0) is images


def _gan_config(data_dir, steps):
  import train_mlp_gan_ring8  # pylint: disable=g-import-not-at-top
  config = train_mlp_gan_ring8.get_config()
  config.data_dir = data_dir
  config.hidden = (16, 16)
  config.latent_dim = 4
  config.batch_size = 64
  config.steps = steps
  config.log_every = 10
  config.checkpoint_every = 10
  return config


def test_gan_training_resumes_bit_exactly(data_dir, tmp_path):
  whole = train.train_gan(_gan_config(data_dir, 30), str(tmp_path / "a"))
  train.train_gan(_gan_config(data_dir, 30), str(tmp_path / "b"),
                  stop_after=20)
  resumed = train.train_gan(_gan_config(data_dir, 30), str(tmp_path / "b"))
  for a, b in zip(jax.tree.leaves(whole["params"]),
                  jax.tree.leaves(resumed["params"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert {"precision", "recall", "high_quality", "modes_covered"} <= set(whole)
  assert whole["modes"] == 8


def test_mixture_quality_counts_modes_and_near_samples():
  from lsh_gan.data import _tfds  # pylint: disable=g-import-not-at-top
  centres, std = _tfds.mixture_modes("ring8")
  rng = np.random.default_rng(0)
  on_three = centres[rng.integers(0, 3, 900)] + std * rng.normal(size=(900, 2))
  far = rng.normal(size=(100, 2)) * 0.01  # the ring's centre: no mode
  got = train.mixture_quality(np.concatenate([on_three, far]), "ring8")
  assert got["modes"] == 8 and got["modes_covered"] == 3
  assert got["high_quality"] == pytest.approx(0.9, abs=0.01)


def test_unknown_gan_architecture_is_named():
  config = _gan_config(None, 1)
  config.architecture = "biggan"
  with pytest.raises(ValueError, match="architecture='biggan'"):
    train.gan_models(config)
