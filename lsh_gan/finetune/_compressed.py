"""Fine-tuning under a transform's constraints: `quantization_aware` and
`discriminator_supervised` (see the package's docstring)."""

from __future__ import annotations

import dataclasses
from typing import Any

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
from lsh_gan.compress import _base
from lsh_gan.compress import _packing
from lsh_gan.compress import _tree
from lsh_gan.finetune import _common

METHODS = ("quantization_aware", "discriminator_supervised")
# Yu & Pool weigh the discriminator's loss gap by this against the
# generator's (lambda = 0.5 in all their experiments).
DISCRIMINATOR_WEIGHT = 0.5


@dataclasses.dataclass(frozen=True)
class FineTuned:
  """A fine-tuned compressed generator.

  Attributes:
    variables: the generator's variables after the transform (what it runs
      on: its constraints hold).
    weights: the fine-tuned variables before the transform:
      ``transform(weights)`` is `variables` and ``transform.pack(weights)``
      its real storage.
    transform: the transform as fine-tuning applied it: the one asked for,
      with its prune masks fixed where they fell on the dense weights
      (`freeze`); the same as the one asked for on the dense weights.
    steps: fine-tuning steps taken.
    seconds: fine-tuning time, summed over interruptions.
  """
  variables: Any
  weights: Any
  transform: compress.Transform
  steps: int
  seconds: float


def _has_prune(t: compress.Transform) -> bool:
  return t.name == "prune" or any(_has_prune(c) for c in t._children())  # pylint: disable=protected-access


class _FixedZeros(_base.Transform):
  """A prune step with its mask fixed: the given entries of the given leaves
  (by path) set to zero; in `pack`, a quantized leaf keeps its codes with
  those entries masked, as after `prune`."""

  name = "fixed_zeros"

  def __init__(self, zeros: dict[str, np.ndarray]):
    super().__init__()
    self.zeros = zeros

  def _selection(self, leaves, ctx, selected):
    return [p in self.zeros for p in ctx.paths]

  def _apply(self, leaves, ctx, selected, pack):
    out = list(leaves)
    for i in self._touched(leaves, ctx, selected):
      zero = jnp.asarray(self.zeros[ctx.paths[i]])
      if pack and isinstance(leaves[i], compress.PackedArray):
        out[i] = _packing.with_zeros(leaves[i], ~zero)
      else:
        x = _packing.dense(leaves[i])
        out[i] = jnp.where(zero, jnp.zeros((), x.dtype), x)
    return out

  def representable(self) -> bool:
    return False

  def __str__(self) -> str:
    return f"fixed_zeros(<{len(self.zeros)} leaves>)"


def freeze(transform: compress.Transform, variables):
  """`transform` with each prune step's mask fixed as it falls on
  `variables`: the same output on them, and on any other weights the same
  entries pruned (what fine-tuning applies, so that a pruned weight stays
  pruned while the others move).

  A prune step is a top-level step of the chain (or the transform itself),
  plain or under `masked`; its mask is the entries it leaves at zero in
  the leaves it changes.

  Raises:
    ValueError: a prune inside a masked chain (its mask cannot be told from
      the chain's other steps').
  """
  def one(t, tree):
    if isinstance(t, _base._Chain):  # pylint: disable=protected-access
      parts = []
      for step in t.transforms:
        frozen, tree = one(step, tree)
        parts.append(frozen)
      return compress.chain(*parts), tree
    after = t(tree)
    if not _has_prune(t):
      return t, after
    if not (t.name == "prune" or (isinstance(t, _base._Masked) and  # pylint: disable=protected-access
                                  t.inner.name == "prune")):
      raise ValueError(
          f"transform: fine-tuning fixes each prune step's mask; put prune "
          f"at the top level of the chain or as masked(prune(...)), not "
          f"inside {t}")
    before_leaves, paths, _ = _tree.flatten(tree)
    after_leaves = _tree.flatten(after)[0]
    zeros = {}
    for path, b, c in zip(paths, before_leaves, after_leaves):
      if _tree.is_array(b) and not np.array_equal(np.asarray(b),
                                                  np.asarray(c)):
        zeros[path] = np.asarray(c) == 0
    return _FixedZeros(zeros), after

  return one(compress.parse(transform), variables)[0]


def frozen_zeros(transform: compress.Transform, variables) -> Any:
  """Per leaf (a bool tree like `variables`), the entries `freeze` fixes at
  zero."""
  return _fixed_zeros(freeze(transform, variables), variables)


def _fixed_zeros(frozen: compress.Transform, variables) -> Any:
  """`frozen_zeros` of a transform `freeze` returned."""
  steps = (frozen.transforms if isinstance(frozen, _base._Chain)  # pylint: disable=protected-access
           else (frozen,))
  leaves, paths, treedef = _tree.flatten(variables)
  out = [np.zeros(np.shape(x), bool) for x in leaves]
  for step in steps:
    if isinstance(step, _FixedZeros):
      out = [o | step.zeros.get(p, False) for o, p in zip(out, paths)]
  return jax.tree_util.tree_unflatten(treedef, out)


def _straight_through(transform, variables):
  """transform(variables) forward, exactly; identity backward (the
  transform itself is not differentiated: its input is cut from the
  gradient)."""
  compressed = transform(jax.lax.stop_gradient(variables))
  return jax.tree.map(lambda w, c: c + (w - jax.lax.stop_gradient(w)),
                      variables, compressed)


def _identity(method, name, transform, steps, seed, batch_size,
              learning_rate) -> dict:
  return _common.identity(
      method, name, method == "discriminator_supervised",
      transform=str(transform), steps=steps, seed=seed,
      batch_size=batch_size, learning_rate=learning_rate)


def _check_args(name, transform, steps, seed, batch_size, learning_rate):
  _common.check_run(name, steps, seed, batch_size, learning_rate)
  transform = compress.parse(transform)
  if not transform.representable():
    raise ValueError(f"transform={transform}: fine-tuning records the "
                     "transform's string; use one that parse() reads back "
                     "(a regex mask, not a callable or pytree)")
  return transform


def _plan(name, transform, steps, seed, batch_size, learning_rate):
  """The arguments checked: (transform, config, rate, dense variables, the
  transform with its prune masks fixed on them)."""
  transform = _check_args(name, transform, steps, seed, batch_size,
                          learning_rate)
  config = ml_collections.ConfigDict(pretrained.info(name)["config"])
  rate = (config.learning_rate if learning_rate is None else
          float(learning_rate))
  _, dense = pretrained.generator(name)
  return transform, config, rate, dense, freeze(transform, dense)


def _run(method, name, transform, *, steps, seed, workdir, batch_size,
         learning_rate, data_dir, stop_after) -> FineTuned:
  # Refused here, before any folder.
  transform, config, rate, dense, applied = _plan(
      name, transform, steps, seed, batch_size, learning_rate)
  identity = _identity(method, name, transform, steps, seed, batch_size, rate)
  with _common.run_folder(workdir, identity) as folder:
    return _fine_tune(method, name, dense, applied, config, steps, seed,
                      folder, batch_size, rate, data_dir, stop_after)


def _fine_tune(method, name, dense, applied, config, steps, seed, folder,
               batch_size, rate, data_dir, stop_after) -> FineTuned:
  generator, _ = models.build(config)
  frozen = _fixed_zeros(applied, dense)["params"]
  start = dense["params"]
  fixed = {k: v for k, v in dense.items() if k != "params"}
  opt = _common.adam(config, rate)
  state = {"params": start, "opt": opt.init(start),
           "step": jnp.zeros((), jnp.int32)}
  supervised = method == "discriminator_supervised"
  if supervised:
    _, critic = models.build(config)
    _, d_params = pretrained.discriminator(name)
    d_opt = _common.adam(config, config.get("d_learning_rate", rate))
    state.update(d=d_params, d_opt=d_opt.init(d_params))
    d_loss, g_loss = train.critic_losses(config, critic)
    real = data.images(config.dataset, "train", data_dir=data_dir)
  manager = train._checkpoint_manager(folder)  # pylint: disable=protected-access
  state = train._restore(manager, state)  # pylint: disable=protected-access
  latent_dim = config.latent_dim

  def samples(variables, z):
    return generator.apply(variables, z)

  def student(params, dense):
    return _straight_through(applied, {**dense, "params": params})

  def gap(dense_value, value):
    dense_value = jax.lax.stop_gradient(dense_value)
    return jnp.abs(dense_value - value) / jnp.maximum(jnp.abs(dense_value),
                                                      1e-8)

  def loss(params, d, reals, key, dense):
    z = jax.random.normal(jax.random.fold_in(key, 0), (batch_size, latent_dim))
    teacher = jax.lax.stop_gradient(samples(dense, z))
    fake = samples(student(params, dense), z)
    if not supervised:
      return jnp.mean(jnp.abs(fake - teacher))
    # Yu & Pool: the gaps between the dense and the compressed generator's
    # losses under the discriminator, each relative to the dense one's.
    k = jax.random.fold_in(key, 1)
    return (gap(g_loss(d, teacher, k), g_loss(d, fake, k)) +
            DISCRIMINATOR_WEIGHT * gap(d_loss(d, reals, teacher, k),
                                       d_loss(d, reals, fake, k)))

  # Passed in, not captured: the dense variables and the entries that may
  # move (the frozen transform's fixed zeros are its own).
  keep = jax.device_put(jax.tree.map(lambda f: ~f, frozen))
  on_device = jax.device_put(dense)

  @jax.jit
  def step_fn(state, reals, dense, keep):
    key = jax.random.fold_in(jax.random.key(seed), state["step"])
    d = state.get("d")
    value, grads = jax.value_and_grad(loss)(state["params"], d, reals, key,
                                            dense)
    grads = jax.tree.map(lambda g, k: jnp.where(k, g, 0), grads, keep)
    updates, opt_state = opt.update(grads, state["opt"], state["params"])
    new = {**state, "params": optax.apply_updates(state["params"], updates),
           "opt": opt_state, "step": state["step"] + 1}
    if supervised:
      # The discriminator goes on training against the compressed generator
      # with its own loss, as in Yu & Pool's Table 1 (not fixed).
      z = jax.random.normal(jax.random.fold_in(key, 2),
                            (batch_size, latent_dim))
      fake = jax.lax.stop_gradient(samples(student(new["params"], dense), z))
      d_value, d_grads = jax.value_and_grad(d_loss)(
          d, reals, fake, jax.random.fold_in(key, 3))
      d_updates, d_opt_state = d_opt.update(d_grads, state["d_opt"], d)
      new.update(d=optax.apply_updates(d, d_updates), d_opt=d_opt_state)
      return new, value, d_value
    return new, value, value

  def batch(step):
    if not supervised:
      return jnp.zeros((0,)), on_device, keep
    return (real[train._batch_indices(real.shape[0], batch_size, seed, step)],  # pylint: disable=protected-access
            on_device, keep)

  state, seconds = train._run(  # pylint: disable=protected-access
      _common.run_config(steps), manager, state, step_fn, batch,
      lambda v: f"loss {float(v[0]):.4f}" + (
          f"  d loss {float(v[1]):.4f}" if supervised else ""),
      stop_after)
  weights = jax.tree.map(np.asarray, {**fixed, "params": state["params"]})
  variables = jax.tree.map(np.asarray, applied(weights))
  return FineTuned(variables=variables, weights=weights, transform=applied,
                   steps=int(state["step"]), seconds=float(seconds))


def quantization_aware(name: str, transform, *, steps: int, seed: int = 0,
                       workdir=None, batch_size: int = 64,
                       learning_rate: float | None = None,
                       data_dir: str | None = None,
                       stop_after: int | None = None) -> FineTuned:
  """Fine-tunes a committed generator under a transform to reproduce the
  dense generator's samples.

  Each step draws `batch_size` latents and minimises the mean absolute
  difference between the compressed generator's samples (forward through
  ``transform(weights)``, gradient straight through) and the dense
  generator's, with Adam at the GAN's own `learning_rate` and betas unless
  given. Batch norm runs on its running averages (the generator as it is
  sampled), which stay the dense model's.

  Args:
    name: a committed generator (`lsh_gan.pretrained.generators()`).
    transform: a transform or its string (`lsh_gan.compress.parse`).
    steps: fine-tuning steps (0: the post-training compressed generator).
    seed: latents (and real batches) of every step.
    workdir: where checkpoints go; a rerun with the same settings resumes
      (or returns at once when done); a folder of another run is refused.
      None: a temporary folder, removed after.
    batch_size, learning_rate: of the optimiser.
    data_dir: the datasets' folder (`lsh_gan.data`), for methods that read
      real data.
    stop_after: stop after this many steps of this call (a resumable
      interruption, for tests).

  Returns:
    A `FineTuned`.

  Raises:
    ValueError: an unknown generator, a transform without a string form,
      bad steps / seed / batch_size / learning_rate, or a workdir of another
      run.
  """
  return _run("quantization_aware", name, transform, steps=steps, seed=seed,
              workdir=workdir, batch_size=batch_size,
              learning_rate=learning_rate, data_dir=data_dir,
              stop_after=stop_after)


def discriminator_supervised(name: str, transform, *, steps: int,
                             seed: int = 0, workdir=None,
                             batch_size: int = 64,
                             learning_rate: float | None = None,
                             data_dir: str | None = None,
                             stop_after: int | None = None) -> FineTuned:
  """Fine-tunes a committed generator under a transform with its own
  trained discriminator as supervisor (our reading of Yu & Pool 2020).

  Each step draws latents and a real batch; with l_G the generator's loss
  and l_D the discriminator's (the GAN's own, e.g. non-saturating
  cross-entropy) under the current discriminator, the compressed generator
  C minimises

    |l_G(O) - l_G(C)| / |l_G(O)| + 0.5 |l_D(real, O) - l_D(real, C)| / |l_D(real, O)|

  on the same latents, O the dense generator's samples: it is trained to
  look to the discriminator as the dense one does. The discriminator starts
  from the committed one and takes one step of its own loss on (real, C's
  samples) per step. Otherwise as `quantization_aware` (same arguments).

  Raises:
    ValueError: as `quantization_aware`.
    lsh_gan.pretrained.CheckpointError: a generator committed without its
      discriminator (the message gives the command that trains both).
  """
  return _run("discriminator_supervised", name, transform, steps=steps,
              seed=seed, workdir=workdir, batch_size=batch_size,
              learning_rate=learning_rate, data_dir=data_dir,
              stop_after=stop_after)
