"""Models trained by this project, with their small checkpoints committed.

Each model lives in `lsh_gan/pretrained/checkpoints/<name>/`: its parameters
as an Orbax checkpoint (`params/`) and `info.json` (dataset, architecture,
its configuration, training steps, the command that reproduces it, and
metrics measured at save time). Nothing is downloaded.

Today: the classifier embedders of the image datasets (`embedder_mnist5k`,
`embedder_digits`). The GANs follow (issue 4).

  embed_fn, params = pretrained.embedder("mnist5k")
  features = embed_fn(params, images)     # (n, 128) float32
"""

from __future__ import annotations

import functools
import json
import os

import jax
import numpy as np

CHECKPOINTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "checkpoints")
MIXTURES = ("ring8", "grid25")


def names() -> tuple[str, ...]:
  """Names of the committed models."""
  if not os.path.isdir(CHECKPOINTS):
    return ()
  return tuple(sorted(n for n in os.listdir(CHECKPOINTS)
                      if os.path.exists(os.path.join(CHECKPOINTS, n,
                                                     "info.json"))))


def _check(name: str) -> str:
  if name not in names():
    raise ValueError(f"name={name!r} is not a pre-trained model; valid "
                     f"names: {', '.join(names())}")
  return os.path.join(CHECKPOINTS, name)


def info(name: str) -> dict:
  """dataset, architecture, config, steps, command and metrics of a model."""
  with open(os.path.join(_check(name), "info.json")) as f:
    return json.load(f)


@functools.lru_cache(maxsize=None)
def _params(name: str):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  params = ocp.StandardCheckpointer().restore(
      os.path.join(_check(name), "params"))
  return jax.tree.map(np.asarray, params)


def params(name: str):
  """The model's parameters (a fresh copy of the restored pytree)."""
  return jax.tree.map(np.array, _params(name))


def embedder(dataset: str):
  """(embed_fn, params) of a dataset's embedding.

  `embed_fn(params, images)` maps (n, H, W, C) images in [-1, 1] to (n, d)
  float32 features: the penultimate layer of the dataset's classifier. For
  the 2-D mixtures (ring8, grid25) the embedder is the identity and params is
  None.

  Raises:
    ValueError: for a dataset without a pre-trained embedder (the message
      lists the ones there are).
  """
  if dataset in MIXTURES:
    return (lambda params, points: jax.numpy.asarray(points,
                                                     jax.numpy.float32)), None
  name = f"embedder_{dataset}"
  if name not in names():
    have = [n[len("embedder_"):] for n in names() if n.startswith("embedder_")]
    raise ValueError(f"dataset={dataset!r} has no pre-trained embedder; "
                     f"embedders exist for: {', '.join(have + list(MIXTURES))}")
  from lsh_gan import models  # pylint: disable=g-import-not-at-top
  config = info(name)["config"]
  model = models.Classifier(features=tuple(config["features"]),
                            embed_dim=config["embed_dim"],
                            num_classes=config["num_classes"])
  embed_fn = jax.jit(lambda params, images: model.apply(params, images,
                                                        method=model.embed))
  return embed_fn, params(name)


def export(name: str, params_tree, metadata: dict,
           directory: str = CHECKPOINTS) -> str:
  """Writes a model's parameters and info.json under directory/name."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.abspath(directory), name)
  if os.path.exists(path):
    shutil.rmtree(path)
  os.makedirs(path)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(path, "params"), params_tree)
  checkpointer.wait_until_finished()
  with open(os.path.join(path, "info.json"), "w") as f:
    json.dump(metadata, f, indent=1, sort_keys=True)
  return path
