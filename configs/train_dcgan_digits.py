"""DCGAN on `digits` (scikit-learn's 8x8 digits): a small generator.

4x4x64 -> 4x4x32 -> 8x8x1 at width 32.

  python launch.py --config=configs/train_dcgan_digits.py \
      --workdir=/tmp/dcgan_digits --export=dcgan_digits
"""

import os
import sys

import ml_collections

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_dcgan_mnist5k  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config() -> ml_collections.ConfigDict:
  config = train_dcgan_mnist5k.get_config()
  config.dataset = "digits"
  config.latent_dim = 32
  config.steps = 5000
  config.ema_decay = 0.999
  return config
