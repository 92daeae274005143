r"""lsh_gan launcher.

With no --config, runs the compression demo: compresses a DCGAN generator's
parameters with a transform string and prints the per-layer report.

  python launch.py
  python launch.py --transform="quantize(bits=2)" --workdir=/tmp/run

With a training config (configs/train_*.py), trains that model (resuming
from the workdir's last checkpoint) and, with --export, writes it to
lsh_gan/pretrained:

  python launch.py --config=configs/train_dcgan_mnist5k.py \
      --workdir=/tmp/dcgan_mnist5k --export=dcgan_mnist5k
"""

import json
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from lsh_gan import demo

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "A training config (configs/train_*.py); fields can be "
    "overridden, e.g. --config.steps=100.")
_TRANSFORM = flags.DEFINE_string(
    "transform", demo.DEFAULT_TRANSFORM,
    "Compression as a transform string: name(arg=value) parts joined by '+'; "
    "names: clip, quantize, prune, masked, identity.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialization and latents.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Demo: if set, write the packed parameters and "
    "report.json. Training: checkpoints and metrics.json (required).")
_EXPORT = flags.DEFINE_string(
    "export", None, "Training: also write the trained model to "
    "lsh_gan/pretrained under this name.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _CONFIG.value is None:
    demo.run(_TRANSFORM.value, seed=_SEED.value, workdir=_WORKDIR.value)
    return
  from lsh_gan import train  # pylint: disable=g-import-not-at-top
  if not _WORKDIR.value:
    raise app.UsageError("--workdir is required with a training config")
  print(json.dumps(train.run(_CONFIG.value, _WORKDIR.value, _EXPORT.value,
                             "python launch.py " + " ".join(sys.argv[1:]))))


if __name__ == "__main__":
  app.run(main)
