"""lsh_gan.finetune.collaborative_prune: the local-density loss against
scikit-learn's kernel density estimate and scipy's relative entropy on real
digits, gated networks against cut ones, MACs against the counter, and the
pruning of a small pix2pix end to end (budget kept, resumed bit for bit)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lsh_gan import compress
from lsh_gan import data
from lsh_gan import finetune
from lsh_gan import pretrained
from lsh_gan.finetune import _collaborative
from lsh_gan.finetune import _common
from lsh_gan.finetune import _distill
from lsh_gan.models import pix2pix

import conftest


@pytest.fixture(scope="module")
def digits(data_dir):
  """(5, 6, 28, 28, 1) mnist5k digits in [-1, 1]: 6 anchors' neighbourhoods
  of 5 (index 0 the anchor), each a digit and its neighbours."""
  images = data.images("mnist5k", "test", data_dir=data_dir)
  return np.asarray(images[:30], np.float32).reshape(6, 5, 28, 28, 1).swapaxes(
      0, 1)


def _reference(original, pruned):
  """The loss computed with scikit-learn's Gaussian KernelDensity (its
  normalising constants cancel in the difference of log densities) and
  scipy's softmax and relative entropy."""
  from scipy import special  # pylint: disable=g-import-not-at-top
  from sklearn.neighbors import KernelDensity  # pylint: disable=g-import-not-at-top
  m1, b = original.shape[:2]
  o = original.reshape(m1, b, -1).astype(np.float64)
  p = pruned.reshape(m1, b, -1).astype(np.float64)
  d = o.shape[-1]
  kde, kl = [], []
  for i in range(b):
    dist = ((o[:, None, i] - o[None, :, i]) ** 2).sum(-1)
    h = dist[~np.eye(m1, dtype=bool)].mean() / d  # per-entry mean
    # exp(-|a - b|^2 / (d h)) is a Gaussian kernel of variance d h / 2.
    fit = KernelDensity(bandwidth=np.sqrt(d * h / 2)).fit(o[:, i])
    kde.append(np.mean((fit.score_samples(o[:, i]) -
                        fit.score_samples(p[:, i])) ** 2))
    pdist = ((p[:, None, i] - p[None, :, i]) ** 2).sum(-1)
    for m in range(m1):
      others = [j for j in range(m1) if j != m]
      kl.append(special.rel_entr(
          special.softmax(-dist[m, others] / (d * h)),
          special.softmax(-pdist[m, others] / (d * h))).sum())
  return np.mean(kde) + np.mean(kl)


def test_the_local_density_loss_matches_scikit_learn_and_scipy(digits):
  rng = np.random.default_rng(0)
  loss = jax.jit(finetune.local_density_loss)
  assert float(loss(digits, digits)) == pytest.approx(0.0, abs=1e-6)
  cases = {
      "noisy": np.clip(digits + rng.normal(0, 0.3, digits.shape), -1, 1),
      # Each neighbourhood collapsed onto its anchor's digit.
      "collapsed": np.broadcast_to(digits[:1], digits.shape),
      # Neighbourhoods swapped between anchors.
      "swapped": np.roll(digits, 1, axis=1),
      "blank": -np.ones_like(digits),
  }
  got = {}
  for case, pruned in cases.items():
    pruned = np.ascontiguousarray(pruned, np.float32)
    got[case] = float(loss(digits, pruned))
    assert got[case] == pytest.approx(_reference(digits, pruned), rel=1e-4,
                                      abs=1e-5), case
    assert got[case] > 1e-4, case
  # Mild noise costs less than another digit's neighbourhood.
  assert got["noisy"] < got["swapped"]
  # Each neighbourhood drawn towards its middle, where the original's
  # density is higher, costs too, more the further it goes.
  middle = digits.mean(axis=0, keepdims=True)
  drawn = [float(loss(digits, digits + t * (middle - digits)))
           for t in (0.05, 0.3, 1.0)]
  assert 0 < drawn[0] < drawn[1] < drawn[2]
  with pytest.raises(ValueError, match="one shape"):
    finetune.local_density_loss(digits, digits[:, :3])
  with pytest.raises(ValueError, match="M >= 1"):
    finetune.local_density_loss(digits[:1], digits[:1])


def test_gated_networks_compute_what_the_cut_ones_do():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.uniform(-1, 1, (4, 28, 28, 1)), jnp.float32)
  y = jnp.asarray(rng.uniform(-1, 1, (4, 28, 28, 1)), jnp.float32)
  # The discriminator (batch statistics): random 0/1 gates per layer.
  d = pix2pix.PatchDiscriminator(width=4, n_layers=2)
  params = d.init(jax.random.key(0), x, y)["params"]
  params = jax.tree.map(
      lambda p: p + jnp.asarray(rng.normal(0, 0.1, p.shape), p.dtype), params)
  gates = [rng.random(c) < 0.6 for c in (4, 8, 16)]
  for g in gates:
    g[0] = True
  axes = _collaborative.patch_channel_axes(2)
  reading = _collaborative.reading_axes(axes)
  # (Jitted: eager, each operation compiles on its own.)
  apply = lambda module, p: jax.jit(lambda p: module.apply(
      {"params": p}, x, y, mutable=["batch_stats"])[0])(p)
  slim = pix2pix.PatchDiscriminator(width=4, n_layers=2,
                                    channels=tuple(int(g.sum()) for g in gates))
  want = apply(slim, _distill.taken(params, axes,
                                    [np.flatnonzero(g) for g in gates]))
  np.testing.assert_allclose(
      apply(d, _distill.scaled(params, reading, [g.astype(np.float32)
                                                 for g in gates])),
      want, rtol=0, atol=1e-5 * float(np.abs(want).max()))
  # The U-Net (running averages), channels of every level gated.
  config = {"architecture": "pix2pix", "dataset": "edges2digits", "width": 4,
            "levels": 3}
  import ml_collections  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict(config)
  full = _distill._module(config, (4, 8, 16))
  start = full.init(jax.random.key(2), x)
  variables = jax.tree.map(
      lambda p: p + jnp.asarray(rng.uniform(0.1, 0.3, p.shape), p.dtype),
      start)
  gates = [rng.random(c) < 0.5 for c in (4, 8, 16)]
  for g in gates:
    g[-1] = True
  axes = _distill._channel_axes(config)
  reading = _collaborative.reading_axes(axes)
  cut = _distill._module(config, tuple(int(g.sum()) for g in gates))
  want = jax.jit(cut.apply)(_distill.taken(
      variables, axes, [np.flatnonzero(g) for g in gates]), x)
  gated = lambda v, gates: full.apply(_distill.scaled(v, reading, gates), x)
  gated_jit = jax.jit(gated)
  np.testing.assert_allclose(
      gated_jit(variables, [g.astype(np.float32) for g in gates]), want,
      rtol=0,
      atol=1e-5 * float(np.abs(want).max()))
  # A closed gate still gets a gradient: the channel is computed, and only
  # its readers are scaled (at the initial weights, whose outputs do not
  # saturate the tanh).
  grads = jax.jit(jax.grad(lambda g: jnp.sum(gated(start, g) ** 2)))(
      [jnp.asarray(g, jnp.float32) for g in gates])
  closed = np.concatenate([np.asarray(grad)[~g]
                           for g, grad in zip(gates, grads)])
  # (A channel that is 0 after the ReLU for every input has none.)
  assert closed.size > 10 and np.mean(closed != 0) > 0.8


def test_the_fitted_costs_are_the_counted_macs():
  import ml_collections  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict({
      "architecture": "pix2pix", "dataset": "edges2digits", "width": 16,
      "levels": 5})
  full = (16, 32, 64, 128, 128)
  costs = _common.quadratic_costs(
      lambda c: _distill._macs(config, c), full)
  rng = np.random.default_rng(2)
  for _ in range(3):
    k = tuple(int(rng.integers(1, f + 1)) for f in full)
    module = _distill._module(config, k)
    x = jax.ShapeDtypeStruct((1, 28, 28, 1), jnp.float32)
    counted = compress.macs(lambda v, c: module.apply(v, c),
                            jax.eval_shape(module.init, jax.random.key(0), x),
                            x)
    assert _common.evaluate(costs, np.asarray(k, float)) == (
        pytest.approx(counted, rel=1e-9))
  with pytest.raises(RuntimeError, match="not quadratic"):
    _common.quadratic_costs(lambda c: float(np.prod(c)), (4, 4, 4))


def test_the_budget_is_met_by_the_agents_ranking():
  cost = lambda c: 10 * c[0] + 100 * c[1]
  logits = [np.array([3.0, -1.0, 0.5]), np.array([2.0, 1.0, -2.0])]
  # Kept by sign: channels 0, 2 and 0, 1, (2, 2) costs 220. Over 150, the
  # lowest-logit kept channels go: layer 0's 0.5 (210), layer 1's 1.0
  # (110). Then unkept channels come back by logit while they fit: layer
  # 1's 1.0 does not (210), layer 0's 0.5 (120) and -1.0 (130) do, layer
  # 1's -2.0 does not.
  keep = _collaborative.fit_to_budget(logits, cost, 150)
  assert [k.tolist() for k in keep] == [[True, True, True],
                                        [True, False, False]]
  # A looser budget is filled by logit: (3, 2) costs 230.
  keep = _collaborative.fit_to_budget(logits, cost, 235)
  assert [int(k.sum()) for k in keep] == [3, 2]
  with pytest.raises(ValueError, match="below the smallest"):
    _collaborative.fit_to_budget(logits, cost, 100)


def test_a_pix2pix_is_pruned_to_its_budget_and_resumes_bit_exactly(
    with_tiny_pix2pix, data_dir, tmp_path):
  name = conftest.TINY_PIX2PIX
  kwargs = dict(macs_ratio=0.3, search_steps=4, steps=3, batch_size=4,
                neighbours=2, data_dir=data_dir)
  whole = finetune.collaborative_prune(name, **kwargs)
  assert finetune.collaborative_prune(
      name, workdir=tmp_path / "b", stop_after=2, **kwargs) is None
  assert finetune.collaborative_prune(
      name, workdir=tmp_path / "b", stop_after=3, **kwargs) is None
  resumed = finetune.collaborative_prune(name, workdir=tmp_path / "b",
                                         **kwargs)
  for a, b in zip(jax.tree.leaves(whole.variables),
                  jax.tree.leaves(resumed.variables)):
    np.testing.assert_array_equal(a, b)
  assert whole.channels == resumed.channels
  full = finetune.macs_of(name)
  assert whole.macs <= 0.3 * full
  assert len(whole.discriminator_channels) == 3
  conftest.assert_translates(whole, data_dir)
  assert whole.steps == 3 and whole.seconds > 0


@pytest.mark.parametrize("kwargs,match", [
    (dict(macs_ratio=0.0), "macs_ratio=0.0 must be in"),
    (dict(macs_ratio=1.5), "macs_ratio=1.5 must be in"),
    (dict(macs_ratio=1e-6), "below the smallest"),
    (dict(noise=0.0), "noise=0"),
    (dict(neighbours=1), "neighbours=1"),
    (dict(search_steps=-1), "search_steps=-1"),
    (dict(density_weight=float("nan")), "density_weight=nan"),
])
def test_bad_arguments_are_named(with_tiny_pix2pix, kwargs, match):
  full = {**dict(macs_ratio=0.5, search_steps=1, steps=1), **kwargs}
  with pytest.raises(ValueError, match=match):
    finetune.collaborative_prune(conftest.TINY_PIX2PIX, **full)


def test_a_generator_of_latents_is_refused():
  with pytest.raises(ValueError, match="generates from latents"):
    finetune.collaborative_prune("dcgan_digits", macs_ratio=0.5,
                                 search_steps=1, steps=1)
  assert pretrained.is_conditional("pix2pix_edges2digits")
