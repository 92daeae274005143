"""lsh_gan.train: classifier training learns, logs, and resumes bit-exactly."""

import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lsh_gan import data
from lsh_gan import models
from lsh_gan import train

from configs import train_embedder_digits  # pylint: disable=g-import-not-at-top


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
  # Training time adds up over the interruption.
  with open(tmp_path / "b" / "seconds.json") as f:
    spent = json.load(f)
  assert 0 < spent["10"] < spent["20"] < spent["30"] == resumed["seconds"]
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
  from configs import train_mlp_gan_ring8  # pylint: disable=g-import-not-at-top
  config = train_mlp_gan_ring8.get_config()
  config.data_dir = data_dir
  config.hidden = (16, 16)
  config.latent_dim = 4
  config.batch_size = 64
  config.steps = steps
  config.log_every = 10
  config.checkpoint_every = 10
  config.eval_samples = 500
  return config


def test_gan_training_resumes_bit_exactly(data_dir, tmp_path):
  whole = train.train_gan(_gan_config(data_dir, 30), str(tmp_path / "a"))
  train.train_gan(_gan_config(data_dir, 30), str(tmp_path / "b"),
                  stop_after=20)
  resumed = train.train_gan(_gan_config(data_dir, 30), str(tmp_path / "b"))
  for a, b in zip(jax.tree.leaves(whole["variables"]),
                  jax.tree.leaves(resumed["variables"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert {"precision", "recall", "high_quality", "modes_covered"} <= set(whole)
  assert whole["modes"] == 8


def test_an_exported_gan_keeps_its_discriminator(data_dir, tmp_path,
                                                 monkeypatch):
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(pretrained, "CHECKPOINTS", str(tmp_path / "models"))
  config = _gan_config(data_dir, 20)
  train.run(config, str(tmp_path / "run"), export="tiny_gan", command="cmd")
  last = train._restore(train._checkpoint_manager(str(tmp_path / "run")),  # pylint: disable=protected-access
                        None)
  logits_fn, params = pretrained.discriminator("tiny_gan")
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(last["d"])):
    np.testing.assert_array_equal(a, np.asarray(b))
  sample_fn, variables = pretrained.generator("tiny_gan")
  points = sample_fn(variables, jax.random.key(0), 64)
  assert logits_fn(params, points).shape == (64,)
  # A generator exported without it says how to get one.
  info = pretrained.info("tiny_gan")
  info["config"]["learning_rate"] = 3e-3  # a critic learnt in a few steps
  pretrained.export("old_gan", variables, info)
  with pytest.raises(pretrained.CheckpointError,
                     match="old_gan has no committed discriminator.*"
                     "--train_discriminator=old_gan"):
    pretrained.discriminator("old_gan")
  # ... and that command trains one against it, the generator untouched.
  before = pretrained.fingerprint("old_gan")
  record = train.add_discriminator("old_gan", str(tmp_path / "d"), steps=200)
  with pytest.raises(ValueError, match="another discriminator training.*"
                     "steps"):  # its folder is not resumed as another run
    train.add_discriminator("old_gan", str(tmp_path / "d"), steps=300)
  assert pretrained.fingerprint("old_gan") == before
  assert pretrained.info("old_gan")["discriminator"] == record
  # Trained, it tells the 20-step generator's points from real ones (0.90
  # measured; a fresh one reads 0.24).
  assert record["steps"] == 200 and record["auc"] > 0.8
  # The AUC is scikit-learn's of the committed discriminator's logits on
  # the same sets (2,000 of the test split by seed 0, 2,000 samples of key
  # 2), to its 4 digits.
  from sklearn import metrics  # pylint: disable=g-import-not-at-top
  logits_fn, params = pretrained.discriminator("old_gan")
  real = data.images("ring8", "test", data_dir=data_dir)
  real = real[np.random.default_rng(0).permutation(len(real))[:2000]]
  fake = sample_fn(variables, jax.random.key(2), len(real))
  scores = np.concatenate([logits_fn(params, real), logits_fn(params, fake)])
  labels = np.r_[np.ones(len(real)), np.zeros(len(real))]
  assert record["auc"] == pytest.approx(
      metrics.roc_auc_score(labels, scores), abs=1e-4)
  pretrained._params.cache_clear()  # pylint: disable=protected-access


def test_mixture_quality_counts_modes_and_near_samples():
  from lsh_gan.data import _tfds  # pylint: disable=g-import-not-at-top
  centres, std = _tfds.mixture_modes("ring8")
  rng = np.random.default_rng(0)
  on_three = centres[rng.integers(0, 3, 900)] + std * rng.normal(size=(900, 2))
  far = rng.normal(size=(100, 2)) * 0.01  # the ring's centre: no mode
  got = train.mixture_quality(np.concatenate([on_three, far]), "ring8")
  assert got["modes"] == 8 and got["modes_covered"] == 3
  assert got["high_quality"] == pytest.approx(0.9, abs=0.01)


def test_unknown_gan_architecture_and_loss_are_named():
  config = _gan_config(None, 1)
  config.architecture = "biggan"
  with pytest.raises(ValueError, match="architecture='biggan'"):
    models.build(config)
  config = _gan_config(None, 1)
  config.loss = "hinge"
  with pytest.raises(ValueError, match="loss='hinge' is not a GAN loss; "
                     "valid ones: nonsaturating, wgan_gp"):
    train._gan_losses(config, *models.build(config))  # pylint: disable=protected-access


class _Linear(nn.Module):
  """A linear critic: its input gradient is its weight vector everywhere."""

  @nn.compact
  def __call__(self, x):
    return nn.Dense(1, use_bias=False)(x.reshape(x.shape[0], -1))[:, 0]


def test_wgan_gp_critic_loss_matches_a_hand_computation():
  config = _gan_config(None, 1)
  config.loss, config.gp_weight = "wgan_gp", 10.0
  generator, _ = models.build(config)
  d_loss, _ = train._gan_losses(config, generator, _Linear())  # pylint: disable=protected-access
  g_vars = generator.init(jax.random.key(0), jnp.zeros((1, 4)))
  real = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
  w = np.array([[0.3], [-1.7]], np.float32)
  key = jax.random.key(5)
  got = float(d_loss({"Dense_0": {"kernel": jnp.asarray(w)}}, g_vars,
                     jnp.asarray(real), key))
  # The fake batch the loss draws: the same key split, the same generator.
  z = jax.random.normal(jax.random.split(key)[0], (64, 4))
  fake = np.asarray(generator.apply(g_vars, z), np.float64)
  expected = (np.mean(fake @ w) - np.mean(real @ w) +
              10.0 * (np.linalg.norm(w) - 1.0) ** 2)
  assert got == pytest.approx(expected, rel=1e-5)


def _tiny_image_gan(data_dir, steps, architecture="dcgan"):
  from configs import train_dcgan_digits  # pylint: disable=g-import-not-at-top
  config = train_dcgan_digits.get_config()
  config.data_dir = data_dir
  config.width, config.latent_dim, config.batch_size = 4, 8, 16
  config.steps, config.log_every, config.checkpoint_every = steps, 5, 5
  config.eval_samples = 500
  if architecture == "wgan_gp":
    config.architecture, config.loss, config.critic_steps = ("wgan_gp",
                                                             "wgan_gp", 2)
  return config


@pytest.mark.parametrize("architecture", ["dcgan", "wgan_gp"])
def test_each_loss_falls_when_its_network_trains_on_a_fixed_batch(
    data_dir, architecture):
  from lsh_gan import data  # pylint: disable=g-import-not-at-top
  config = _tiny_image_gan(data_dir, 1, architecture)
  generator, discriminator = models.build(config)
  d_loss, g_loss = train._gan_losses(config, generator, discriminator)  # pylint: disable=protected-access
  real = jnp.asarray(data.images("digits", data_dir=data_dir)[:16])
  g_vars = generator.init(jax.random.key(0), jnp.zeros((2, 8)))
  d = discriminator.init(jax.random.key(1), real)["params"]
  key = jax.random.key(2)
  opt = optax.adam(1e-3)
  d_step = jax.jit(jax.value_and_grad(d_loss))
  opt_state, first = opt.init(d), None
  for _ in range(20):
    value, grads = d_step(d, g_vars, real, key)
    first = value if first is None else first
    updates, opt_state = opt.update(grads, opt_state)
    d = optax.apply_updates(d, updates)
  assert float(d_step(d, g_vars, real, key)[0]) < float(first) - 0.1
  g_step = jax.jit(jax.value_and_grad(g_loss, has_aux=True),
                   static_argnums=4)
  g, opt_state, first = g_vars["params"], opt.init(g_vars["params"]), None
  for _ in range(20):
    (value, _), grads = g_step(g, g_vars, d, key, 16)
    first = value if first is None else first
    updates, opt_state = opt.update(grads, opt_state)
    g = optax.apply_updates(g, updates)
  assert float(g_step(g, g_vars, d, key, 16)[0][0]) < float(first) - 0.1


def test_image_gan_training_resumes_bit_exactly_with_batch_stats(
    data_dir, tmp_path):
  config = _tiny_image_gan(data_dir, 10, "wgan_gp")
  config.ema_decay = 0.5
  whole = train.train_gan(config, str(tmp_path / "a"))
  train.train_gan(config, str(tmp_path / "b"), stop_after=5)
  resumed = train.train_gan(config, str(tmp_path / "b"))
  assert set(whole["variables"]) == {"params", "batch_stats"}
  for a, b in zip(jax.tree.leaves(whole["variables"]),
                  jax.tree.leaves(resumed["variables"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # The average of the last two checkpoints' weights is not either of them,
  # and its batch statistics were re-estimated.
  last = train._restore(train._checkpoint_manager(str(tmp_path / "b")), None)  # pylint: disable=protected-access
  averaged = jax.tree.leaves(whole["variables"]["params"])
  live = jax.tree.leaves(last["g"]["params"])
  assert not np.array_equal(averaged[0], live[0])
  np.testing.assert_array_equal(averaged[0], jax.tree.leaves(last["g_ema"])[0])
  assert not np.array_equal(
      jax.tree.leaves(whole["variables"]["batch_stats"])[0],
      jax.tree.leaves(last["g"]["batch_stats"])[0])
  # Quality is measured in the digits embedder's space.
  assert whole["space"] == "embedding" and whole["fid"] > 0
  assert 0 <= whole["precision"] <= 1 and 0 <= whole["recall"] <= 1


def test_a_training_run_holds_its_workdir(tmp_path, monkeypatch):
  # A second training in the same checkpoint folder waits for the first.
  import ml_collections  # pylint: disable=g-import-not-at-top
  from lsh_gan import _files  # pylint: disable=g-import-not-at-top
  held = []

  def fake_training(config, workdir):
    with pytest.raises(TimeoutError, match="still in use by another run"):
      with _files.locked(workdir, timeout=0.2):
        pass
    held.append(workdir)
    return {"variables": {}, "discriminator": {}, "step": 1}

  monkeypatch.setattr(train, "train_gan", fake_training)
  config = ml_collections.ConfigDict({"architecture": "dcgan"})
  assert train.run(config, str(tmp_path)) == {"step": 1}
  assert held == [str(tmp_path)]
  with _files.locked(str(tmp_path), timeout=0.2):  # released
    pass
