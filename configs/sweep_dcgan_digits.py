"""The default sweep on the committed `dcgan_digits` generator.

  python launch.py --config=configs/sweep_dcgan_digits.py --workdir=/tmp/sweep_dcgan_digits
"""

import os
import sys

import ml_collections

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep_dcgan_mnist5k  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config() -> ml_collections.ConfigDict:
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = "dcgan_digits"
  return config
