"""Density-preserving collaborative pruning of an image-to-image GAN: our
reading of Ganjdanesh, Gao, Alipanah and Huang, "Compressing
Image-to-Image Translation GANs Using Local Density Structures on Their
Learned Manifold" (AAAI 2024, arXiv:2312.14776), which has no public code.
docs/image_to_image.md gives the reading, the objective as formulas and
what the paper leaves open.

Two stages, resumable in the run's folder:

1. Agents (agents/). The committed pix2pix's generator and discriminator
   are held fixed; each has a pruning agent, a small network that gives a
   logit per channel of every hidden layer (the U-Net's levels, the
   PatchGAN's convolutions). Gates are drawn from the logits (logistic
   noise, temperature 0.5) and passed straight through as 0/1; each scales
   the kernel entries that read its channel, so the gated networks compute
   exactly what the pruned ones would (`reading_axes`). Each agent sees its
   peer's current keep fractions (the feedback the two exchange). The
   generator's agent minimises the local-density loss of the gated
   generator against the original on neighbourhoods of perturbed
   conditions, the gated pair's GAN loss and a MACs term pulling its
   MACs to `macs_ratio` of the original's; the discriminator's agent
   minimises the gated discriminator's pix2pix loss on real pairs and the
   gated generator's outputs, with a MACs term pulling its MACs ratio to
   the generator's current one (its capacity follows the generator's).
2. Fine-tuning (finetune/). The channels the agents keep are cut out of
   both networks (the generator's cut to within the MACs budget by the
   agent's logits: its lowest dropped first while over, its highest
   unkept added while they fit), and the pair trains on pix2pix's loss (L1
   to the ground truth, conditional GAN) plus the local-density loss
   against the original generator; batch norm is then re-estimated.
"""

from __future__ import annotations

import functools
import math
import numbers
import os

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lsh_gan import compress
from lsh_gan import data
from lsh_gan import models
from lsh_gan import pretrained
from lsh_gan import train
from lsh_gan.finetune import _common
from lsh_gan.finetune import _distill
from lsh_gan.models import pix2pix

# The objective's weights (docs/image_to_image.md gives the runs they come
# from): the local-density loss, and the MACs term (a squared log-ratio),
# strong enough that the agents reach the budget themselves.
DENSITY_WEIGHT = 1.0
MACS_WEIGHT = 100.0
TEMPERATURE = 0.5
AGENT_RATE = 0.02
START_LOGIT = 2.0  # each channel starts open in sigmoid(2) = 0.88 of draws


def local_density_loss(original, pruned):
  """How far a pruned generator's outputs are from preserving the local
  density structure of the original's, around each anchor.

  Args:
    original, pruned: (M + 1, B, ...) outputs of each network on B anchors'
      neighbourhoods of M + 1 inputs (index 0 the anchor's own).

  With D(a, b) the mean squared difference over entries and, per anchor, the
  bandwidth h the mean D between the original's M + 1 outputs (a constant),
  the original's local kernel density estimate is

    f(y) = 1 / (M + 1) sum_m exp(-D(y, o_m) / h),

  and the loss is the sum of

    mean_m [log f(o_m) - log f(p_m)]^2        (each pruned output keeps the
                                                original's density at its
                                                place in the neighbourhood)
    mean_m KL(P_m || Q_m)                      (each output's neighbours keep
                                                their relative densities)

  averaged over anchors, where P_m(m') is proportional to exp(-D(o_m,
  o_m') / h) over m' != m and Q_m likewise from the pruned outputs (at the
  same h, so a collapsed or spread-out neighbourhood costs). Both are >= 0,
  and 0 when pruned == original (squared: a pruned output drawn to the
  neighbourhood's denser middle costs too).
  """
  m1, b = original.shape[:2]
  if pruned.shape != original.shape or m1 < 2:
    raise ValueError(f"original {original.shape} and pruned {pruned.shape} "
                     "must be one shape (M + 1, B, ...) with M >= 1")
  o = original.reshape(m1, b, -1)
  p = pruned.reshape(m1, b, -1)

  def sq(a, c):  # (m1, m1, b): D between every pair of a's and c's outputs
    return jnp.mean((a[:, None] - c[None]) ** 2, axis=-1)

  d_oo = jax.lax.stop_gradient(sq(o, o))
  off = ~jnp.eye(m1, dtype=bool)[..., None]
  h = jnp.maximum(jnp.sum(jnp.where(off, d_oo, 0.0), (0, 1)) /
                  (m1 * (m1 - 1)), 1e-8)
  log_f_o = jax.nn.logsumexp(-d_oo / h, axis=1)
  log_f_p = jax.nn.logsumexp(-sq(p, jax.lax.stop_gradient(o)) / h, axis=1)
  kde = jnp.mean((log_f_o - log_f_p) ** 2)
  log_p = jax.nn.log_softmax(jnp.where(off, -d_oo / h, -jnp.inf), axis=1)
  log_q = jax.nn.log_softmax(jnp.where(off, -sq(p, p) / h, -jnp.inf), axis=1)
  kl = jnp.sum(jnp.where(off, jnp.exp(log_p) * (log_p - log_q), 0.0), axis=1)
  return kde + jnp.mean(kl)


def neighbourhoods(key, conditions, neighbours: int, noise: float):
  """(neighbours + 1, B, ...) inputs: the conditions, then `neighbours`
  copies with Gaussian noise of scale `noise`, clipped to [-1, 1]."""
  eps = jax.random.normal(key, (neighbours,) + conditions.shape)
  near = jnp.clip(conditions[None] + noise * eps, -1.0, 1.0)
  return jnp.concatenate([conditions[None], near])


def patch_channel_axes(n_layers: int) -> dict[str, tuple]:
  """`_distill._channel_axes` of a PatchGAN (`models.pix2pix`) of
  `n_layers` stride-2 convolutions: convolution i (0 .. n_layers) makes
  hidden layer i's channels, batch norm follows every one but the first,
  and the last convolution makes the logits from layer n_layers'."""
  axes = {"Conv_0/kernel": ((3, 0, 1),), "Conv_0/bias": ((0, 0, 1),)}
  for i in range(1, n_layers + 1):
    axes[f"Conv_{i}/kernel"] = ((2, i - 1, 1), (3, i, 1))
    for stat in ("scale", "bias", "mean", "var"):
      axes[f"BatchNorm_{i - 1}/{stat}"] = ((0, i, 1),)
  axes[f"Conv_{n_layers + 1}/kernel"] = ((2, n_layers, 1),)
  return axes


def reading_axes(axes: dict) -> dict:
  """The entries of a `_channel_axes`-style table where a layer reads its
  input channels (a kernel's axis 2). Gating only those removes a channel
  from every layer that uses it, as cutting it does (the channel itself is
  still computed), and keeps a closed gate's gradient: gating the making
  side as well would zero the channel before it is read, and the gradient
  of g^2 f at g = 0 is 0."""
  out = {}
  for name, entries in axes.items():
    if name.endswith("/kernel"):
      reads = tuple(e for e in entries if e[0] == 2)
      if reads:
        out[name] = reads
  return out


class _Agent(nn.Module):
  """A pruning agent: its peer's keep fractions -> one logit per channel
  of each of its network's hidden layers."""
  sizes: tuple[int, ...]

  @nn.compact
  def __call__(self, feedback):
    code = self.param("code", nn.initializers.normal(1.0), (16,))
    h = nn.relu(nn.Dense(64)(jnp.concatenate([code, feedback])))
    logits = nn.Dense(sum(self.sizes),
                      kernel_init=nn.initializers.normal(0.01),
                      bias_init=nn.initializers.constant(START_LOGIT))(h)
    return jnp.split(logits, np.cumsum(self.sizes)[:-1])


def _gates(logits, key):
  """0/1 gates drawn from logits (logistic noise at TEMPERATURE), with the
  gradient of their sigmoid relaxation (straight through)."""
  out = []
  for i, l in enumerate(logits):
    u = jax.random.uniform(jax.random.fold_in(key, i), l.shape,
                           minval=1e-6, maxval=1 - 1e-6)
    soft = jax.nn.sigmoid((l + jnp.log(u) - jnp.log1p(-u)) / TEMPERATURE)
    hard = (soft > 0.5).astype(soft.dtype)
    out.append(hard + soft - jax.lax.stop_gradient(soft))
  return out


def _counts(gates):
  return jnp.stack([jnp.sum(g) for g in gates])


def _fractions(gates, sizes):
  return jax.lax.stop_gradient(_counts(gates) / jnp.asarray(sizes, jnp.float32))


@functools.lru_cache(maxsize=8)
def _pruner(config, d_items, batch_size, rate, seed, neighbours, noise,
            density_weight, budget):
  """The `_Pruner` of a run's settings (a frozen generator config, the
  discriminator's settings as items), built once: a resumed or re-read run
  reuses its compiled steps."""
  return _Pruner(config, dict(d_items), batch_size, rate, seed, neighbours,
                 noise, density_weight, budget)


class _Pruner:
  """Both stages' jitted steps for one generator and run's settings (the
  data are arguments; build it with `_pruner`)."""

  def __init__(self, config, d_config, batch_size, rate, seed, neighbours,
               noise, density_weight, budget):
    self.config, self.d_config = config, d_config
    self.g_sizes = _distill._hidden(config)  # pylint: disable=protected-access
    self.d_sizes = d_config["channels"]
    self.g_axes = _distill._channel_axes(config)  # pylint: disable=protected-access
    self.d_axes = patch_channel_axes(len(self.d_sizes) - 1)
    self.g_gating = reading_axes(self.g_axes)
    self.d_gating = reading_axes(self.d_axes)
    self.g_costs = _common.quadratic_costs(
        lambda c: _distill._macs(config, c), self.g_sizes)  # pylint: disable=protected-access
    settings = tuple(sorted((k, v) for k, v in d_config.items()
                            if k != "channels"))
    shapes = (tuple(data.condition_shape(config.dataset)),
              tuple(data.sample_shape(config.dataset)))
    self.d_costs = _common.quadratic_costs(
        lambda c: _discriminator_macs(settings, *shapes, tuple(c)),
        self.d_sizes)
    self.g_full = _common.evaluate(self.g_costs,
                                   np.asarray(self.g_sizes, float))
    self.d_full = _common.evaluate(self.d_costs,
                                   np.asarray(self.d_sizes, float))
    self.budget = budget
    self._tune = {}
    self.batch_size, self.seed = batch_size, seed
    self.neighbours, self.noise = neighbours, noise
    self.density_weight = density_weight
    self.l1_weight = config.get("l1_weight", 100.0)
    self.rate = rate
    self.g_agent = _Agent(tuple(self.g_sizes))
    self.d_agent = _Agent(tuple(self.d_sizes))
    self.agent_opt = optax.adam(AGENT_RATE)
    self.search_step = jax.jit(self._search_step)

  # Stage 1 ---------------------------------------------------------------

  def init_agents(self):
    key = jax.random.key(self.seed + 17)
    g = self.g_agent.init(jax.random.fold_in(key, 0),
                          jnp.ones(len(self.d_sizes)))
    d = self.d_agent.init(jax.random.fold_in(key, 1),
                          jnp.ones(len(self.g_sizes)))
    agents = {"g": g, "d": d}
    return {"agents": agents, "opt": self.agent_opt.init(agents),
            "g_fractions": jnp.ones(len(self.g_sizes)),
            "d_fractions": jnp.ones(len(self.d_sizes)),
            "step": jnp.zeros((), jnp.int32)}

  def _search_step(self, state, conditions, targets, dense, d_params):
    key = jax.random.fold_in(jax.random.key(self.seed + 19), state["step"])
    generator = _distill._module(self.config, self.g_sizes)  # pylint: disable=protected-access
    d_losses = train.pix2pix_losses(pix2pix.PatchDiscriminator(
        **self.d_config))
    inputs = neighbourhoods(jax.random.fold_in(key, 0), conditions,
                            self.neighbours, self.noise)
    flat = inputs.reshape((-1,) + conditions.shape[1:])
    original = jax.lax.stop_gradient(
        generator.apply(dense, flat).reshape(inputs.shape[:2] +
                                             targets.shape[1:]))

    def objective(agents):
      g_gates = _gates(self.g_agent.apply(agents["g"], state["d_fractions"]),
                       jax.random.fold_in(key, 1))
      d_gates = _gates(self.d_agent.apply(agents["d"], state["g_fractions"]),
                       jax.random.fold_in(key, 2))
      gated = _distill.scaled(dense, self.g_gating, g_gates)
      out = generator.apply(gated, flat).reshape(original.shape)
      density = local_density_loss(original, out)
      d_fixed = _distill.scaled(d_params, self.d_gating,
                                [jax.lax.stop_gradient(g) for g in d_gates])
      gan = d_losses[1](d_fixed, conditions, out[0])
      g_ratio = _common.evaluate(self.g_costs, _counts(g_gates)) / self.g_full
      g_macs = jnp.log(g_ratio / self.budget) ** 2
      d_gated = _distill.scaled(d_params, self.d_gating, d_gates)
      d_value = d_losses[0](d_gated, conditions, targets,
                            jax.lax.stop_gradient(out[0]))
      d_ratio = _common.evaluate(self.d_costs, _counts(d_gates)) / self.d_full
      d_macs = jnp.log(d_ratio / jax.lax.stop_gradient(g_ratio)) ** 2
      total = (self.density_weight * density + gan + MACS_WEIGHT * g_macs +
               d_value + MACS_WEIGHT * d_macs)
      return total, (jnp.stack([density, gan, d_value, g_ratio, d_ratio]),
                     _fractions(g_gates, self.g_sizes),
                     _fractions(d_gates, self.d_sizes))

    (_, (parts, g_fr, d_fr)), grads = jax.value_and_grad(
        objective, has_aux=True)(state["agents"])
    updates, opt = self.agent_opt.update(grads, state["opt"],
                                         state["agents"])
    return ({"agents": optax.apply_updates(state["agents"], updates),
             "opt": opt, "g_fractions": g_fr, "d_fractions": d_fr,
             "step": state["step"] + 1}, parts)

  def run_agents(self, state, folder, steps, stop_after, dense, d_params,
                 real):
    return _common.run_stage(
        folder, steps, state, self.search_step,
        lambda step: self._batch(real, step) + (dense, d_params),
        lambda v: (f"density {float(v[0][0]):.4f}  gan {float(v[0][1]):.4f}"
                   f"  d loss {float(v[0][2]):.4f}  G MACs x"
                   f"{float(v[0][3]):.3f}  D MACs x{float(v[0][4]):.3f}"),
        stop_after)

  def _batch(self, real, step):
    conditions, targets = real
    idx = train._batch_indices(  # pylint: disable=protected-access
        conditions.shape[0], self.batch_size, self.seed, step)
    return conditions[idx], targets[idx]

  def architecture(self, state) -> dict:
    """The channels the agents keep (no noise: a positive logit keeps a
    channel; one at least per layer), the generator's cut to the budget."""
    agents = state["agents"]
    g_logits = [np.asarray(l, np.float64) for l in self.g_agent.apply(
        agents["g"], state["d_fractions"])]
    d_logits = [np.asarray(l, np.float64) for l in self.d_agent.apply(
        agents["d"], state["g_fractions"])]
    # The fitted MACs (exact, checked against the counter at build) price
    # each of the hundreds of shapes tried without a trace each.
    g_keep = fit_to_budget(
        g_logits, lambda c: _common.evaluate(self.g_costs, np.asarray(c, float)),
        self.budget * self.g_full)
    d_keep = [_at_least_one(l > 0, l) for l in d_logits]
    return {"generator": [np.flatnonzero(k).tolist() for k in g_keep],
            "discriminator": [np.flatnonzero(k).tolist() for k in d_keep]}

  # Stage 2 ---------------------------------------------------------------

  def tune_step_fn(self, g_channels, d_channels):
    """(jitted step, init) of the fine-tuning at these channels, built once
    per pruner and channels."""
    key = (tuple(g_channels), tuple(d_channels))
    if key not in self._tune:
      self._tune[key] = self._build_tune(*key)
    return self._tune[key]

  def _build_tune(self, g_channels, d_channels):
    slim = _distill._module(self.config, g_channels)  # pylint: disable=protected-access
    full = _distill._module(self.config, self.g_sizes)  # pylint: disable=protected-access
    d_pairs, g_gan = train.pix2pix_losses(pix2pix.PatchDiscriminator(
        **{**self.d_config, "channels": tuple(d_channels)}))
    opt = _common.adam(self.config, self.rate)
    d_opt = _common.adam(self.config, self.config.get("d_learning_rate",
                                                      self.rate))

    def step_fn(state, conditions, targets, dense):
      key = jax.random.fold_in(jax.random.key(self.seed + 23), state["step"])
      inputs = neighbourhoods(key, conditions, self.neighbours, self.noise)
      flat = inputs.reshape((-1,) + conditions.shape[1:])
      original = jax.lax.stop_gradient(full.apply(dense, flat).reshape(
          inputs.shape[:2] + targets.shape[1:]))

      def loss(params):
        # Anchors and neighbours in one training-mode pass, on one batch's
        # statistics (the averages are re-estimated on clean conditions at
        # the end); the anchors' outputs are its first rows.
        out, updates = slim.apply({**state["fixed"], "params": params}, flat,
                                  train=True, mutable=["batch_stats"])
        out = out.reshape(original.shape)
        fake = out[0]
        density = local_density_loss(original, out)
        l1 = jnp.mean(jnp.abs(fake - targets))
        gan = g_gan(state["d"], conditions, fake)
        total = self.l1_weight * l1 + gan + self.density_weight * density
        return total, (updates, jax.lax.stop_gradient(fake),
                       jnp.stack([l1, gan, density]))

      (_, (updates, fake, parts)), grads = jax.value_and_grad(
          loss, has_aux=True)(state["params"])
      steps, opt_state = opt.update(grads, state["opt"], state["params"])
      d_value, d_grads = jax.value_and_grad(d_pairs)(
          state["d"], conditions, targets, fake)
      d_steps, d_opt_state = d_opt.update(d_grads, state["d_opt"],
                                          state["d"])
      return ({**state, "params": optax.apply_updates(state["params"], steps),
               "fixed": {**state["fixed"], **updates}, "opt": opt_state,
               "d": optax.apply_updates(state["d"], d_steps),
               "d_opt": d_opt_state, "step": state["step"] + 1},
              parts, d_value)

    def init(params, fixed, d):
      return {"params": params, "fixed": fixed, "opt": opt.init(params),
              "d": d, "d_opt": d_opt.init(d),
              "step": jnp.zeros((), jnp.int32)}
    return jax.jit(step_fn), init

  def run_tuning(self, step_fn, state, folder, steps, stop_after, dense,
                 real):
    return _common.run_stage(
        folder, steps, state, step_fn,
        lambda step: self._batch(real, step) + (dense,),
        lambda v: (f"l1 {float(v[0][0]):.4f}  gan {float(v[0][1]):.4f}  "
                   f"density {float(v[0][2]):.4f}  d loss {float(v[1]):.4f}"),
        stop_after)


def _at_least_one(keep, logits):
  keep = np.array(keep, bool)
  if not keep.any():
    keep[int(np.argmax(logits))] = True
  return keep


def fit_to_budget(logits, cost, budget) -> list[np.ndarray]:
  """Per layer, the channels kept (bool): those of positive logit (one at
  least per layer); then, while cost(counts) > budget, the lowest-logit
  kept channel of a layer with more than one is dropped, and while adding
  the highest-logit unkept channel keeps cost within budget, it is added.
  ValueError when one channel per layer exceeds the budget."""
  keep = [_at_least_one(l > 0, l) for l in logits]
  counts = lambda: tuple(int(k.sum()) for k in keep)
  if cost(tuple(1 for _ in keep)) > budget:
    raise ValueError(f"a budget of {budget:,.0f} MACs is below the smallest "
                     f"network's {cost(tuple(1 for _ in keep)):,}")
  while cost(counts()) > budget:
    layer, index = min(
        ((i, j) for i, k in enumerate(keep) if k.sum() > 1
         for j in np.flatnonzero(k)), key=lambda ij: logits[ij[0]][ij[1]])
    keep[layer][index] = False
  candidates = sorted(((i, j) for i, k in enumerate(keep)
                       for j in np.flatnonzero(~k)),
                      key=lambda ij: -logits[ij[0]][ij[1]])
  for layer, index in candidates:
    keep[layer][index] = True
    if cost(counts()) > budget:
      keep[layer][index] = False
  return keep


@functools.lru_cache(maxsize=4096)
def _discriminator_macs(d_config: tuple, condition_shape: tuple,
                        image_shape: tuple, channels: tuple) -> int:
  """MACs per pair of a PatchGAN (`d_config`: its (key, value) settings) at
  `channels`, on conditions and images of these shapes."""
  module = pix2pix.PatchDiscriminator(**dict(d_config), channels=channels)
  x = jax.ShapeDtypeStruct((1, *condition_shape), jnp.float32)
  y = jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)
  shapes = jax.eval_shape(module.init, jax.random.key(0), x, y)
  return compress.macs(
      lambda v, a, b: module.apply(v, a, b, mutable=["batch_stats"])[0],
      shapes, x, y)


def _discriminator_config(config) -> dict:
  """The committed PatchGAN's settings: width, n_layers, full channels."""
  d = models.build(config)[1]
  return {"width": d.width, "n_layers": d.n_layers,
          "channels": pix2pix.patch_channels(d.width, d.n_layers)}


def _plan(name, macs_ratio, search_steps, steps, seed, neighbours, noise,
          density_weight, batch_size, learning_rate):
  """`collaborative_prune`'s arguments checked: (config, rate)."""
  _common.check_run(name, steps, seed, batch_size, learning_rate,
                    conditional=True)
  if not pretrained.is_conditional(name):
    raise ValueError(f"name={name!r} generates from latents; "
                     "collaborative_prune prunes image-to-image generators "
                     "(pix2pix), as the paper does")
  _common.check_int("search_steps", search_steps, 0)
  # Two at least: with one, each output's neighbours are a single other
  # and their relative densities say nothing.
  _common.check_int("neighbours", neighbours, 2)
  for arg, value in (("macs_ratio", macs_ratio), ("noise", noise),
                     ("density_weight", density_weight)):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
        not math.isfinite(value)) or value < 0:
      raise ValueError(f"{arg}={value!r} must be a finite number >= 0")
  if not 0 < macs_ratio <= 1:
    raise ValueError(f"macs_ratio={macs_ratio!r} must be in (0, 1]: the "
                     "pruned generator's share of the original's MACs")
  if noise == 0:
    raise ValueError("noise=0 gives neighbourhoods of one point; it must "
                     "be > 0")
  config = _distill._config(name)  # pylint: disable=protected-access
  smallest = _distill._macs(config, (1,) * len(_distill._hidden(config)))  # pylint: disable=protected-access
  full = _distill._macs(config, _distill._hidden(config))  # pylint: disable=protected-access
  if macs_ratio * full < smallest:
    raise ValueError(f"macs_ratio={macs_ratio!r} is below the smallest "
                     f"network's share ({smallest / full:.4g}: one channel "
                     "per level)")
  return config, (config.learning_rate if learning_rate is None
                  else float(learning_rate))


def collaborative_prune(name: str, *, macs_ratio: float, search_steps: int,
                        steps: int, seed: int = 0, neighbours: int = 4,
                        noise: float = 0.25,
                        density_weight: float = DENSITY_WEIGHT,
                        workdir=None, batch_size: int = 16,
                        learning_rate: float | None = None,
                        data_dir: str | None = None,
                        stop_after: int | None = None):
  """Prunes a committed image-to-image GAN's generator and discriminator
  together, preserving the local density structure of the generator's
  outputs: our reading of Ganjdanesh et al. (AAAI 2024); the module's
  docstring gives the two stages, `local_density_loss` the objective,
  docs/image_to_image.md the whole reading.

  Args:
    name: a committed conditional generator (`pix2pix_edges2digits`).
    macs_ratio: the pruned generator's MACs as a share of the original's,
      at most (e.g. 0.125 for 8x fewer).
    search_steps: steps of the pruning agents (stage 1).
    steps: fine-tuning steps of the pruned pair (stage 2).
    seed: draws batches, neighbourhoods, gates and the agents' start.
    neighbours: perturbed conditions around each anchor (M).
    noise: the perturbations' scale (Gaussian, on inputs in [-1, 1]).
    density_weight: the local-density loss's weight in both stages.
    workdir, batch_size, learning_rate, data_dir, stop_after: as `distill`
      (stop_after counts both stages' steps together); learning_rate is
      the fine-tuning's (the GAN's by default), the agents' is AGENT_RATE.

  Returns:
    A `Distilled` whose `discriminator_channels` are the pruned
    discriminator's; None when `stop_after` stopped it before the end (a
    rerun goes on from there).

  Raises:
    ValueError: a generator of latents or not committed, bad numbers, a
      budget below one channel per level, or a workdir of another run.
  """
  config, rate = _plan(name, macs_ratio, search_steps, steps, seed,
                       neighbours, noise, density_weight, batch_size,
                       learning_rate)
  identity = _common.identity(
      "collaborative_prune", name, True, macs_ratio=macs_ratio,
      search_steps=search_steps, steps=steps, seed=seed,
      neighbours=neighbours, noise=noise, density_weight=density_weight,
      batch_size=batch_size, learning_rate=rate,
      # The module's constants: a run under others is another run.
      macs_weight=MACS_WEIGHT, temperature=TEMPERATURE,
      agent_rate=AGENT_RATE, start_logit=START_LOGIT)
  _, d_params = pretrained.discriminator(name)
  real = _distill._training_data(config, data_dir)  # pylint: disable=protected-access
  pruner = _pruner(train._key(config),  # pylint: disable=protected-access
                   tuple(_discriminator_config(config).items()), batch_size,
                   rate, seed, neighbours, float(noise),
                   float(density_weight), float(macs_ratio))
  dense = jax.device_put(pretrained.params(name))
  d_params = jax.device_put(d_params)
  with _common.run_folder(workdir, identity) as folder:
    state, seconds, taken = pruner.run_agents(
        pruner.init_agents(), os.path.join(folder, "agents"), search_steps,
        stop_after, dense, d_params, real)
    if int(state["step"]) < search_steps:  # stopped (stop_after)
      return None
    chosen = _common.saved_once(
        os.path.join(folder, "architecture.json"), "the pruned architecture",
        lambda: pruner.architecture(state))
    g_kept = [np.asarray(k, np.int64) for k in chosen["generator"]]
    d_kept = [np.asarray(k, np.int64) for k in chosen["discriminator"]]
    g_channels = tuple(len(k) for k in g_kept)
    d_channels = tuple(len(k) for k in d_kept)
    logging.info("collaborative_prune(%s): generator %s, discriminator %s",
                 name, g_channels, d_channels)
    cut = _distill.taken(dense, pruner.g_axes, g_kept)
    d_cut = _distill.taken(d_params, pruner.d_axes, d_kept)
    step_fn, init = pruner.tune_step_fn(g_channels, d_channels)
    left = None if stop_after is None else max(stop_after - taken, 0)
    tuned, tune_seconds, _ = pruner.run_tuning(
        step_fn, init(cut["params"],
                      {k: v for k, v in cut.items() if k != "params"}, d_cut),
        os.path.join(folder, "finetune"), steps, left, dense, real)
    if int(tuned["step"]) < steps:  # stopped (stop_after)
      return None
  weights = {**tuned["fixed"], "params": tuned["params"]}
  return _distill.Distilled(
      **_distill._finish(config, g_channels, weights, seed, real),  # pylint: disable=protected-access
      steps=int(tuned["step"]), seconds=float(seconds + tune_seconds),
      discriminator_channels=d_channels)
