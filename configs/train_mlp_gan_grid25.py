"""MLP GAN on `grid25` (2-D mixture), WGAN-GP loss: ring8's settings with a
larger learning rate (with ring8's exactly, 20,000 steps left 3% of the
samples near a mode).

  python launch.py --config=configs/train_mlp_gan_grid25.py \
      --workdir=/tmp/mlp_gan_grid25 --export=mlp_gan_grid25
"""

import os
import sys

import ml_collections

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_mlp_gan_ring8  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config() -> ml_collections.ConfigDict:
  config = train_mlp_gan_ring8.get_config()
  config.dataset = "grid25"
  config.learning_rate = 2e-4
  return config
