r"""lsh_gan launcher.

Runs the compression demo: compresses a DCGAN generator's parameters with a
transform string and prints the per-layer report.

  python launch.py
  python launch.py --transform="quantize(bits=2)" --workdir=/tmp/run
"""

from absl import app
from absl import flags

from lsh_gan import demo

_TRANSFORM = flags.DEFINE_string(
    "transform", demo.DEFAULT_TRANSFORM,
    "Compression as a transform string: name(arg=value) parts joined by '+'; "
    "names: clip, quantize, prune, masked, identity.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialization and latents.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "If set, write the packed parameters and report.json.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  demo.run(_TRANSFORM.value, seed=_SEED.value, workdir=_WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
