"""Training with optax: jitted steps, fixed seeds, resumable with Orbax.

  python -m lsh_gan.train --config=configs/train_embedder_digits.py \\
      --workdir=/tmp/embedder_digits

A run writes Orbax checkpoints under `workdir/checkpoints` every
`checkpoint_every` steps (the last two are kept) and continues from the
latest one when started again with the same workdir: batch order is a pure
function of (seed, step), so an interrupted and resumed run ends with the
same parameters as an uninterrupted one (a test checks this bit for bit).
Progress is logged every `log_every` steps: loss, accuracy and steps/s.

Today: the classifier embedders (`train_classifier`) and the MLP GAN of the
2-D mixtures (`train_gan`). The image GANs follow (issue 4).
"""

from __future__ import annotations

import json
import os
import time

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_flags
import numpy as np
import optax

from lsh_gan import data
from lsh_gan import models


def _batch_indices(num: int, batch_size: int, seed: int, step: int):
  """Indices of batch `step`: epochs are fresh permutations of range(num)."""
  per_epoch = num // batch_size
  epoch, within = divmod(step, per_epoch)
  order = np.random.default_rng([seed, epoch]).permutation(num)
  return order[within * batch_size:(within + 1) * batch_size]


def random_shift(key, images, pixels: int):
  """Each image moved by up to `pixels` in each direction (zero-padded with
  the background value -1): the augmentation small digit sets need."""
  if pixels == 0:
    return images
  n, height, width, _ = images.shape
  padded = jnp.pad(images, ((0, 0), (pixels, pixels), (pixels, pixels),
                            (0, 0)), constant_values=-1.0)
  offsets = jax.random.randint(key, (n, 2), 0, 2 * pixels + 1)
  crop = lambda image, offset: jax.lax.dynamic_slice(
      image, (offset[0], offset[1], 0), (height, width, image.shape[-1]))
  return jax.vmap(crop)(padded, offsets)


def classifier_model(config: ml_collections.ConfigDict) -> models.Classifier:
  return models.Classifier(features=tuple(config.features),
                           embed_dim=config.embed_dim,
                           num_classes=config.num_classes)


def _checkpoint_manager(workdir: str, keep: int = 2):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))


def _restore(manager, state):
  """The latest checkpoint in `manager`, or `state` if there is none."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  if manager.latest_step() is None:
    return state
  logging.info("resuming from step %d", manager.latest_step())
  return manager.restore(manager.latest_step(),
                         args=ocp.args.StandardRestore(state))


def _run(config, manager, state, step_fn, batch, log_line, stop_after):
  """Steps from state["step"] to config.steps: logs, checkpoints, returns.

  `batch(step)` gives the step's arguments after the state; `step_fn`
  returns (state, *values) and `log_line(values)` formats the values.
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  last_log, done = time.perf_counter(), 0
  for step in range(int(state["step"]), config.steps):
    if stop_after is not None and done == stop_after:
      break
    state, *values = step_fn(state, *batch(step))
    done += 1
    last = step + 1 == config.steps
    if (step + 1) % config.log_every == 0 or last:
      now = time.perf_counter()
      logging.info("step %d/%d  %s  %.1f steps/s", step + 1, config.steps,
                   log_line(values),
                   config.log_every / max(now - last_log, 1e-9))
      last_log = now
    if (step + 1) % config.checkpoint_every == 0 or last:
      manager.save(step + 1, args=ocp.args.StandardSave(state))
  manager.wait_until_finished()
  return state


def _write_metrics(workdir: str, metrics: dict) -> None:
  tmp = os.path.join(workdir, "metrics.json.tmp")
  with open(tmp, "w") as f:
    json.dump(metrics, f, indent=1)
  os.replace(tmp, os.path.join(workdir, "metrics.json"))


def accuracy(model, params, images, labels, batch: int = 1000) -> float:
  """Fraction of correct argmax predictions."""
  predict = jax.jit(lambda p, x: jnp.argmax(model.apply(p, x), axis=-1))
  correct = 0
  for start in range(0, images.shape[0], batch):
    correct += int(np.sum(np.asarray(predict(
        params, images[start:start + batch])) == labels[start:start + batch]))
  return correct / images.shape[0]


def train_classifier(config: ml_collections.ConfigDict, workdir: str,
                     stop_after: int | None = None) -> dict:
  """Trains (or resumes) a classifier embedder; returns its metrics.

  Args:
    config: see configs/train_embedder_*.py.
    workdir: checkpoints and `metrics.json` go here.
    stop_after: stop after this many steps of this call (simulates an
      interruption; for tests).

  Returns:
    {"step", "test_accuracy", "train_accuracy", "seconds"} at the end.
  """
  train = data.load(config.dataset, "train", data_dir=config.get("data_dir"))
  test = data.load(config.dataset, "test", data_dir=config.get("data_dir"))
  model = classifier_model(config)
  params = model.init(jax.random.key(config.seed), train["image"][:1])
  optimizer = optax.adam(config.learning_rate)
  state = {"params": params, "opt_state": optimizer.init(params),
           "step": jnp.zeros((), jnp.int32)}
  manager = _checkpoint_manager(workdir)
  state = _restore(manager, state)

  shift = config.get("augment_shift", 0)

  @jax.jit
  def step_fn(state, images, labels):
    key = jax.random.fold_in(jax.random.key(config.seed), state["step"])
    images = random_shift(key, images, shift)

    def loss_fn(params):
      logits = model.apply(params, images)
      loss = optax.softmax_cross_entropy_with_integer_labels(logits,
                                                             labels).mean()
      return loss, jnp.mean(jnp.argmax(logits, -1) == labels)
    (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state["params"])
    updates, opt_state = optimizer.update(grads, state["opt_state"],
                                          state["params"])
    return {"params": optax.apply_updates(state["params"], updates),
            "opt_state": opt_state, "step": state["step"] + 1}, loss, acc

  begin = time.perf_counter()
  images, labels = train["image"], train["label"]

  def batch(step):
    idx = _batch_indices(images.shape[0], config.batch_size, config.seed, step)
    return images[idx], labels[idx]

  state = _run(config, manager, state, step_fn, batch,
               lambda v: f"loss {float(v[0]):.4f}  batch accuracy "
               f"{float(v[1]):.3f}", stop_after)
  metrics = {
      "step": int(state["step"]),
      "train_accuracy": accuracy(model, state["params"], train["image"],
                                 train["label"]),
      "test_accuracy": accuracy(model, state["params"], test["image"],
                                test["label"]),
      "seconds": time.perf_counter() - begin,
  }
  _write_metrics(workdir, metrics)
  return {**metrics, "params": state["params"]}


def gan_models(config: ml_collections.ConfigDict):
  """(generator, discriminator) of a GAN config (today: the MLP GAN)."""
  if config.architecture != "mlp_gan":
    raise ValueError(f"architecture={config.architecture!r}: only 'mlp_gan' "
                     "is implemented so far")
  return (models.MLPGenerator(hidden=tuple(config.hidden),
                              latent_dim=config.latent_dim),
          models.MLPDiscriminator(hidden=tuple(config.hidden)))


def mixture_quality(points: np.ndarray, dataset: str) -> dict:
  """The 2-D mixture scores: samples within 3 std of a mode, modes hit."""
  from lsh_gan.data import _tfds  # pylint: disable=g-import-not-at-top
  centres, std = _tfds.mixture_modes(dataset)
  dist = np.linalg.norm(points[:, None, :] - centres[None], axis=-1)
  near = dist.min(axis=1) <= 3 * std
  hits = np.bincount(dist.argmin(axis=1)[near], minlength=len(centres))
  return {"high_quality": float(near.mean()),
          "modes_covered": int(np.sum(hits >= 0.2 * len(points) /
                                      len(centres))),
          "modes": len(centres)}


def train_gan(config: ml_collections.ConfigDict, workdir: str,
              stop_after: int | None = None) -> dict:
  """Trains (or resumes) a GAN: non-saturating loss, one D and one G step.

  Returns:
    {"step", "seconds", "precision", "recall"} (KNN, k = 3, 5,000 samples
    against the training set in the dataset's embedding), plus the mixture
    scores for ring8/grid25, and "params" (the generator's).
  """
  from lsh_gan import metrics as lsh_metrics  # pylint: disable=g-import-not-at-top
  train = data.images(config.dataset, "train", data_dir=config.get("data_dir"))
  generator, discriminator = gan_models(config)
  key_g, key_d = jax.random.split(jax.random.key(config.seed))
  g_params = generator.init(key_g, jnp.zeros((1, config.latent_dim)))
  d_params = discriminator.init(key_d, jnp.asarray(train[:1]))
  g_opt = optax.adam(config.learning_rate, b1=0.5)
  d_opt = optax.adam(config.learning_rate, b1=0.5)
  state = {"g": g_params, "d": d_params, "g_opt": g_opt.init(g_params),
           "d_opt": d_opt.init(d_params), "step": jnp.zeros((), jnp.int32)}
  manager = _checkpoint_manager(workdir)
  state = _restore(manager, state)

  @jax.jit
  def step_fn(state, real):
    key = jax.random.fold_in(jax.random.key(config.seed + 1), state["step"])
    key_d, key_g = jax.random.split(key)
    z_d = jax.random.normal(key_d, (real.shape[0], config.latent_dim))
    z_g = jax.random.normal(key_g, (real.shape[0], config.latent_dim))

    def d_loss(d):
      fake = generator.apply(state["g"], z_d)
      return (optax.sigmoid_binary_cross_entropy(
          discriminator.apply(d, real), 1.0).mean() +
              optax.sigmoid_binary_cross_entropy(
                  discriminator.apply(d, fake), 0.0).mean())

    d_value, d_grads = jax.value_and_grad(d_loss)(state["d"])
    d_updates, d_opt_state = d_opt.update(d_grads, state["d_opt"], state["d"])
    d_new = optax.apply_updates(state["d"], d_updates)

    def g_loss(g):
      fake = generator.apply(g, z_g)
      return optax.sigmoid_binary_cross_entropy(
          discriminator.apply(d_new, fake), 1.0).mean()

    g_value, g_grads = jax.value_and_grad(g_loss)(state["g"])
    g_updates, g_opt_state = g_opt.update(g_grads, state["g_opt"], state["g"])
    return {"g": optax.apply_updates(state["g"], g_updates), "d": d_new,
            "g_opt": g_opt_state, "d_opt": d_opt_state,
            "step": state["step"] + 1}, d_value, g_value

  begin = time.perf_counter()
  state = _run(
      config, manager, state, step_fn,
      lambda step: (train[_batch_indices(train.shape[0], config.batch_size,
                                         config.seed, step)],),
      lambda v: f"d loss {float(v[0]):.4f}  g loss {float(v[1]):.4f}",
      stop_after)
  samples = np.asarray(models.mlp_gan.sample_fn(generator)(
      state["g"], jax.random.key(config.seed + 2), 5000))
  real = train[np.random.default_rng(config.seed).choice(
      train.shape[0], min(5000, train.shape[0]), replace=False)]
  out = {"step": int(state["step"]), "seconds": time.perf_counter() - begin,
         **lsh_metrics.knn_precision_recall(real, samples, k=3)}
  if config.dataset in data.MIXTURES:
    out.update(mixture_quality(samples, config.dataset))
  _write_metrics(workdir, out)
  return {**out, "params": state["g"]}


_CONFIG = config_flags.DEFINE_config_file("config", None, "training config")
_WORKDIR = flags.DEFINE_string("workdir", None, "checkpoints and metrics")
_EXPORT = flags.DEFINE_string(
    "export", None, "also write the trained model to lsh_gan/pretrained under "
    "this name (with info.json: config, steps, command, metrics)")


def main(argv):
  del argv
  import sys  # pylint: disable=g-import-not-at-top
  config = _CONFIG.value
  gan = "architecture" in config
  metrics = (train_gan if gan else train_classifier)(config, _WORKDIR.value)
  params = metrics.pop("params")
  print(json.dumps(metrics))
  if _EXPORT.value:
    from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
    path = pretrained.export(_EXPORT.value, params, {
        "dataset": config.dataset,
        "architecture": config.architecture if gan else "classifier",
        "config": config.to_dict(),
        "steps": metrics["step"],
        "command": "python -m lsh_gan.train " + " ".join(sys.argv[1:]),
        "metrics": {k: round(v, 4) for k, v in metrics.items()
                    if k != "step"},
        **({} if gan else {"embedding_size": config.embed_dim}),
    })
    print("exported to", path)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
