r"""lsh_gan launcher: compress a pre-trained GAN over a sweep and score it.

  python launch.py                    # the default experiment (below)
  python launch.py --config=configs/sweep_wgan_gp_mnist5k.py --workdir=DIR
  python launch.py --seeds=3          # mean ± std over 3 seeds of the latents
  python launch.py --config.num_samples=2000 \
      --config.add_points="quantize(bits=5);prune(sparsity=0.3)"

An experiment config (configs/sweep_*.py) names a pre-trained generator and
a sweep of compression points. For each point the launcher compresses the
generator, generates samples from the same latents, embeds them and scores
them against the reference set with every metric (KNN precision/recall,
density/coverage, LSH and LSH+KNN precision/recall, FID, KID); see
`lsh_gan.pipeline`. It writes results.csv, results.json, config.json, plots
and sample grids to the workdir, and prints a summary table. Started again
with the same workdir it computes only the missing points.

The default experiment is configs/sweep_dcgan_mnist5k.py: the committed
DCGAN on mnist5k, 16 sweep points, 5,000 samples each.

A training config (configs/train_*.py) trains that model instead, resuming
from the workdir's last checkpoint; --export writes it to lsh_gan/pretrained:

  python launch.py --config=configs/train_dcgan_mnist5k.py \
      --workdir=/tmp/dcgan_mnist5k --export=dcgan_mnist5k
"""

import json
import os
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(ROOT, "configs", "sweep_dcgan_mnist5k.py")

_CONFIG = config_flags.DEFINE_config_file(
    "config", DEFAULT_CONFIG, "An experiment (configs/sweep_*.py) or training "
    "(configs/train_*.py) config; its fields can be overridden, e.g. "
    "--config.num_samples=2000.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output folder. Experiments: results, plots and sample "
    "grids (default: <tmp>/lsh_gan/<config name>). Training: checkpoints and "
    "metrics.json (required).")
_SEEDS = flags.DEFINE_integer(
    "seeds", 1, "Experiments: run at this many seeds (config.seed, +1, ...), "
    "each in <workdir>/seed_<s>, and summarise mean ± std over them.")
_EXPORT = flags.DEFINE_string(
    "export", None, "Training only: also write the trained model to "
    "lsh_gan/pretrained under this name.")


def _config_name() -> str:
  """The config file's name, with its argument if any: results_dcgan_digits
  for --config=configs/results.py:dcgan_digits."""
  for arg in sys.argv[1:]:
    if arg.startswith("--config="):
      path, _, config_arg = arg.split("=", 1)[1].partition(":")
      name = os.path.splitext(os.path.basename(path))[0]
      return f"{name}_{config_arg}" if config_arg else name
  return os.path.splitext(os.path.basename(DEFAULT_CONFIG))[0]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  command = "python launch.py " + " ".join(sys.argv[1:])
  if "steps" in config:  # a training config
    from lsh_gan import train  # pylint: disable=g-import-not-at-top
    if not _WORKDIR.value:
      raise app.UsageError("--workdir is required with a training config")
    print(json.dumps(train.run(config, _WORKDIR.value, _EXPORT.value,
                               command.strip())))
    return
  if _EXPORT.value:
    raise app.UsageError("--export applies to training configs only")
  from lsh_gan import pipeline  # pylint: disable=g-import-not-at-top
  from lsh_gan import report  # pylint: disable=g-import-not-at-top
  workdir = _WORKDIR.value or os.path.join(tempfile.gettempdir(), "lsh_gan",
                                           _config_name())
  logging.info("experiment %s, workdir %s", _config_name(), workdir)
  try:
    if _SEEDS.value > 1:
      table = report.seeds_table(pipeline.run_seeds(config, workdir,
                                                    _SEEDS.value))
    else:
      table = report.summary_table(pipeline.run(config, workdir))
  except ValueError as err:  # a bad config or workdir: say what, no trace
    raise SystemExit(f"launch.py: {err}") from None
  print(table)
  print(f"\nResults, plots and sample grids: {os.path.abspath(workdir)}")


if __name__ == "__main__":
  app.run(main)
