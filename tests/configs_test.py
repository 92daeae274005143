"""Every config in configs/ loads and describes a model or sweep that can
be built: shapes, names and transform strings check out without data."""

import collections
import dataclasses
import glob
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lsh_gan import data
from lsh_gan import models
from lsh_gan import finetune
from lsh_gan import pipeline
from lsh_gan.finetune import _distill
from lsh_gan import pretrained

CONFIGS = sorted(p for p in glob.glob(os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
    "*.py")) if not p.endswith("__init__.py"))


def _load(path):
  spec = importlib.util.spec_from_file_location(
      os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_builds(path, data_dir):
  module = _load(path)
  config = module.get_config()
  name = os.path.splitext(os.path.basename(path))[0]
  assert f"configs/{name}.py" in module.__doc__  # the docstring's command
  assert config.kind == ("train" if name.startswith("train_") else "sweep")
  if name.startswith("train_"):
    shape = data.sample_shape(config.dataset)
    if models.is_conditional(config):
      generator, discriminator = models.build(config)
      x = jax.ShapeDtypeStruct((2, *shape), jnp.float32)
      variables = jax.eval_shape(generator.init, jax.random.key(0), x)
      assert jax.eval_shape(generator.apply, variables, x).shape == x.shape
      jax.eval_shape(discriminator.init, jax.random.key(1), x, x)
      assert name == f"train_{config.architecture}_{config.dataset}"
    elif models.is_gan(config):
      # Shapes only (traced, not computed): the networks build and fit.
      generator, discriminator = models.build(config)
      z = jax.ShapeDtypeStruct((2, config.latent_dim), jnp.float32)
      variables = jax.eval_shape(generator.init, jax.random.key(0), z)
      out = jax.eval_shape(generator.apply, variables, z)
      assert out.shape == (2, *shape)
      jax.eval_shape(discriminator.init, jax.random.key(1), out)
      assert name == f"train_{config.architecture}_{config.dataset}"
    else:
      classifier = models.build(config)
      jax.eval_shape(classifier.init, jax.random.key(0),
                     jax.ShapeDtypeStruct((1, *shape), jnp.float32))
      assert name == f"train_embedder_{config.dataset}"
  elif name == "results":  # one config, any generator: results.py:<name>
    for generator in pretrained.generators():
      config = module.get_config(generator)
      config.data_dir = data_dir  # pix2pix's check reads its pairs
      pipeline.check(config)
      points = [p for p, _ in pipeline.sweep(config)]
      assert config.generator == generator and len(points) == 25
      probe = {"w": np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)}
      assert {pipeline.bits_of(t, probe) for _, t in pipeline.sweep(config)} == {
          32, 16, 8, 6, 5, 4, 3, 2, 1}
      assert sum(",axis=-1)" in p for p in points) == 8
  elif name == "finetune":  # one config, any image generator
    for generator in ("dcgan_digits", "wgan_gp_mnist5k"):
      config = module.get_config(generator)
      pipeline.check(config)  # every fine-tuned point's arguments too
      sweep = pipeline.sweep(config)
      points = [p for p, _ in sweep]
      assert len(points) == 9 and sum(">>" in p for p in points) == 4
      distilled, searched = points[-2:]
      assert distilled.startswith("distill(") and searched.startswith(
          "search(")
      # The search has shapes to choose from, the distilled one among them.
      search = dict(sweep[-1][1].kwargs)
      allowed = _distill._search_plan(  # pylint: disable=protected-access
          generator, search["budget_macs"], search["supernet_steps"],
          search["steps"], 0, search["choices"], 100, 64, None)[-1]
      width = dict(sweep[-2][1].kwargs)["width"]
      assert len(allowed) >= 5
      assert finetune.macs_of(generator, width) == search["budget_macs"]
      assert _distill._student_channels(  # pylint: disable=protected-access
          _distill._config(generator), width) in allowed  # pylint: disable=protected-access
  elif name == "image_to_image":  # the pix2pix at matched MACs
    config.data_dir = data_dir  # the check reads the pairs
    pipeline.check(config)  # every fine-tuned point's arguments too
    sweep = pipeline.sweep(config)[1:]
    full = finetune.macs_of(config.generator)
    # Seed 0's nine points first; each again at training seeds 1 and 2.
    assert len(sweep) == 27
    seeds = [dict(p.kwargs).get("seed", 0) for _, p in sweep]
    assert seeds[:9] == [0] * 9 and sorted(seeds[9:]) == [1] * 9 + [2] * 9
    unseeded = collections.Counter(
        str(dataclasses.replace(p, kwargs=tuple(
            kv for kv in p.kwargs if kv[0] != "seed"))) for _, p in sweep)
    assert len(unseeded) == 9 and set(unseeded.values()) == {3}
    for r, (distilled, searched, pruned) in zip(
        (4, 8, 12), zip(*[iter(p for _, p in sweep[:9])] * 3)):
      budget = full // r
      width = dict(distilled.kwargs)["width"]
      # The widest uniform student within the budget.
      assert finetune.macs_of(config.generator, width) <= budget < (
          finetune.macs_of(config.generator, width + 1))
      assert dict(searched.kwargs)["budget_macs"] == budget
      assert dict(pruned.kwargs)["macs_ratio"] == pytest.approx(1 / r)
  else:
    assert name.startswith("sweep_") and name == f"sweep_{config.generator}"
    # The baseline and 15 points; pix2pix's: 11 (no 1-bit or clipping
    # ladder).
    assert len(pipeline.sweep(config)) == (
        12 if config.generator == "pix2pix_edges2digits" else 16)
