"""lsh_gan.finetune: constraints kept at every step, objectives met,
resumable bit for bit, runs kept apart.

On a small ring8 GAN trained for the tests (conftest's `tiny_gan`; the
committed models are not touched).
"""

import json
import os

import jax
import numpy as np
import pytest

from lsh_gan import compress
from lsh_gan import finetune
from lsh_gan import pretrained

import conftest


NAME = conftest.TINY_GAN


@pytest.fixture
def here(with_tiny_gan):
  del with_tiny_gan


def _kernels(variables):
  return [np.asarray(v) for p, v in jax.tree_util.tree_flatten_with_path(
      variables)[0] if "kernel" in jax.tree_util.keystr(p)]


def _gap(variables, dense, num=2000):
  """Mean absolute difference of samples on held-out latents."""
  sample_fn, _ = pretrained.generator(NAME)
  key = jax.random.key(123)
  return float(np.mean(np.abs(np.asarray(sample_fn(variables, key, num)) -
                              np.asarray(sample_fn(dense, key, num)))))


@pytest.mark.parametrize("method,spec", [
    ("quantization_aware", "prune(sparsity=0.7)+quantize(bits=2)"),
    ("discriminator_supervised",
     "quantize(bits=2,grid='kmeans')+prune(sparsity=0.5,scope='global')")])
def test_every_step_keeps_the_transforms_constraints(here, method, spec,
                                                     tmp_path):
  t = compress.parse(spec)
  _, dense = pretrained.generator(NAME)
  pruned = finetune.frozen_zeros(t, dense)
  start = t(dense)
  frozen_share = np.mean(np.concatenate([f.ravel() for f in _kernels(pruned)]))
  assert frozen_share > 0.45
  for steps_done in (1, 2):
    out = getattr(finetune, method)(NAME, t, steps=2, workdir=tmp_path,
                                    stop_after=1)
    assert out.steps == steps_done
    for frozen, w, d, c, s in zip(_kernels(pruned), _kernels(out.weights),
                                  _kernels(dense), _kernels(out.variables),
                                  _kernels(start)):
      # Pruned weights are zero after the transform, and never move.
      np.testing.assert_array_equal(c[frozen], 0)
      np.testing.assert_array_equal(w[frozen], d[frozen])
      # Two bits: at most four values besides zero.
      assert np.unique(c[c != 0]).size <= 4
      assert not np.array_equal(c, s)  # it did move
    # What it returns is the transform of its weights, which pack stores.
    for a, b in zip(jax.tree.leaves(out.transform(out.weights)),
                    jax.tree.leaves(out.variables)):
      np.testing.assert_array_equal(np.asarray(a), b)
    packed = compress.unpack(out.transform.pack(out.weights))
    for a, b in zip(jax.tree.leaves(packed), jax.tree.leaves(out.variables)):
      np.testing.assert_array_equal(np.asarray(a), b)


@pytest.mark.parametrize("spec", [
    "quantize(bits=2,grid='kmeans')+prune(sparsity=0.5,scope='global')",
    "quantize(bits=1)+prune(sparsity=0.5)",
    "prune(sparsity=0.5)+quantize(bits=3,axis=-1)"])
def test_step_zero_is_the_post_training_generator_bit_for_bit(here, spec):
  _, dense = pretrained.generator(NAME)
  out = finetune.quantization_aware(NAME, spec, steps=0)
  for a, b in zip(jax.tree.leaves(out.variables),
                  jax.tree.leaves(compress.parse(spec)(dense))):
    np.testing.assert_array_equal(a, np.asarray(b))


def test_a_prune_inside_a_masked_chain_is_refused(here, tmp_path):
  with pytest.raises(ValueError, match="fixes each prune step's mask"):
    finetune.quantization_aware(
        NAME, "masked(clip(num_std=2.0)+prune(sparsity=0.5),mask='.*')",
        steps=1, workdir=tmp_path)
  assert not os.listdir(tmp_path)  # refused before anything was written


def test_quantization_aware_brings_the_samples_back_to_the_dense_ones(here):
  t = compress.parse("quantize(bits=2)")
  _, dense = pretrained.generator(NAME)
  post = finetune.quantization_aware(NAME, t, steps=0)
  assert post.steps == 0
  for a, b in zip(jax.tree.leaves(post.variables), jax.tree.leaves(t(dense))):
    np.testing.assert_array_equal(a, np.asarray(b))
  tuned = finetune.quantization_aware(NAME, t, steps=300)
  before, after = _gap(post.variables, dense), _gap(tuned.variables, dense)
  assert after < 0.5 * before, (before, after)


def test_discriminator_supervised_closes_the_discriminators_gap(here):
  t = compress.parse("prune(sparsity=0.8)")
  _, dense = pretrained.generator(NAME)
  logits_fn, d = pretrained.discriminator(NAME)
  sample_fn, _ = pretrained.generator(NAME)
  key = jax.random.key(7)

  def g_loss(variables):
    # The generator's loss under the committed discriminator (the
    # non-saturating one this GAN was trained with).
    logits = np.asarray(logits_fn(d, sample_fn(variables, key, 2000)),
                        np.float64)
    return np.mean(np.logaddexp(0, -logits))

  def d_gap(variables):  # the objective's first term, on held-out latents
    return abs(g_loss(variables) - g_loss(dense)) / g_loss(dense)

  post = t(dense)
  tuned = finetune.discriminator_supervised(NAME, t, steps=300)
  assert d_gap(tuned.variables) < 0.8 * d_gap(post), (d_gap(tuned.variables),
                                                      d_gap(post))
  assert _gap(tuned.variables, dense) < _gap(post, dense)


def test_interrupted_and_resumed_equals_uninterrupted(here, tmp_path):
  t = "prune(sparsity=0.5)+quantize(bits=3,axis=-1)"
  whole = finetune.discriminator_supervised(NAME, t, steps=6,
                                            workdir=tmp_path / "a")
  finetune.discriminator_supervised(NAME, t, steps=6, workdir=tmp_path / "b",
                                    stop_after=4)
  resumed = finetune.discriminator_supervised(NAME, t, steps=6,
                                              workdir=tmp_path / "b")
  assert whole.steps == resumed.steps == 6
  for a, b in zip(jax.tree.leaves(whole.weights),
                  jax.tree.leaves(resumed.weights)):
    np.testing.assert_array_equal(a, b)
  # A rerun finds the run done; another run's folder is refused.
  again = finetune.discriminator_supervised(NAME, t, steps=6,
                                            workdir=tmp_path / "b")
  assert again.seconds == resumed.seconds
  with open(tmp_path / "b" / "finetune.json") as f:
    assert json.load(f)["transform"] == str(compress.parse(t))
  with pytest.raises(ValueError, match="another fine-tuning run.*steps"):
    finetune.discriminator_supervised(NAME, t, steps=7,
                                      workdir=tmp_path / "b")
  with pytest.raises(ValueError, match="another fine-tuning run.*method"):
    finetune.quantization_aware(NAME, t, steps=6, workdir=tmp_path / "b")


def test_bad_arguments_are_named(here):
  for call, match in (
      (lambda: finetune.quantization_aware("biggan", "quantize(bits=2)",
                                           steps=1), "name='biggan'"),
      (lambda: finetune.quantization_aware(NAME, "quantize(bits=2)",
                                           steps=-1), "steps=-1"),
      (lambda: finetune.quantization_aware(NAME, "quantize(bits=2)",
                                           steps=1, batch_size=0),
       "batch_size=0"),
      (lambda: finetune.quantization_aware(
          NAME, compress.masked(compress.quantize(2), lambda p, x: True),
          steps=1), "string"),
      (lambda: finetune.quantization_aware(NAME, "quantize(bits=2)",
                                           steps=1, learning_rate=-1.0),
       "learning_rate=-1.0")):
    with pytest.raises(ValueError, match=match):
      call()
