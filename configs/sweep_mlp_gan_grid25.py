"""The default sweep on the committed `mlp_gan_grid25` generator.

  python launch.py --config=configs/sweep_mlp_gan_grid25.py --workdir=/tmp/sweep_mlp_gan_grid25
"""

import os
import sys

import ml_collections

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep_dcgan_mnist5k  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config() -> ml_collections.ConfigDict:
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = "mlp_gan_grid25"
  return config
