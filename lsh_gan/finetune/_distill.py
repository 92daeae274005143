"""Slimmer generators: `distill` trains one with fewer channels from the
committed generator, as GAN Compression does, and `search` finds the best
per-layer widths under a MACs budget with a once-for-all supernet, then
fine-tunes that sub-network the same way (see the package's docstring and
docs/finetune.md for our reading of the paper)."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import time
from typing import Any, Callable, Sequence

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from lsh_gan import compress
from lsh_gan import data
from lsh_gan import models
from lsh_gan import pretrained
from lsh_gan import train
from lsh_gan.compress import _tree
from lsh_gan.finetune import _common
from lsh_gan.models import dcgan
from lsh_gan.models import pix2pix

# The objective's weights: output reconstruction (mean absolute error to the
# teacher's samples), intermediate features (mean squared error through the
# 1x1 adaptors, summed over the hidden layers) and the GAN's own generator
# loss under its discriminator. GAN Compression weighs reconstruction 10
# against the GAN loss; the feature weight 1 is ours. A conditional
# generator (pix2pix) is reconstructed towards its pairs' ground truth with
# its own L1 weight (`l1_weight`, 100), as GAN Compression does for paired
# data.
RECONSTRUCTION_WEIGHT = 10.0
FEATURE_WEIGHT = 1.0
GAN_WEIGHT = 1.0
# Width choices of the supernet's layers, as shares of the teacher's.
CHOICES = (0.25, 0.5, 0.75, 1.0)


@dataclasses.dataclass(frozen=True)
class Distilled:
  """A slimmer generator, trained by distillation.

  ``sample_fn, variables = distilled`` unpacks it: `sample_fn(variables,
  key, num)` samples it as `lsh_gan.pretrained.generator`'s does (for a
  conditional generator, `translate_fn(variables, conditions)`).

  Attributes:
    sample_fn: the slim generator's sampler (or translate_fn).
    variables: its variables (batch-norm averages re-estimated for them).
    channels: its hidden layers' channels, first to last (the teacher's:
      `teacher_channels`).
    macs: multiply-accumulates per sample (`compress.macs`).
    params: parameter count (`compress.num_params` of its params).
    steps: distillation steps of this generator (for `search`, after the
      supernet).
    seconds: training time, summed over interruptions (for `search`,
      supernet, search and fine-tuning together).
    candidates: for `search`, every sub-network scored: dicts of
      "channels", "macs" and "fid" (best first); empty for `distill`.
    discriminator_channels: for `collaborative_prune`, the pruned
      discriminator's channels, first to last; empty for the others.
  """
  sample_fn: Callable
  variables: Any
  channels: tuple[int, ...]
  macs: int
  params: int
  steps: int
  seconds: float
  candidates: tuple = ()
  discriminator_channels: tuple = ()

  def __iter__(self):
    return iter((self.sample_fn, self.variables))


def _config(name: str) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(pretrained.info(name)["config"])


def teacher_channels(name: str) -> tuple[int, ...]:
  """The committed generator's hidden channels (units, for an MLP), first
  to last."""
  return _hidden(_generator_config(name))


def _generator_config(name: str):
  _common.check_generator(name, conditional=True)
  return _config(name)


def _conditional(config) -> bool:
  return models.is_conditional(config)


def macs_of(name: str, width: int | None = None) -> int:
  """Multiply-accumulates per sample of a committed generator, or of its
  slimmer version at `width` (as `distill` makes it)."""
  config = _generator_config(name)
  if width is None:
    return _macs(config, _hidden(config))
  return _macs(config, _student_channels(config, width))


def stored_bytes_of(name: str, width: int | None = None) -> int:
  """Bytes of a committed generator's float32 variables (parameters and
  batch-norm averages), or of its slimmer version's at `width`: what a
  distilled generator stores."""
  config = _generator_config(name)
  channels = (_hidden(config) if width is None else
              _student_channels(config, width))
  return _costs(config, channels)[1]


def _student_channels(config, width: int) -> tuple[int, ...]:
  """The student's hidden channels at `width` (ValueError for a width
  that is not 1 to the teacher's)."""
  _common.check_int("width", width, 1)
  # The teacher's width: the U-Net's first level, the DCGAN's last hidden
  # layer, the MLP's units.
  most = config.width if _conditional(config) else _hidden(config)[-1]
  if width > most:
    raise ValueError(f"width={width} must be at most the teacher's {most}")
  if config.architecture == "mlp_gan":
    return tuple(width for _ in config.hidden)
  if _conditional(config):
    return pix2pix.level_channels(width, config.get("levels", 5))
  return dcgan.hidden_channels(width, data.sample_shape(config.dataset))


def _hidden(config) -> tuple[int, ...]:
  """The hidden layers' channels (the U-Net's: one per level, its encoder
  and decoder channels at that level cut together), first to last."""
  if config.architecture == "mlp_gan":
    return tuple(config.hidden)
  if _conditional(config):
    return pix2pix.level_channels(config.width, config.get("levels", 5))
  return dcgan.hidden_channels(config.width,
                               data.sample_shape(config.dataset))


def _module(config, channels):
  shape = data.sample_shape(config.dataset)
  if config.architecture == "mlp_gan":
    return models.MLPGenerator(hidden=tuple(channels), out_dim=shape[0])
  if _conditional(config):
    return pix2pix.UNetGenerator(width=config.width, levels=len(channels),
                                 out_channels=shape[2],
                                 channels=tuple(channels))
  return models.DCGANGenerator(width=config.width, image_shape=shape,
                               channels=tuple(channels))


def _feature_levels(config) -> tuple[int, ...]:
  """The hidden layer (U-Net level) of each feature map the generator sows,
  in order: one per hidden layer; the U-Net's encoder levels, then its
  decoder levels innermost first (the bottleneck once)."""
  n = len(_hidden(config))
  if _conditional(config):
    return tuple(range(n)) + tuple(range(n - 2, -1, -1))
  return tuple(range(n))


def _channel_axes(config) -> dict[str, tuple]:
  """Per leaf name ("Dense_0/kernel", "BatchNorm_1/mean", ...), its channel
  axes: (axis, hidden layer, group), the axis of size group x channels with
  the channel index fastest (group 1 but for the DCGAN's first map, whose
  dense output holds start x start positions of each channel)."""
  n = len(_hidden(config))
  if _conditional(config):
    return _unet_channel_axes(n)
  if config.architecture == "mlp_gan":
    axes = {}
    for i in range(n + 1):
      kernel = ((0, i - 1, 1),) if i else ()
      if i < n:
        kernel += ((1, i, 1),)
        axes[f"Dense_{i}/bias"] = ((0, i, 1),)
      axes[f"Dense_{i}/kernel"] = kernel
    return axes
  side = data.sample_shape(config.dataset)[0]
  cells = (side // 2 ** dcgan.upsamplings(side)) ** 2
  axes = {"Dense_0/kernel": ((1, 0, cells),)}
  for stat in ("scale", "bias", "mean", "var"):
    axes[f"BatchNorm_0/{stat}"] = ((0, 0, cells),)
    for i in range(1, n):
      axes[f"BatchNorm_{i}/{stat}"] = ((0, i, 1),)
  for i in range(n):
    axes[f"ConvTranspose_{i}/kernel"] = (
        (2, i, 1),) + (((3, i + 1, 1),) if i + 1 < n else ())
  return axes


def _unet_channel_axes(n: int) -> dict[str, tuple]:
  """`_channel_axes` of a U-Net of n levels (`models.pix2pix`): encoder
  convolution i makes level i's channels from level i - 1's; decoder
  transposed convolution j (innermost first) makes level n - 2 - j's from
  the bottleneck (j = 0) or from level n - 1 - j's decoder output and skip,
  concatenated (two groups of that level's channels); batch norm follows
  encoder levels 1 .. n - 2, then each decoder step but the last."""
  stats = ("scale", "bias", "mean", "var")
  axes = {}
  for i in range(n):
    axes[f"Conv_{i}/kernel"] = (((2, i - 1, 1),) if i else ()) + (
        (3, i, 1),)
  for b, level in enumerate(range(1, n - 1)):
    for stat in stats:
      axes[f"BatchNorm_{b}/{stat}"] = ((0, level, 1),)
  for j in range(n):
    made = ((3, n - 2 - j, 1),) if j < n - 1 else ()
    axes[f"ConvTranspose_{j}/kernel"] = (
        (2, n - 1 - j, 1 if j == 0 else 2),) + made
    if j < n - 1:
      for stat in stats:
        axes[f"BatchNorm_{n - 2 + j}/{stat}"] = ((0, n - 2 - j, 1),)
  return axes


def on_axes(tree, axes: dict, fn):
  """fn(leaf, leaf's axes) over a tree of variables or params, each leaf
  named by its last two keys ("Conv_1/kernel") in `axes` (a
  `_channel_axes`-style table; () for a leaf not in it)."""

  def one(path, leaf):
    key = "/".join(_tree.path_str(path).split("/")[-2:])
    return fn(leaf, axes.get(key, ()))
  return jax.tree_util.tree_map_with_path(one, tree)


def taken(tree, axes: dict, kept) -> Any:
  """A tree cut, on each channel axis of `axes`, to the channels `kept`
  (one index array per hidden layer) of each group."""

  def cut(leaf, leaf_axes):
    leaf = jnp.asarray(leaf)
    for axis, layer, group in leaf_axes:
      shape = leaf.shape
      split = shape[:axis] + (group, shape[axis] // group) + shape[axis + 1:]
      picked = jnp.take(leaf.reshape(split), kept[layer], axis=axis + 1)
      leaf = picked.reshape(shape[:axis] + (-1,) + shape[axis + 1:])
    return leaf
  return on_axes(tree, axes, cut)


def scaled(tree, axes: dict, factors) -> Any:
  """A tree multiplied, along each channel axis of `axes`, by its hidden
  layer's per-channel `factors` (repeated per group; may be traced): with
  0/1 factors, the network computes what the one cut to the 1s does."""

  def scale(leaf, leaf_axes):
    leaf = jnp.asarray(leaf)
    for axis, layer, group in leaf_axes:
      factor = jnp.tile(jnp.asarray(factors[layer]), group)
      shape = [1] * leaf.ndim
      shape[axis] = factor.shape[0]
      leaf = leaf * factor.reshape(shape).astype(leaf.dtype)
    return leaf
  return on_axes(tree, axes, scale)


def slice_channels(tree, config, channels: Sequence[int], order=None):
  """A generator's variables (or params) cut to `channels` of each hidden
  layer: its leading ones (the sub-network the once-for-all supernet shares
  weights with), or the first of each layer's `order` (a permutation of its
  channels, e.g. `strongest_channels`)."""
  hidden = _hidden(config)
  if len(channels) != len(hidden) or not all(
      1 <= int(c) <= h for c, h in zip(channels, hidden)):
    raise ValueError(f"channels={tuple(channels)} must be {len(hidden)} "
                     f"counts from 1 to the full network's {hidden}")
  kept = [np.arange(int(c)) if order is None else
          np.asarray(order[i])[:int(c)] for i, c in enumerate(channels)]
  return taken(tree, _channel_axes(config), kept)


def strongest_channels(params, config) -> list[np.ndarray]:
  """Per hidden layer, its channels by the L1 norm of the weights that make
  each (the layer's kernel column), largest first: the channels GAN
  Compression keeps when it starts a student from its teacher."""
  hidden = _hidden(config)
  norms = [np.zeros(h) for h in hidden]

  def add(path, leaf):
    name = "/".join(_tree.path_str(path).split("/")[-2:])
    if not name.endswith("/kernel"):
      return
    for axis, layer, group in _channel_axes(config).get(name, ()):
      # The axis that makes the layer's channels: the kernel's last.
      if axis != leaf.ndim - 1:
        continue
      values = np.abs(np.asarray(leaf, np.float64)).reshape(
          leaf.shape[:-1] + (group, hidden[layer]))
      norms[layer] += values.reshape(-1, hidden[layer]).sum(axis=0)
  jax.tree_util.tree_map_with_path(add, params)
  # Stable: equal norms keep their order.
  return [np.argsort(-n, kind="stable") for n in norms]


def mask_channels(tree, config, channels):
  """A generator's variables (or params) with all but the leading
  `channels` of each hidden layer zeroed (`channels` may be traced): the
  full-width network then computes exactly what `slice_channels`' slim one
  does, the other channels being zeros (their batch norm's scale and bias
  are zero too)."""
  return scaled(tree, _channel_axes(config),
                [jnp.arange(h) < channels[i]
                 for i, h in enumerate(_hidden(config))])


def _macs(config, channels) -> int:
  return _costs(config, channels)[0]


def _costs(config, channels) -> tuple[int, int]:
  """(MACs per sample, bytes of float32 variables) of the generator of
  `config` at `channels`; counted once per shape (a search plans over up to
  hundreds of shapes, each a trace)."""
  return _costs_of_shape(
      config.architecture, config.dataset,
      None if config.architecture == "mlp_gan" else config.width,
      config.get("latent_dim"), tuple(int(c) for c in channels))


@functools.lru_cache(maxsize=4096)
def _costs_of_shape(architecture, dataset, width, latent_dim, channels):
  # A U-Net's levels are its channels' number.
  config = ml_collections.ConfigDict(dict(
      architecture=architecture, dataset=dataset, width=width,
      levels=len(channels)))
  module = _module(config, channels)
  # A translator's input is its condition, whose shape may differ from
  # the output's.
  z = jax.ShapeDtypeStruct(
      (1, *data.condition_shape(dataset)) if _conditional(config) else
      (1, latent_dim), jnp.float32)
  shapes = jax.eval_shape(module.init, jax.random.key(0), z)
  return (compress.macs(lambda v, x: module.apply(v, x), shapes, z),
          4 * sum(int(np.prod(s.shape)) for s in jax.tree.leaves(shapes)))


def _features(module, variables, z, train_mode):
  """(samples, hidden features, batch-norm updates) of a generator."""
  mutable = ["intermediates"] + (["batch_stats"] if train_mode else [])
  out, state = module.apply(variables, z, train=train_mode, mutable=mutable)
  state = dict(state)
  feats = state.pop("intermediates")["features"]
  return out, feats, state


class _Distiller:
  """One distillation objective and step, jitted once, for a student of the
  teacher's architecture at given channels; with a `supernet`, the student
  is the full-width network masked to channels drawn at random every step
  from `choices` (weight sharing)."""

  def __init__(self, name, config, student_channels, batch_size, rate, seed,
               real, choices=None):
    self.config = config
    self.teacher = _module(config, _hidden(config))
    self.student = _module(config, student_channels)
    self.dense = jax.device_put(pretrained.params(name))
    conditional = _conditional(config)
    discriminator = models.build(config)[1]
    if conditional:  # pix2pix's losses on (condition, image) pairs
      d_pairs, g_gan = train.pix2pix_losses(discriminator)
      recon_weight = config.get("l1_weight", 100.0)
    else:
      d_loss, g_loss = train.critic_losses(config, discriminator)
      recon_weight = RECONSTRUCTION_WEIGHT
    self.opt = _common.adam(config, rate)
    self.d_opt = _common.adam(config, config.get("d_learning_rate", rate))
    self.batch_size, self.seed, self.real = batch_size, seed, real
    self.choices = choices  # (layers, choices) channel counts, or None

    teacher, student = self.teacher, self.student

    def channels_of(step, choices):
      if choices is None:
        return None
      picks = jax.random.randint(
          jax.random.fold_in(jax.random.key(seed + 7), step),
          (choices.shape[0],), 0, choices.shape[1])
      return choices[jnp.arange(choices.shape[0]), picks]

    def loss(trainable, fixed, d, inputs, targets, key, channels, dense):
      # inputs: latents, or a conditional generator's conditions, whose
      # targets (the pairs' ground truth) are reconstructed; else the
      # teacher's samples are.
      params = trainable["params"]
      if channels is not None:
        params = mask_channels(params, config, channels)
      t_out, t_feats, _ = _features(teacher, dense, inputs, False)
      t_out = jax.lax.stop_gradient(t_out)
      out, feats, updates = _features(student, {**fixed, "params": params},
                                      inputs, True)
      recon = jnp.mean(jnp.abs(out - (t_out if targets is None else
                                      targets)))
      feature = sum(
          jnp.mean((jnp.einsum("...c,cd->...d", f, a,
                               precision=jax.lax.Precision.HIGHEST) -
                    jax.lax.stop_gradient(t)) ** 2)
          for f, a, t in zip(feats, trainable["adaptors"], t_feats))
      gan = (g_gan(d, inputs, out) if conditional else g_loss(d, out, key))
      total = (recon_weight * recon + FEATURE_WEIGHT * feature +
               GAN_WEIGHT * gan)
      return total, (updates, jax.lax.stop_gradient(out),
                     jnp.stack([recon, feature, gan]))

    def step_fn(state, reals, dense, choices):
      # The teacher and the choices are arguments, not captured constants.
      key = jax.random.fold_in(jax.random.key(seed + 3), state["step"])
      if conditional:  # reals: (conditions, targets)
        inputs, targets = reals
      else:
        inputs = jax.random.normal(jax.random.fold_in(key, 0),
                                   (batch_size, config.latent_dim))
        targets = None
      channels = channels_of(state["step"], choices)
      trainable = {"params": state["params"], "adaptors": state["adaptors"]}
      fixed = {k: v for k, v in state["fixed"].items()}
      (_, (updates, fake, parts)), grads = jax.value_and_grad(
          loss, has_aux=True)(trainable, fixed, state["d"], inputs, targets,
                              jax.random.fold_in(key, 1), channels, dense)
      steps, opt_state = self.opt.update(grads, state["opt"], trainable)
      trainable = optax.apply_updates(trainable, steps)
      if conditional:
        d_value, d_grads = jax.value_and_grad(d_pairs)(
            state["d"], inputs, targets, fake)
      else:
        d_value, d_grads = jax.value_and_grad(d_loss)(
            state["d"], reals, fake, jax.random.fold_in(key, 2))
      d_steps, d_opt_state = self.d_opt.update(d_grads, state["d_opt"],
                                               state["d"])
      new = {**state, **trainable, "fixed": {**fixed, **updates},
             "opt": opt_state, "d": optax.apply_updates(state["d"], d_steps),
             "d_opt": d_opt_state, "step": state["step"] + 1}
      return new, parts, d_value

    self.step_fn = jax.jit(step_fn)

  def init(self, params, fixed, adaptors, d):
    trainable = {"params": params, "adaptors": adaptors}
    return {"params": params, "adaptors": adaptors, "fixed": fixed,
            "opt": self.opt.init(trainable), "d": d,
            "d_opt": self.d_opt.init(d), "step": jnp.zeros((), jnp.int32)}

  def train(self, state, folder, steps, stop_after):
    """(state, seconds, steps taken by this call)."""

    def batch(step):
      # real: an array of samples, or (conditions, targets) of pairs.
      arrays = self.real if isinstance(self.real, tuple) else (self.real,)
      idx = train._batch_indices(  # pylint: disable=protected-access
          arrays[0].shape[0], self.batch_size, self.seed, step)
      picked = tuple(a[idx] for a in arrays)
      return (picked if isinstance(self.real, tuple) else picked[0],
              self.dense, self.choices)

    return _common.run_stage(
        folder, steps, state, self.step_fn, batch,
        lambda v: (f"reconstruction {float(v[0][0]):.4f}  features "
                   f"{float(v[0][1]):.4f}  gan {float(v[0][2]):.4f}  "
                   f"d loss {float(v[1]):.4f}"), stop_after)


def _adaptors(config, student_channels, teacher, order=None):
  """1x1 adaptors (a channels x teacher-channels matrix per feature map the
  generator sows, `_feature_levels`), started as each student channel's
  copy onto the teacher channel it was cut from (its leading channels, or
  the first of `order`)."""
  out = []
  for i in _feature_levels(config):
    s, t = student_channels[i], teacher[i]
    source = np.arange(s) if order is None else np.asarray(order[i])[:s]
    start = np.zeros((s, t), np.float32)
    start[np.arange(s), source] = 1.0
    out.append(jnp.asarray(start))
  return out


def _training_data(config, data_dir):
  """What distillation draws its batches from: the training split's
  samples, or a conditional generator's (conditions, targets) pairs."""
  if _conditional(config):
    pairs = data.load(config.dataset, "train", data_dir=data_dir)
    return pairs["condition"], pairs["image"]
  return data.images(config.dataset, "train", data_dir=data_dir)


RECALIBRATION_BATCHES = 50  # training-mode passes of 64 inputs each


def _recalibration_inputs(real, seed):
  """A conditional generator's inputs for re-estimating batch-norm
  averages: (RECALIBRATION_BATCHES, 64, H, W, C) training conditions drawn
  by `seed` (passed to the jitted passes, not captured)."""
  conditions = real[0]
  return np.stack([conditions[train._batch_indices(  # pylint: disable=protected-access
      conditions.shape[0], 64, seed + 3, i)]
                   for i in range(RECALIBRATION_BATCHES)])


@models.built_once
def _conditional_stats(module):
  """recalibrated(variables, batches) -> variables with batch-norm averages
  re-estimated by training-mode passes over each batch of conditions
  (momentum 0.9, as `train._with_batch_stats` does for latents); jitted
  once per module."""

  @jax.jit
  def recalibrated(variables, batches):
    def one_pass(variables, conditions):
      _, stats = module.apply(variables, conditions, train=True,
                              mutable=["batch_stats"])
      return {**variables, **stats}, None
    return jax.lax.scan(one_pass, variables, batches)[0]
  return recalibrated


def _finish(config, channels, weights, seed, real) -> dict:
  """The slim generator's variables, its batch-norm averages re-estimated
  for its weights; its sampler (translator, for a conditional one), MACs
  and parameters."""
  module = _module(config, channels)
  if _conditional(config):
    variables = jax.tree.map(np.asarray, _conditional_stats(module)(
        weights, _recalibration_inputs(real, seed)))
    sample_fn = models.translator(module)
  else:
    variables = jax.tree.map(np.asarray, train._with_batch_stats(  # pylint: disable=protected-access
        module, weights["params"], weights,
        ml_collections.ConfigDict({"batch_size": 64,
                                   "latent_dim": config.latent_dim,
                                   "seed": seed})))
    sample_fn = models.sampler(module, config.latent_dim)
  return dict(sample_fn=sample_fn,
              variables=variables, channels=tuple(int(c) for c in channels),
              macs=_macs(config, channels),
              params=compress.num_params(variables["params"]))


def _check(name, steps, seed, batch_size, learning_rate):
  _common.check_run(name, steps, seed, batch_size, learning_rate,
                    conditional=True)
  config = _config(name)
  return config, (config.learning_rate if learning_rate is None
                  else float(learning_rate))


def _distill_plan(name, width, steps, seed, batch_size, learning_rate):
  """`distill`'s arguments checked: (config, rate, teacher's channels,
  student's channels)."""
  config, rate = _check(name, steps, seed, batch_size, learning_rate)
  return config, rate, _hidden(config), _student_channels(config, width)


def _grid_macs(config, teacher, grid) -> dict[tuple[int, ...], int]:
  """Every channel combination's MACs, from the exact quadratic in the
  channel counts (`_common.quadratic_costs`: about n**2 / 2 traces of n
  layers, checked against two more) instead of one trace per combination
  (3**5 for a U-Net's five levels at three shares)."""
  n = len(teacher)
  if len(grid) > 3 + 2 * n + n * (n - 1) // 2:  # more than the fit's traces
    try:
      costs = _common.quadratic_costs(lambda c: _macs(config, c), teacher)
      return {c: int(round(_common.evaluate(
          costs, np.asarray(c, np.float64)))) for c in grid}
    except RuntimeError:  # not a quadratic: every shape traced
      pass
  return {c: _macs(config, c) for c in grid}


def _search_plan(name, budget_macs, supernet_steps, steps, seed, choices,
                 search_samples, batch_size, learning_rate):
  """`search`'s arguments checked: (config, rate, teacher's channels,
  shares, each layer's channel options, every combination's MACs, those
  within the budget)."""
  config, rate = _check(name, steps, seed, batch_size, learning_rate)
  _common.check_int("supernet_steps", supernet_steps, 0)
  _common.check_int("search_samples", search_samples, 100)
  _common.check_int("budget_macs", budget_macs, 1)
  teacher = _hidden(config)
  try:
    shares = sorted({float(c) for c in choices})
  except (TypeError, ValueError):
    shares = []
  if not shares or not all(0 < c <= 1 for c in shares):
    raise ValueError(f"choices={choices!r} must be shares in (0, 1]")
  options = [sorted({max(1, int(round(c * t))) for c in shares})
             for t in teacher]
  grid = [tuple(c) for c in itertools.product(*options)]
  costs = _grid_macs(config, teacher, grid)
  allowed = [c for c in grid if costs[c] <= budget_macs]
  if not allowed:
    raise ValueError(
        f"budget_macs={budget_macs:,} is below every sub-network's MACs "
        f"(the smallest takes {min(costs.values()):,})")
  return config, rate, teacher, shares, options, costs, allowed


def distill(name: str, *, width: int, steps: int, seed: int = 0,
            workdir=None, batch_size: int = 64,
            learning_rate: float | None = None,
            data_dir: str | None = None,
            stop_after: int | None = None) -> Distilled:
  """Distils a committed generator into one with fewer channels, as GAN
  Compression does.

  The student has the teacher's architecture at `width` (the DCGAN's last
  hidden layer's channels, the others scaled as the teacher's: (4w, 2w, w)
  at 28x28; every hidden layer's units for the MLP GAN), starts from the
  teacher's channels of largest weight L1 norm (`strongest_channels`, as
  GAN Compression starts its students), and minimises on each step's
  latents

    10 |G_s(z) - G_t(z)|_1 + sum_l |A_l f_s,l(z) - f_t,l(z)|^2 + l_G(D, G_s(z))

  (means over entries): reconstruction of the teacher's samples, each
  hidden layer's features through a learned 1x1 adaptor A_l, and the GAN's
  own generator loss under the committed discriminator, which goes on
  training against the student (one step of its loss per step, as in
  training). Adam at the GAN's rate and betas; batch norm on batch
  statistics, its averages re-estimated at the end.

  A conditional generator (pix2pix) is distilled on its training pairs
  (x, y): the student is the U-Net at channels width x (1, 2, 4, 8, 8) per
  level (a level's encoder and decoder channels cut together), the
  reconstruction is 100 |G_s(x) - y|_1 (pix2pix's L1 weight, towards the
  ground truth as GAN Compression does for paired data), the features are
  every level's encoder and decoder outputs, the GAN term is pix2pix's
  conditional loss under its PatchGAN; the result's sample_fn is then a
  translate_fn (`lsh_gan.pretrained.generator`). docs/image_to_image.md.

  Args:
    name: a committed generator (`lsh_gan.pretrained.generators()`).
    width: the student's width, 1 to the teacher's (`teacher_channels`'s
      last; the U-Net's first level).
    steps: distillation steps (0: the teacher's strongest channels as they
      are).
    seed, workdir, batch_size, learning_rate, data_dir, stop_after: as
      `quantization_aware`.

  Returns:
    A `Distilled` (``sample_fn, variables = distill(...)`` unpacks it).

  Raises:
    ValueError: an unknown generator, a bad width / steps / seed /
      batch_size / learning_rate, or a workdir of another run.
    lsh_gan.pretrained.CheckpointError: a generator committed without its
      discriminator.
  """
  config, rate, teacher, channels = _distill_plan(
      name, width, steps, seed, batch_size, learning_rate)
  identity = _common.identity("distill", name, True, width=width,
                              steps=steps, seed=seed, batch_size=batch_size,
                              learning_rate=rate)
  _, d_params = pretrained.discriminator(name)
  real = _training_data(config, data_dir)
  with _common.run_folder(workdir, identity) as folder:
    distiller = _Distiller(name, config, channels, batch_size, rate, seed,
                           real)
    order = strongest_channels(distiller.dense["params"], config)
    start = slice_channels(distiller.dense, config, channels, order)
    state = distiller.init(start["params"],
                           {k: v for k, v in start.items() if k != "params"},
                           _adaptors(config, channels, teacher, order),
                           d_params)
    state, seconds, _ = distiller.train(state, folder, steps, stop_after)
  weights = {**state["fixed"], "params": state["params"]}
  return Distilled(**_finish(config, channels, weights, seed, real),
                   steps=int(state["step"]), seconds=float(seconds))


def search(name: str, *, budget_macs: int, supernet_steps: int, steps: int,
           seed: int = 0, choices: Sequence[float] = CHOICES,
           search_samples: int = 1000, workdir=None, batch_size: int = 64,
           learning_rate: float | None = None,
           data_dir: str | None = None,
           stop_after: int | None = None) -> Distilled:
  """GAN Compression's width search: a once-for-all supernet, the best
  sub-network under a MACs budget, then fine-tuned by distillation.

  1. The supernet is the teacher's architecture started from its weights;
     each of `supernet_steps` steps draws every hidden layer's channels at
     random from `choices` (shares of the teacher's) and takes a `distill`
     step of that sub-network (its leading channels: weights are shared).
  2. Every combination of choices with at most `budget_macs`
     multiply-accumulates per sample is cut from the supernet, its batch-norm
     averages re-estimated, and scored by the Frechet distance of
     `search_samples` samples to the training data in the dataset's
     embedding (`lsh_gan.train.generator_quality`'s space; a conditional
     generator's outputs on `search_samples` training conditions to their
     targets, pairs the supernet also trained on); the lowest wins (fewer
     MACs on a tie).
  3. The winner takes `steps` more distillation steps on its own.

  Stages are resumable in `workdir` (supernet/, search.json, finetune/).

  Args:
    name: a committed generator.
    budget_macs: the most multiply-accumulates per sample allowed.
    supernet_steps, steps: steps of stages 1 and 3.
    choices: the width shares each layer may take, in (0, 1].
    search_samples: samples per scored sub-network.
    seed, workdir, batch_size, learning_rate, data_dir, stop_after: as
      `distill` (stop_after counts this call's steps of both training
      stages together).

  Returns:
    A `Distilled`, its `candidates` every sub-network scored; None when
    `stop_after` stopped it before the end (a rerun goes on from there).

  Raises:
    ValueError: an unknown generator, bad choices or numbers, a budget no
      sub-network meets (the smallest's MACs are given), or a workdir of
      another run.
  """
  config, rate, teacher, shares, options, costs, allowed = _search_plan(
      name, budget_macs, supernet_steps, steps, seed, choices,
      search_samples, batch_size, learning_rate)
  if len(allowed) == 1:
    logging.warning(
        "search(%s): only %s is within budget_macs=%s with choices=%s, so "
        "the search has nothing to choose; a larger budget or smaller "
        "shares give it candidates", name, allowed[0], f"{budget_macs:,}",
        tuple(shares))
  identity = _common.identity(
      "search", name, True, budget_macs=budget_macs,
      supernet_steps=supernet_steps, steps=steps, seed=seed, choices=shares,
      search_samples=search_samples, batch_size=batch_size,
      learning_rate=rate)
  _, d_params = pretrained.discriminator(name)
  real = _training_data(config, data_dir)
  # One row of channel counts per layer; a layer whose shares round to
  # fewer distinct counts repeats its widest (drawn more often).
  width = max(len(o) for o in options)
  table = jnp.asarray([o + [o[-1]] * (width - len(o)) for o in options])
  with _common.run_folder(workdir, identity) as folder:
    supernet = _Distiller(name, config, teacher, batch_size, rate, seed,
                          real, choices=table)
    dense = supernet.dense
    state = supernet.init(dense["params"],
                          {k: v for k, v in dense.items() if k != "params"},
                          _adaptors(config, teacher, teacher), d_params)
    state, seconds, taken = supernet.train(
        state, os.path.join(folder, "supernet"), supernet_steps, stop_after)
    if int(state["step"]) < supernet_steps:  # stopped (stop_after)
      return None
    def score():
      begin = time.perf_counter()
      candidates = _score(config, state, allowed, costs, search_samples,
                          seed, data_dir, real)
      return {"candidates": candidates,
              "seconds": time.perf_counter() - begin}
    scored = _common.saved_once(os.path.join(folder, "search.json"),
                                "the width search's scores", score)
    seconds += scored["seconds"]
    best = tuple(scored["candidates"][0]["channels"])
    cut = slice_channels({**state["fixed"], "params": state["params"]},
                         config, best)
    tune = _Distiller(name, config, best, batch_size, rate, seed, real)
    left = None if stop_after is None else max(stop_after - taken, 0)
    adaptors = [a[:best[level]] for a, level in zip(state["adaptors"],
                                                     _feature_levels(config))]
    tuned = tune.init(cut["params"],
                      {k: v for k, v in cut.items() if k != "params"},
                      adaptors, state["d"])
    tuned, tune_seconds, _ = tune.train(
        tuned, os.path.join(folder, "finetune"), steps, left)
    if int(tuned["step"]) < steps:  # stopped (stop_after)
      return None
  weights = {**tuned["fixed"], "params": tuned["params"]}
  return Distilled(**_finish(config, best, weights, seed, real),
                   steps=int(tuned["step"]),
                   seconds=float(seconds + tune_seconds),
                   candidates=tuple(scored["candidates"]))


def _score(config, state, allowed, costs, num, seed, data_dir, real) -> list:
  """Each allowed sub-network's Frechet distance to the training data in
  the dataset's embedding, best first (a conditional generator's: of its
  outputs on `num` training conditions to their targets)."""
  if _conditional(config):
    return _score_conditional(config, state, allowed, costs, num, seed, real)
  reference, embed, _ = train.quality_reference(config.dataset,
                                                data_dir=data_dir, seed=seed)
  full = _module(config, _hidden(config))
  sample = models.sampler(full, config.latent_dim)
  weights = {**state["fixed"], "params": state["params"]}

  @jax.jit
  def recalibrated(weights, channels):
    # Each candidate's batch-norm averages, as `train._with_batch_stats`
    # re-estimates them (50 training-mode passes of 64 latents); one
    # compiled function for every candidate.
    variables = mask_channels(weights, config, channels)
    if "batch_stats" not in variables:
      return variables

    def one_pass(i, variables):
      z = jax.random.normal(jax.random.key(seed + 3 + i),
                            (64, config.latent_dim))
      _, stats = full.apply(variables, z, train=True,
                            mutable=["batch_stats"])
      return {**variables, **stats}
    return jax.lax.fori_loop(0, 50, one_pass, variables)

  return _ranked([
      (channels, costs[channels], reference.frechet_distance(embed(
          np.asarray(sample(recalibrated(weights, jnp.asarray(channels)),
                            jax.random.key(seed + 11), num))))["fid"])
      for channels in allowed])


def _ranked(scores) -> list:
  """[(channels, macs, fid)] as candidate dicts, best first: lowest FID,
  then fewest MACs; a non-finite score (a broken sub-network) last."""
  out = []
  for channels, macs, fid in scores:
    out.append({"channels": list(channels), "macs": macs, "fid": float(fid)})
    logging.info("width search: channels %s  MACs %s  FID %.4g", channels,
                 f"{macs:,}", fid)
  return sorted(out, key=lambda c: (not np.isfinite(c["fid"]), c["fid"],
                                    c["macs"]))


def _score_conditional(config, state, allowed, costs, num, seed, real):
  """`_score` of a conditional generator: each candidate translates `num`
  training conditions (drawn by `seed`; the test split is kept for the
  final evaluation, as GAN Compression keeps its own), scored by the
  Frechet distance of the outputs to those conditions' targets in the
  targets' embedding."""
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  conditions, targets = real
  chosen = np.random.default_rng(seed + 11).choice(
      conditions.shape[0], min(num, conditions.shape[0]), replace=False)
  embed, _ = train.embedding_of(config.dataset)
  reference = metrics.Reference(embed(targets[chosen]))
  full = _module(config, _hidden(config))
  translate = models.translator(full)
  weights = {**state["fixed"], "params": state["params"]}
  batches = _recalibration_inputs(real, seed)
  scored_conditions = jnp.asarray(conditions[chosen])  # moved once

  @jax.jit
  def recalibrated(weights, channels, batches):
    # Each candidate's batch-norm averages, as `_finish` re-estimates them;
    # one compiled function for every candidate.
    return _conditional_stats(full)(
        mask_channels(weights, config, channels), batches)

  return _ranked([
      (channels, costs[channels], reference.frechet_distance(embed(
          np.asarray(translate(recalibrated(weights, jnp.asarray(channels),
                                            batches),
                               scored_conditions))))["fid"])
      for channels in allowed])
