"""The default sweep on the committed `dcgan_shapes` generator (coloured
shapes with 96 known modes; embedding: the shapes factor classifier's
multilayer features).

  python launch.py --config=configs/sweep_dcgan_shapes.py --workdir=/tmp/sweep_dcgan_shapes

The exact mode coverage of any point's samples (which of the 96 modes a
compressed generator still makes) comes from `lsh_gan.train.mode_coverage`.
"""

import ml_collections

from configs import sweep_dcgan_mnist5k


def get_config() -> ml_collections.ConfigDict:
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = "dcgan_shapes"
  return config
