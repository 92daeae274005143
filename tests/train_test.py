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
