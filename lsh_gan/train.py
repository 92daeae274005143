"""Training with optax: jitted steps, fixed seeds, resumable with Orbax.

  python launch.py --config=configs/train_embedder_digits.py \\
      --workdir=/tmp/embedder_digits [--export=embedder_digits]

A run writes Orbax checkpoints under `workdir/checkpoints` every
`checkpoint_every` steps (the last two are kept) and continues from the
latest one when started again with the same workdir: batch order is a pure
function of (seed, step), so an interrupted and resumed run ends with the
same parameters as an uninterrupted one (a test checks this bit for bit).
Progress is logged every `log_every` steps: loss, accuracy and steps/s.

`train_classifier` trains the embedders, `train_gan` the GANs (DCGAN,
WGAN-GP and the MLP GAN of the 2-D mixtures); `run` trains either from its
config and can export the result to `lsh_gan.pretrained`.
"""

from __future__ import annotations

import functools
import json
import os
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from lsh_gan import _files
from lsh_gan import _logging
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


AUGMENTATIONS = ("translation", "cutout")


def diff_augment(key, images, policy: str):
  """Differentiable augmentation (Zhao et al. 2020, "Differentiable
  Augmentation for Data-Efficient GAN Training", arXiv:2006.10738) of a
  batch the discriminator sees, real or generated alike; gradients flow
  through it to the generator. `policy`: comma-separated names of
  AUGMENTATIONS, applied in that order:

    translation  each image moved by up to 1/8 of its side (at least one
                 pixel) in each direction, the background (-1) shifted in;
    cutout       a rectangle of half the image's height and width, centred
                 at a random pixel of each image (so clipped at the
                 borders), set to 0 (the paper's cutout: the mask
                 multiplies).

  "" returns the images unchanged.
  """
  names = [p for p in policy.split(",") if p]
  unknown = [p for p in names if p not in AUGMENTATIONS]
  if unknown:
    raise ValueError(f"diffaugment={policy!r}: {', '.join(unknown)} not "
                     f"augmentations; valid ones: {', '.join(AUGMENTATIONS)}")
  n, height, width, _ = images.shape
  for i, name in enumerate(names):
    sub = jax.random.fold_in(key, i)
    if name == "translation":
      images = random_shift(sub, images, max(1, height // 8))
    else:
      tall, wide = height // 2, width // 2
      top = jax.random.randint(sub, (n,), -(tall // 2), height - tall // 2)
      left = jax.random.randint(jax.random.fold_in(sub, 1), (n,),
                                -(wide // 2), width - wide // 2)
      rows = jnp.arange(height)[None, :, None]
      cols = jnp.arange(width)[None, None, :]
      inside = ((rows >= top[:, None, None]) &
                (rows < top[:, None, None] + tall) &
                (cols >= left[:, None, None]) &
                (cols < left[:, None, None] + wide))
      images = images * (1.0 - inside[..., None].astype(images.dtype))
  return images


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

  Returns:
    (state, seconds): seconds of training summed over every call that led
    to this state (kept in workdir/seconds.json).
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  timing = os.path.join(os.path.dirname(str(manager.directory)),
                        "seconds.json")
  spent = {}
  if os.path.exists(timing):
    with open(timing) as f:
      spent = json.load(f)
  before = spent.get(str(int(state["step"])), 0.0)
  begin = last_log = time.perf_counter()
  done = 0
  end = config.steps if stop_after is None else min(
      config.steps, int(state["step"]) + max(stop_after, 0))
  for step in range(int(state["step"]), end):
    state, *values = step_fn(state, *batch(step))
    done += 1
    # A stop asked for (stop_after) is a checkpointed interruption.
    last = step + 1 == config.steps or done == stop_after
    if (step + 1) % config.log_every == 0 or last:
      now = time.perf_counter()
      logging.info("step %d/%d  %s  %.1f steps/s", step + 1, config.steps,
                   log_line(values),
                   config.log_every / max(now - last_log, 1e-9))
      last_log = now
    if (step + 1) % config.checkpoint_every == 0 or last:
      jax.block_until_ready(state)
      manager.save(step + 1, args=ocp.args.StandardSave(state))
      spent[str(step + 1)] = before + time.perf_counter() - begin
      _files.write_json(timing, spent)
  manager.wait_until_finished()
  return state, spent.get(str(int(state["step"])), before)


def _write_metrics(workdir: str, metrics: dict) -> None:
  _files.write_json(os.path.join(workdir, "metrics.json"), metrics)


def accuracy(model, params, images, labels, batch: int = 1000) -> float:
  """Fraction of correct argmax predictions (batches of one size, the last
  one padded: one compiled program per batch size and model)."""
  predict = _predict(model)
  batch = min(batch, images.shape[0])
  correct = 0
  for start in range(0, images.shape[0], batch):
    chunk = images[start:start + batch]
    n = chunk.shape[0]
    if n < batch:
      chunk = np.concatenate([chunk, np.zeros((batch - n,) + chunk.shape[1:],
                                              chunk.dtype)])
    correct += int(np.sum(np.asarray(predict(params, chunk))[:n] ==
                          labels[start:start + n]))
  return correct / images.shape[0]


@models.built_once
def _predict(model):
  """predict(params, images) -> argmax labels; jitted, once per model."""
  return jax.jit(lambda p, x: jnp.argmax(model.apply(p, x), axis=-1))


@functools.lru_cache(maxsize=8)
def _classifier_step(config: ml_collections.FrozenConfigDict):
  """The jitted training step of an embedder config, built once per config:
  step_fn(state, images, labels) -> (state, loss, batch accuracy)."""
  model = models.build(config)
  optimizer = optax.adam(config.learning_rate)
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
  return step_fn


def train_classifier(config: ml_collections.ConfigDict, workdir: str,
                     stop_after: int | None = None) -> dict:
  """Trains (or resumes) a classifier embedder; returns its metrics.

  Args:
    config: see configs/train_embedder_*.py.
    workdir: checkpoints and `metrics.json` go here.
    stop_after: stop after this many steps of this call (simulates an
      interruption; for tests).

  Returns:
    {"step", "test_accuracy", "train_accuracy", "seconds"} at the end
    (seconds of training, summed over interruptions), and "params".
  """
  train = data.load(config.dataset, "train", data_dir=config.get("data_dir"))
  test = data.load(config.dataset, "test", data_dir=config.get("data_dir"))
  model = models.build(config)
  params = model.init(jax.random.key(config.seed), train["image"][:1])
  state = {"params": params,
           "opt_state": optax.adam(config.learning_rate).init(params),
           "step": jnp.zeros((), jnp.int32)}
  manager = _checkpoint_manager(workdir)
  state = _restore(manager, state)
  step_fn = _classifier_step(_key(config))

  images, labels = train["image"], train["label"]

  def batch(step):
    idx = _batch_indices(images.shape[0], config.batch_size, config.seed, step)
    return images[idx], labels[idx]

  state, seconds = _run(config, manager, state, step_fn, batch,
                        lambda v: f"loss {float(v[0]):.4f}  batch accuracy "
                        f"{float(v[1]):.3f}", stop_after)
  metrics = {
      "step": int(state["step"]),
      "train_accuracy": accuracy(model, state["params"], train["image"],
                                 train["label"]),
      "test_accuracy": accuracy(model, state["params"], test["image"],
                                test["label"]),
      "seconds": seconds,
  }
  _write_metrics(workdir, metrics)
  return {**metrics, "params": state["params"]}


LOSSES = ("nonsaturating", "wgan_gp")


def mixture_quality(points: np.ndarray, dataset: str) -> dict:
  """The 2-D mixture scores: samples within 3 std of a mode, modes hit."""
  centres, std = data.mixture(dataset)
  dist = np.linalg.norm(points[:, None, :] - centres[None], axis=-1)
  near = dist.min(axis=1) <= 3 * std
  hits = np.bincount(dist.argmin(axis=1)[near], minlength=len(centres))
  return {"high_quality": float(near.mean()),
          "modes_covered": int(np.sum(hits >= 0.2 * len(points) /
                                      len(centres))),
          "modes": len(centres)}


def mode_coverage(samples: np.ndarray, *, confidence: float = 0.9,
                  batch: int = 500) -> dict:
  """Exact mode coverage of `shapes` samples, by the committed factor
  classifier (`embedder_shapes`, 96 modes of shape x colour x size x
  position).

  A sample counts as a clear instance of mode m when the classifier gives m
  probability >= `confidence`. Returns:
    high_quality   fraction of samples that are clear instances;
    modes_covered  modes with at least 0.2 x (samples / 96) clear
                   instances (the rule used for the 2-D mixtures); "modes"
                   is 96;
    mode_tv        total variation distance between the clear instances'
                   mode histogram and the uniform one of the data (0: every
                   mode equally often; 1: disjoint);
    <factor>_covered  values of each factor (shape, colour, size, position)
                   with at least 0.2 x their expected share;
    mode_counts    the histogram (96 counts).
  """
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  from lsh_gan.data import shapes  # pylint: disable=g-import-not-at-top
  samples = np.asarray(samples, np.float32)
  if samples.ndim != 4 or samples.shape[1:] != (shapes.SIDE, shapes.SIDE, 3):
    raise ValueError(f"samples: shapes images are (n, 32, 32, 3), got shape "
                     f"{samples.shape}")
  config = ml_collections.ConfigDict(pretrained.info("embedder_shapes")[
      "config"])
  model = models.build(config)
  params = pretrained.params("embedder_shapes")
  probabilities = jax.jit(lambda p, x: jax.nn.softmax(model.apply(p, x)))
  probs = pretrained.embed_all(probabilities, params, samples, batch)
  clear = probs.max(axis=1) >= confidence
  modes = probs.argmax(axis=1)[clear]
  n = samples.shape[0]
  counts = np.bincount(modes, minlength=shapes.NUM_MODES)
  out = {"high_quality": float(clear.mean()),
         "modes_covered": int(np.sum(counts >= 0.2 * n / shapes.NUM_MODES)),
         "modes": shapes.NUM_MODES,
         "mode_tv": float(0.5 * np.abs(counts / max(counts.sum(), 1) -
                                       1 / shapes.NUM_MODES).sum()),
         "mode_counts": counts.tolist()}
  for factor, values in shapes.FACTORS.items():
    per_value = np.bincount(shapes.factors_of(modes)[factor],
                            minlength=len(values))
    out[f"{factor}_covered"] = int(np.sum(per_value >= 0.2 * n /
                                          len(values)))
  return out


def embedding_of(dataset: str):
  """(embed, space): the function that maps a dataset's samples into its
  pre-trained embedding ("space": "embedding"; the flattened samples,
  "pixels", for a dataset without one)."""
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  try:
    embed_fn, params = pretrained.embedder(dataset)
  except ValueError:  # no pre-trained embedder for this dataset
    return (lambda x: x.reshape(x.shape[0], -1)), "pixels"
  return (lambda x: pretrained.embed_all(embed_fn, params, x)), "embedding"


def quality_reference(dataset: str, *, data_dir: str | None = None,
                      seed: int = 0):
  """(reference, embed, space) that `generator_quality` scores against: a
  `lsh_gan.metrics.Reference` of at most 5,000 training samples (chosen by
  `seed`) in the dataset's pre-trained embedding, and `embedding_of`'s
  (embed, space)."""
  from lsh_gan import metrics as lsh_metrics  # pylint: disable=g-import-not-at-top
  real = data.images(dataset, "train", data_dir=data_dir)
  real = real[np.random.default_rng(seed).choice(
      real.shape[0], min(5000, real.shape[0]), replace=False)]
  embed, space = embedding_of(dataset)
  return lsh_metrics.Reference(embed(real)), embed, space


def generator_quality(samples: np.ndarray, dataset: str, *,
                      data_dir: str | None = None, seed: int = 0) -> dict:
  """How a generator's samples compare with its training set.

  KNN precision and recall (k = 3) and the Frechet distance, in the
  dataset's pre-trained embedding ("space": "embedding"; flattened pixels,
  "space": "pixels", for datasets without one), against the training split
  (at most 5,000 of its samples); the mixture scores for ring8 and grid25,
  `mode_coverage` for shapes.
  """
  ref, embed, space = quality_reference(dataset, data_dir=data_dir,
                                        seed=seed)
  fake = embed(np.asarray(samples))
  out = {**ref.knn_precision_recall(fake, k=3),
         **ref.frechet_distance(fake), "space": space}
  if dataset in data.MIXTURES:
    out.update(mixture_quality(np.asarray(samples), dataset))
  if dataset == "shapes":
    out.update({k: v for k, v in mode_coverage(samples).items()
                if k != "mode_counts"})
  return out


def critic_losses(config, discriminator):
  """(d_loss(d_params, real, fake, key), g_loss(d_params, fake, key)) of
  the config's loss on given samples ("nonsaturating": binary cross-entropy
  on the logits; "wgan_gp": the Wasserstein critic loss with a gradient
  penalty of weight `gp_weight` on random interpolates). With `diffaugment`
  the critic sees the samples through `diff_augment`. Fine-tuning
  (`lsh_gan.finetune`) scores a compressed generator's samples with them."""
  loss = config.get("loss", "nonsaturating")
  if loss not in LOSSES:
    raise ValueError(f"loss={loss!r} is not a GAN loss; valid ones: "
                     f"{', '.join(LOSSES)}")
  policy = config.get("diffaugment", "")

  def logits(d_params, x):
    # Batch norm in the DCGAN discriminator always uses batch statistics.
    return discriminator.apply({"params": d_params}, x,
                               mutable=["batch_stats"])[0]

  def d_loss(d_params, real, fake, key):
    if policy:
      real = diff_augment(jax.random.fold_in(key, 2), real, policy)
      fake = diff_augment(jax.random.fold_in(key, 3), fake, policy)
    if loss == "nonsaturating":
      return (optax.sigmoid_binary_cross_entropy(logits(d_params, real),
                                                 1.0).mean() +
              optax.sigmoid_binary_cross_entropy(logits(d_params, fake),
                                                 0.0).mean())
    mix = jax.random.uniform(jax.random.split(key)[1],
                             (real.shape[0],) + (1,) * (real.ndim - 1))
    between = mix * real + (1 - mix) * fake
    grads = jax.grad(lambda x: logits(d_params, x).sum())(between)
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, -1) +
                     1e-12)
    return (logits(d_params, fake).mean() - logits(d_params, real).mean() +
            config.get("gp_weight", 10.0) * jnp.mean((norms - 1.0) ** 2))

  def g_loss(d_params, fake, key):
    if policy:
      fake = diff_augment(jax.random.fold_in(key, 1), fake, policy)
    out = logits(d_params, fake)
    return (-out.mean() if loss == "wgan_gp" else
            optax.sigmoid_binary_cross_entropy(out, 1.0).mean())

  return d_loss, g_loss


def _gan_losses(config, generator, discriminator):
  """(d_loss(d_params, g_vars, real, key), g_loss(g_params, g_vars, d_params,
  key)) of the config's loss; g_loss also returns the new batch stats."""
  d_on, g_on = critic_losses(config, discriminator)

  def fake_of(g_vars, key, num):
    z = jax.random.normal(key, (num, config.latent_dim))
    return generator.apply(g_vars, z, train=True, mutable=["batch_stats"])

  def d_loss(d_params, g_vars, real, key):
    # The same keys as ever (a retrained model is the committed one): the
    # latents from split(key)[0], the interpolates from split(key)[1].
    fake = jax.lax.stop_gradient(
        fake_of(g_vars, jax.random.split(key)[0], real.shape[0])[0])
    return d_on(d_params, real, fake, key)

  def g_loss(g_params, g_vars, d_params, key, num):
    fake, updates = fake_of({**g_vars, "params": g_params}, key, num)
    return g_on(d_params, fake, key), updates

  return d_loss, g_loss


def _key(config: ml_collections.ConfigDict) -> ml_collections.FrozenConfigDict:
  """The whole config as a hashable cache key for the step functions built
  from it: a step is built once per config, and never reused for a config
  that differs in any field."""
  return ml_collections.FrozenConfigDict(config)


def learning_rate(config, rate: float):
  """The rate of a GAN config's optimizers: `rate`, constant; with
  `decay_steps` > 0, constant for the first `steps - decay_steps` steps and
  then falling linearly to 0 at `steps` (a schedule)."""
  decay = config.get("decay_steps", 0)
  if (not isinstance(decay, int) or isinstance(decay, bool) or
      not 0 <= decay <= config.steps):
    raise ValueError(f"decay_steps={decay!r} must be an integer in 0..steps "
                     f"({config.steps})")
  if not decay:
    return rate
  return optax.join_schedules(
      [optax.constant_schedule(rate), optax.linear_schedule(rate, 0.0, decay)],
      [config.steps - decay])


def _gan_optimizers(config):
  """(generator's, discriminator's) Adam of a GAN config, at
  `learning_rate`'s rates."""

  def make(rate):
    return optax.adam(learning_rate(config, rate), b1=config.get("b1", 0.5),
                      b2=config.get("b2", 0.999))
  return (make(config.learning_rate),
          make(config.get("d_learning_rate", config.learning_rate)))


@functools.lru_cache(maxsize=8)
def _gan_step(config: ml_collections.FrozenConfigDict):
  """The jitted training step of a GAN config, built once per config:
  step_fn(state, reals) -> (state, d_loss, g_loss), reals of shape
  (critic_steps, batch, ...)."""
  generator, discriminator = models.build(config)
  critic_steps = config.get("critic_steps", 1)
  g_opt, d_opt = _gan_optimizers(config)
  ema = config.get("ema_decay", 0.0)
  d_loss, g_loss = _gan_losses(config, generator, discriminator)

  @jax.jit
  def step_fn(state, reals):
    key = jax.random.fold_in(jax.random.key(config.seed + 1), state["step"])
    d, d_opt_state = state["d"], state["d_opt"]
    for i in range(critic_steps):
      d_value, grads = jax.value_and_grad(d_loss)(
          d, state["g"], reals[i], jax.random.fold_in(key, i))
      updates, d_opt_state = d_opt.update(grads, d_opt_state, d)
      d = optax.apply_updates(d, updates)
    (g_value, stats), grads = jax.value_and_grad(g_loss, has_aux=True)(
        state["g"]["params"], state["g"], d,
        jax.random.fold_in(key, critic_steps), reals.shape[1])
    updates, g_opt_state = g_opt.update(grads, state["g_opt"],
                                        state["g"]["params"])
    g_new = {**state["g"], **stats,
             "params": optax.apply_updates(state["g"]["params"], updates)}
    new = {"g": g_new, "d": d, "g_opt": g_opt_state, "d_opt": d_opt_state,
           "step": state["step"] + 1}
    if ema:
      new["g_ema"] = optax.incremental_update(g_new["params"],
                                              state["g_ema"], 1.0 - ema)
    return new, d_value, g_value
  return step_fn


def train_gan(config: ml_collections.ConfigDict, workdir: str,
              stop_after: int | None = None) -> dict:
  """Trains (or resumes) a GAN; returns its quality and generator.

  A step is `critic_steps` discriminator updates (each on its own real
  batch) and one generator update, with the config's loss: "nonsaturating"
  (the usual GAN loss) or "wgan_gp" (Wasserstein loss with a gradient
  penalty of weight `gp_weight` on random interpolates). Adam with
  `learning_rate`, `b1`, `b2` for both networks (`d_learning_rate`, if
  given, for the discriminator). With `diffaugment` (e.g.
  "translation,cutout") the discriminator sees every batch, real and
  generated, through `diff_augment`. With `ema_decay` > 0 the
  generator returned is the exponential moving average of its weights
  (batch-norm statistics re-estimated for it), which gives cleaner samples
  than the last iterate.

  Returns:
    {"step", "seconds"} (of training, summed over interruptions) and
    `generator_quality` of `eval_samples` (default 5,000) samples, plus
    "variables" (the generator's: params, and batch_stats for the DCGAN)
    and "discriminator" (its params).
  """
  # A bad augmentation policy is refused before any data is loaded.
  diff_augment(jax.random.key(0), jnp.zeros((1, 8, 8, 1)),
               config.get("diffaugment", ""))
  train = data.images(config.dataset, "train", data_dir=config.get("data_dir"))
  generator, discriminator = models.build(config)
  critic_steps = config.get("critic_steps", 1)
  key_g, key_d = jax.random.split(jax.random.key(config.seed))
  g_vars = dict(generator.init(key_g, jnp.zeros((2, config.latent_dim))))
  d_params = discriminator.init(key_d, jnp.asarray(train[:2]))["params"]
  g_opt, d_opt = _gan_optimizers(config)
  state = {"g": g_vars, "d": d_params, "g_opt": g_opt.init(g_vars["params"]),
           "d_opt": d_opt.init(d_params), "step": jnp.zeros((), jnp.int32)}
  ema = config.get("ema_decay", 0.0)
  if ema:
    state["g_ema"] = g_vars["params"]
  manager = _checkpoint_manager(workdir)
  state = _restore(manager, state)
  step_fn = _gan_step(_key(config))

  def batch(step):
    return (np.stack([
        train[_batch_indices(train.shape[0], config.batch_size, config.seed,
                             step * critic_steps + i)]
        for i in range(critic_steps)]),)

  state, seconds = _run(
      config, manager, state, step_fn, batch,
      lambda v: f"d loss {float(v[0]):.4f}  g loss {float(v[1]):.4f}",
      stop_after)
  variables = (_with_batch_stats(generator, state["g_ema"], state["g"],
                                 config) if ema else state["g"])
  samples = models.sampler(generator, config.latent_dim)(
      variables, jax.random.key(config.seed + 2),
      config.get("eval_samples", 5000))
  out = {"step": int(state["step"]), "seconds": seconds,
         **generator_quality(samples, config.dataset,
                             data_dir=config.get("data_dir"),
                             seed=config.seed)}
  _write_metrics(workdir, out)
  return {**out, "variables": variables, "discriminator": state["d"]}


def translation_quality(outputs: np.ndarray, dataset: str, split: str = "test",
                        *, data_dir: str | None = None) -> dict:
  """How a conditional generator's outputs on a paired dataset's `split`
  (every condition, in stored order) compare with the targets.

  Paired fidelity (`lsh_gan.metrics.paired.fidelity`: L1, PSNR, SSIM) and
  edge consistency (edges2digits: the outputs' outlines against the input
  edges), and the distribution metrics of `generator_quality` (KNN
  precision and recall, k = 3, and the Frechet distance) of the outputs
  against the split's targets, in the targets' pre-trained embedding.
  """
  from lsh_gan import metrics as lsh_metrics  # pylint: disable=g-import-not-at-top
  from lsh_gan.metrics import paired  # pylint: disable=g-import-not-at-top
  pairs = data.load(dataset, split, data_dir=data_dir)
  outputs = np.asarray(outputs)
  if outputs.shape != pairs["image"].shape:
    raise ValueError(f"outputs of shape {outputs.shape}: must be one per "
                     f"condition of {dataset}'s {split} split, "
                     f"{pairs['image'].shape}")
  embed, space = embedding_of(dataset)
  ref = lsh_metrics.Reference(embed(pairs["image"]))
  fake = embed(outputs)
  out = {**paired.fidelity(outputs, pairs["image"]),
         **ref.knn_precision_recall(fake, k=3),
         **ref.frechet_distance(fake), "space": space}
  if dataset == "edges2digits":
    out.update(paired.edge_consistency(outputs, pairs["condition"]))
  return out


def pix2pix_losses(discriminator):
  """(d_loss(d_params, conditions, targets, fake), g_gan(d_params,
  conditions, fake)): pix2pix's conditional losses, as the authors' code
  takes them. The discriminator's is half the binary cross-entropy of a
  real pair scored real and a generated pair scored fake (the 0.5 slows it
  against the generator); the generator's GAN term is the cross-entropy of
  its pair scored real. Distillation (`lsh_gan.finetune`) uses them too."""
  bce = optax.sigmoid_binary_cross_entropy

  def logits(d_params, conditions, images):
    return discriminator.apply({"params": d_params}, conditions, images,
                               mutable=["batch_stats"])[0]

  def d_loss(d_params, conditions, targets, fake):
    return 0.5 * (bce(logits(d_params, conditions, targets), 1.0).mean() +
                  bce(logits(d_params, conditions, fake), 0.0).mean())

  def g_gan(d_params, conditions, fake):
    return bce(logits(d_params, conditions, fake), 1.0).mean()

  return d_loss, g_gan


@functools.lru_cache(maxsize=8)
def _pix2pix_step(config: ml_collections.FrozenConfigDict):
  """The jitted training step of a pix2pix config, built once per config:
  step_fn(state, conditions, targets) -> (state, d_loss, g_gan, g_l1)."""
  generator, discriminator = models.build(config)
  g_opt, d_opt = _gan_optimizers(config)
  l1_weight = config.get("l1_weight", 100.0)
  shift = config.get("augment_shift", 0)
  d_loss, g_gan = pix2pix_losses(discriminator)

  def fake_of(g_vars, conditions):
    return generator.apply(g_vars, conditions, train=True,
                           mutable=["batch_stats"])

  def g_loss(g_params, g_vars, d_params, conditions, targets):
    fake, stats = fake_of({**g_vars, "params": g_params}, conditions)
    gan = g_gan(d_params, conditions, fake)
    l1 = jnp.abs(fake - targets).mean()
    return gan + l1_weight * l1, (stats, gan, l1)

  @jax.jit
  def step_fn(state, conditions, targets):
    key = jax.random.fold_in(jax.random.key(config.seed + 1), state["step"])
    if shift:  # the same shift for a condition and its target
      both = random_shift(key, jnp.concatenate([conditions, targets], -1),
                          shift)
      conditions, targets = jnp.split(both, [conditions.shape[-1]], -1)
    fake = jax.lax.stop_gradient(fake_of(state["g"], conditions)[0])
    d_value, grads = jax.value_and_grad(d_loss)(state["d"], conditions,
                                                targets, fake)
    updates, d_opt_state = d_opt.update(grads, state["d_opt"], state["d"])
    d = optax.apply_updates(state["d"], updates)
    (_, (stats, gan, l1)), grads = jax.value_and_grad(g_loss, has_aux=True)(
        state["g"]["params"], state["g"], d, conditions, targets)
    updates, g_opt_state = g_opt.update(grads, state["g_opt"],
                                        state["g"]["params"])
    g_new = {**state["g"], **stats,
             "params": optax.apply_updates(state["g"]["params"], updates)}
    return ({"g": g_new, "d": d, "g_opt": g_opt_state, "d_opt": d_opt_state,
             "step": state["step"] + 1}, d_value, gan, l1)
  return step_fn


def train_pix2pix(config: ml_collections.ConfigDict, workdir: str,
                  stop_after: int | None = None) -> dict:
  """Trains (or resumes) a pix2pix on a paired dataset (data.PAIRED).

  A step, as the authors' code takes it: one discriminator update on a
  real pair (condition, target) and a generated one (condition, G(condition))
  with half the binary cross-entropy, then one generator update on the
  cross-entropy of its pair scored real plus `l1_weight` (100) times the
  mean absolute error to the target. Adam with `learning_rate`, `b1`, `b2`
  for both; with `decay_steps`, the rate falls linearly to 0 over the last
  that many steps (the authors' schedule). With `augment_shift`, a
  condition and its target move together by up to that many pixels.

  Returns:
    {"step", "seconds"} (of training, summed over interruptions) and
    `translation_quality` on the test split, plus "variables" (the
    generator's: params and batch_stats) and "discriminator" (its params).
  """
  if config.dataset not in data.PAIRED:
    raise ValueError(f"dataset={config.dataset!r} is not a paired dataset; "
                     f"paired ones: {', '.join(data.PAIRED)}")
  learning_rate(config, config.learning_rate)  # a bad schedule, refused
  # The schedule depends on `steps`: a workdir trained under another config
  # is refused, never resumed as this one (its rate would jump).
  os.makedirs(workdir, exist_ok=True)
  _files.claim(workdir, "training.json",
               {k: v for k, v in config.to_dict().items()
                if k not in ("log_every", "checkpoint_every", "data_dir")},
               "pix2pix training")
  train = data.load(config.dataset, "train", data_dir=config.get("data_dir"))
  conditions, targets = train["condition"], train["image"]
  generator, discriminator = models.build(config)
  key_g, key_d = jax.random.split(jax.random.key(config.seed))
  g_vars = dict(generator.init(key_g, jnp.asarray(conditions[:2])))
  d_params = discriminator.init(key_d, jnp.asarray(conditions[:2]),
                                jnp.asarray(targets[:2]))["params"]
  g_opt, d_opt = _gan_optimizers(config)
  state = {"g": g_vars, "d": d_params, "g_opt": g_opt.init(g_vars["params"]),
           "d_opt": d_opt.init(d_params), "step": jnp.zeros((), jnp.int32)}
  manager = _checkpoint_manager(workdir)
  state = _restore(manager, state)
  step_fn = _pix2pix_step(_key(config))

  def batch(step):
    idx = _batch_indices(len(targets), config.batch_size, config.seed, step)
    return conditions[idx], targets[idx]

  state, seconds = _run(
      config, manager, state, step_fn, batch,
      lambda v: (f"d loss {float(v[0]):.4f}  g gan {float(v[1]):.4f}  "
                 f"g l1 {float(v[2]):.4f}"), stop_after)
  test = data.load(config.dataset, "test", data_dir=config.get("data_dir"))
  outputs = models.translator(generator)(state["g"], test["condition"])
  out = {"step": int(state["step"]), "seconds": seconds,
         **translation_quality(np.asarray(outputs), config.dataset,
                               data_dir=config.get("data_dir"))}
  _write_metrics(workdir, out)
  return {**out, "variables": state["g"], "discriminator": state["d"]}


def train_discriminator(name: str, workdir: str, *, steps: int,
                        seed: int = 0, stop_after: int | None = None) -> dict:
  """Trains (or resumes) a discriminator for a committed generator that was
  exported without one, the generator held fixed.

  The discriminator starts from a fresh initialisation (`seed`) and takes
  `steps` steps of the GAN's own loss (`critic_losses`: its config's loss,
  learning rate, betas and augmentation) on a real batch and a batch of the
  committed generator's samples, drawn as users draw them (`sample_fn`, not
  the training-mode generator). It is the discriminator of the generator as
  committed, not the one that trained it: the committed generators are
  not retrained, so their figures stay as they are.

  Returns:
    {"step", "seconds", "auc"} (auc: the chance that a real sample of the
    test split scores above a fresh generated one, over up to 2,000 of
    each, each set scored as one batch as in training: 0.5 is a
    discriminator that cannot tell them apart) and
    "discriminator" (its params).

  Raises:
    ValueError: a workdir holding another discriminator's training (of
      another generator, steps or seed).
  """
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  sample_fn, variables = pretrained.generator(name)
  config = ml_collections.ConfigDict(pretrained.info(name)["config"])
  # A folder of another run (generator, steps or seed) is refused, never
  # resumed as this one.
  os.makedirs(workdir, exist_ok=True)
  _files.claim(workdir, "discriminator.json",
               {"generator": name, "fingerprint": pretrained.fingerprint(name),
                "steps": int(steps), "seed": int(seed)},
               "discriminator training")
  real = data.images(config.dataset, "train", data_dir=config.get("data_dir"))
  _, discriminator = models.build(config)
  d_params = discriminator.init(jax.random.key(seed),
                                jnp.asarray(real[:2]))["params"]
  d_opt = optax.adam(config.get("d_learning_rate", config.learning_rate),
                     b1=config.get("b1", 0.5), b2=config.get("b2", 0.999))
  state = {"d": d_params, "d_opt": d_opt.init(d_params),
           "step": jnp.zeros((), jnp.int32)}
  manager = _checkpoint_manager(workdir)
  state = _restore(manager, state)
  d_loss, _ = critic_losses(config, discriminator)
  sample = sample_fn.jitted  # traceable, num static

  @jax.jit
  def step_fn(state, reals, generator):  # the generator passed, not captured
    key = jax.random.fold_in(jax.random.key(seed + 1), state["step"])
    fake = sample(generator, jax.random.fold_in(key, 0), reals.shape[0])
    value, grads = jax.value_and_grad(d_loss)(state["d"], reals, fake,
                                              jax.random.fold_in(key, 1))
    updates, opt_state = d_opt.update(grads, state["d_opt"], state["d"])
    return {"d": optax.apply_updates(state["d"], updates), "d_opt": opt_state,
            "step": state["step"] + 1}, value

  on_device = jax.device_put(variables)

  def batch(step):
    return (real[_batch_indices(real.shape[0], config.batch_size, seed,
                                step)], on_device)

  run_config = ml_collections.ConfigDict(dict(
      steps=steps, log_every=max(1, min(config.get("log_every", 200), steps)),
      checkpoint_every=max(1, min(config.get("checkpoint_every", 500),
                                  steps))))
  state, seconds = _run(run_config, manager, state, step_fn, batch,
                        lambda v: f"d loss {float(v[0]):.4f}", stop_after)
  held_out = data.images(config.dataset, "test",
                         data_dir=config.get("data_dir"))
  held_out = held_out[np.random.default_rng(seed).permutation(
      len(held_out))[:2000]]
  fake = np.asarray(sample_fn(variables, jax.random.key(seed + 2),
                              len(held_out)))
  logits_of = jax.jit(lambda d, x: jnp.ravel(discriminator.apply(
      {"params": d}, x, mutable=["batch_stats"])[0]))
  real_logits = np.asarray(logits_of(state["d"], held_out))
  fake_logits = np.asarray(logits_of(state["d"], fake))
  # The chance that a real sample scores above a generated one (ties
  # count half): a WGAN critic's values have no threshold, so no accuracy.
  above = (real_logits[:, None] > fake_logits[None, :]).mean()
  ties = (real_logits[:, None] == fake_logits[None, :]).mean()
  out = {"step": int(state["step"]), "seconds": seconds,
         "auc": float(above + ties / 2)}
  _write_metrics(workdir, out)
  return {**out, "discriminator": state["d"]}


def add_discriminator(name: str, workdir: str, *, steps: int) -> dict:
  """`train_discriminator` for a committed generator, then the result added
  to its checkpoint (`pretrained.add_part`), with what info.json records of
  it under "discriminator" (steps, seconds, auc, how it was trained, the
  command), which is returned."""
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  with _files.locked(workdir, on_wait=logging.warning), \
      _logging.quiet_orbax():
    out = train_discriminator(name, workdir, steps=steps)
  record = {"steps": out["step"], "seconds": round(out["seconds"], 1),
            "auc": round(out["auc"], 4),
            "trained": "afresh, against the committed generator held fixed",
            "command": pretrained.part_command(name) + f" --steps={steps}"}
  pretrained.add_part(name, "discriminator", out["discriminator"],
                      {"discriminator": record})
  return record


def _with_batch_stats(generator, params, trained, config, batches: int = 50):
  """Generator variables for averaged `params`: batch-norm running averages
  are re-estimated for them (training-mode passes over `batches` batches of
  fresh latents, momentum 0.9), since the trained ones belong to the live
  weights. Without batch norm, just {"params": params}."""
  variables = {**trained, "params": params}
  if "batch_stats" not in trained:
    return variables
  update = _stats_update(generator, config.batch_size, config.latent_dim)
  for i in range(batches):
    variables = update(variables, jax.random.key(config.seed + 3 + i))
  return variables


@models.built_once
def _stats_update(generator, batch_size: int, latent_dim: int):
  """update(variables, key) -> variables after one training-mode pass over
  a batch of fresh latents; jitted, built once per generator module (equal
  modules, equal fields)."""

  @jax.jit
  def update(variables, key):
    z = jax.random.normal(key, (batch_size, latent_dim))
    _, stats = generator.apply(variables, z, train=True,
                               mutable=["batch_stats"])
    return {**variables, **stats}
  return update


def run(config: ml_collections.ConfigDict, workdir: str,
        export: str | None = None, command: str | None = None) -> dict:
  """Trains (or resumes) the model of a training config; maybe exports it.

  Args:
    config: a configs/train_*.py config (a GAN when it has `architecture`,
      else a classifier embedder).
    workdir: checkpoints and metrics.json.
    export: if given, also write the trained model to lsh_gan/pretrained
      under this name, with info.json (dataset, architecture, config, steps,
      the command, metrics).
    command: the command line recorded in info.json.

  Returns:
    The metrics (without parameters), plus "exported_to" when exported.
  """
  gan = models.is_gan(config)
  trainer = (train_pix2pix if models.is_conditional(config) else
             train_gan if gan else train_classifier)
  # Two trainings in one checkpoint folder would interleave their saves:
  # a second run waits for the first, then resumes from its last step.
  with _files.locked(workdir, on_wait=logging.warning), \
      _logging.quiet_orbax():
    metrics = trainer(config, workdir)
  params = metrics.pop("variables" if gan else "params")
  parts = {"discriminator": metrics.pop("discriminator")} if gan else {}
  if export:
    from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
    known_truth = {}
    if not gan:
      known_truth = {"known_truth": _embedder_checks(config, params)}
    metrics["exported_to"] = pretrained.export(export, params, {
        "dataset": config.dataset,
        "architecture": config.architecture if gan else "classifier",
        "config": config.to_dict(),
        "steps": metrics["step"],
        "command": command or "",
        "metrics": {k: float(f"{v:.4g}") if isinstance(v, float) else v
                    for k, v in metrics.items() if k != "step"},
        **({} if gan else {
            "embedding_size": models.build(config).embedding_size}),
        **known_truth,
    }, parts=parts)
  return metrics


def _embedder_checks(config, params) -> dict:
  """`embedding_checks.run` of a trained embedder, rounded for info.json
  ({} for a dataset without checks)."""
  from lsh_gan import embedding_checks  # pylint: disable=g-import-not-at-top
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  if config.dataset not in embedding_checks.HELDOUT_MIN:
    return {}
  model = models.build(config)
  embed_fn = jax.jit(lambda p, x: model.apply(p, x, method=model.embed))
  result = embedding_checks.run(
      config.dataset, lambda x: pretrained.embed_all(embed_fn, params, x),
      data_dir=config.get("data_dir"))
  logging.info("known-truth checks: %s", embedding_checks.failures(
      result, config.dataset) or "all hold")
  return jax.tree.map(lambda v: float(f"{v:.4g}"), result)
