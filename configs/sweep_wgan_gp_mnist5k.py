"""The default sweep on the committed `wgan_gp_mnist5k` generator.

  python launch.py --config=configs/sweep_wgan_gp_mnist5k.py --workdir=/tmp/sweep_wgan_gp_mnist5k
"""

import os
import sys

import ml_collections

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep_dcgan_mnist5k  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config() -> ml_collections.ConfigDict:
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = "wgan_gp_mnist5k"
  return config
