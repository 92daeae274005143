r"""Lists the pre-trained models and draws their sample grids.

  python -m lsh_gan.pretrained                 # the table, as markdown
  python -m lsh_gan.pretrained --grids=docs/samples   # grids; their paths on stderr
  python -m lsh_gan.pretrained --train_discriminator=dcgan_digits \
      --workdir=/tmp/discriminator_dcgan_digits [--steps=2000]

Each generator's grid shows 64 samples (key 0) of its committed variables;
the 2-D mixtures show 2,000 points with the mixture's modes.

--train_discriminator trains a discriminator for a committed generator that
has none (`lsh_gan.train.train_discriminator`: the generator held fixed,
resumable in --workdir) and adds it to the generator's checkpoint
(`lsh_gan.train.add_discriminator`).
"""

import os
import sys

from absl import app
from absl import flags
import jax
import numpy as np

from lsh_gan import pretrained
from lsh_gan import report

_GRIDS = flags.DEFINE_string("grids", None,
                             "Write <name>.png sample grids to this folder.")
_TRAIN_DISCRIMINATOR = flags.DEFINE_string(
    "train_discriminator", None,
    "Train a discriminator for this committed generator and add it to its "
    "checkpoint.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Checkpoints of --train_discriminator (resumable).")
_STEPS = flags.DEFINE_integer(
    "steps", 2000, "Steps of --train_discriminator.", lower_bound=1)


def table() -> str:
  """A markdown table of every committed model and its saved metrics."""
  rows = ["| model | dataset | steps | training s | metrics |",
          "| --- | --- | --- | --- | --- |"]
  for name in pretrained.names():
    info = pretrained.info(name)
    metrics = dict(info["metrics"])
    seconds = metrics.pop("seconds", float("nan"))
    shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in sorted(metrics.items()))
    rows.append(f"| {name} | {info['dataset']} | {info['steps']:,} | "
                f"{seconds:,.0f} | {shown} |")
  return "\n".join(rows)


def sample_grids(directory: str) -> list[str]:
  """Writes one PNG of samples per generator, and one of each generator's
training data (real_<dataset>.png); returns the paths."""
  from lsh_gan import data  # pylint: disable=g-import-not-at-top
  paths = []
  for name in pretrained.generators():
    sample_fn, variables = pretrained.generator(name)
    dataset = pretrained.info(name)["dataset"]
    mixture = dataset in data.MIXTURES
    if pretrained.is_conditional(name):  # 64 test conditions at random
      conditions = data.load(dataset, "test")["condition"]
      samples = np.asarray(sample_fn(variables, conditions[
          np.random.default_rng(0).choice(len(conditions), 64,
                                          replace=False)]))
    else:
      samples = np.asarray(sample_fn(variables, jax.random.key(0),
                                     2000 if mixture else 64))
    modes = data.mixture_modes(dataset) if mixture else None
    paths.append(report.sample_grid(
        samples, os.path.join(directory, f"{name}.png"), modes=modes,
        title=name))
    # report.sample_grid returns absolute paths: compare like with like.
    real_path = os.path.abspath(os.path.join(directory, f"real_{dataset}.png"))
    if real_path not in paths:  # the training data, for comparison
      real = data.images(dataset, "train")
      real = real[np.random.default_rng(0).choice(len(real), len(samples),
                                                  replace=False)]
      paths.append(report.sample_grid(real, real_path, modes=modes,
                                      title=f"{dataset} (train split)"))
  return paths


def main(argv):
  del argv
  if _TRAIN_DISCRIMINATOR.value:
    if not _WORKDIR.value:
      raise app.UsageError("--train_discriminator needs --workdir")
    from lsh_gan import train  # pylint: disable=g-import-not-at-top
    name = _TRAIN_DISCRIMINATOR.value
    if name not in pretrained.generators():
      raise app.UsageError(f"--train_discriminator={name!r} is not a "
                           f"committed generator; valid names: "
                           f"{', '.join(pretrained.generators())}")
    print(train.add_discriminator(name, _WORKDIR.value, steps=_STEPS.value))
    return
  print(table())
  if _GRIDS.value:
    # On stderr, so that stdout is the markdown table alone.
    for path in sample_grids(_GRIDS.value):
      print("wrote", os.path.relpath(path), file=sys.stderr)


if __name__ == "__main__":
  app.run(main)
