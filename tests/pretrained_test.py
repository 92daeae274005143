"""lsh_gan.pretrained: committed embedders load offline and are accurate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lsh_gan import data
from lsh_gan import models
from lsh_gan import pretrained


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


def test_names_and_info():
  assert {"embedder_digits", "embedder_mnist5k"} <= set(pretrained.names())
  info = pretrained.info("embedder_mnist5k")
  assert info["dataset"] == "mnist5k" and info["steps"] == 2000
  assert info["command"].startswith("python -m lsh_gan.train --config=")
  assert info["metrics"]["test_accuracy"] >= 0.97
  with pytest.raises(ValueError, match="name='nope' is not a pre-trained "
                     "model; valid names: .*embedder_digits"):
    pretrained.info("nope")
  with pytest.raises(ValueError, match="dataset='cifar10' has no pre-trained "
                     "embedder; embedders exist for: digits, mnist5k"):
    pretrained.embedder("cifar10")


@pytest.mark.parametrize("dataset,size,shape,minimum", [
    ("mnist5k", 128, (28, 28, 1), 0.97), ("digits", 64, (8, 8, 1), 0.95)])
def test_embedders_embed_and_their_classifiers_reach_the_target(
    data_dir, dataset, size, shape, minimum):
  embed_fn, params = pretrained.embedder(dataset)
  test = data.load(dataset, "test", data_dir=data_dir)
  features = embed_fn(params, test["image"])
  assert features.shape == (test["image"].shape[0], size)
  assert features.dtype == jnp.float32 and float(features.min()) >= 0.0
  assert test["image"].shape[1:] == shape
  config = pretrained.info(f"embedder_{dataset}")["config"]
  model = models.Classifier(features=tuple(config["features"]),
                            embed_dim=config["embed_dim"])
  # The head on top of the embedding classifies the held-out split.
  logits = model.apply(params, test["image"])
  accuracy = float(np.mean(np.argmax(logits, -1) == test["label"]))
  assert accuracy >= minimum
  assert accuracy == pytest.approx(
      pretrained.info(f"embedder_{dataset}")["metrics"]["test_accuracy"],
      abs=1e-3)


def test_mixture_embedders_are_the_identity():
  embed_fn, params = pretrained.embedder("ring8")
  points = np.random.default_rng(0).normal(size=(5, 2))
  np.testing.assert_allclose(embed_fn(params, points), points, rtol=1e-6)
  assert params is None


def test_params_are_fresh_copies():
  a = pretrained.params("embedder_digits")
  jax.tree.leaves(a)[0][...] = 0.0
  b = pretrained.params("embedder_digits")
  assert not np.all(jax.tree.leaves(b)[0] == 0.0)
