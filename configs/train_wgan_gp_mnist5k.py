"""WGAN-GP on `mnist5k`: the DCGAN generator and a critic without batch norm,
Wasserstein loss with a gradient penalty (weight 10), 5 critic steps per
generator step, Adam(2e-4, 0.5, 0.9). Width 16 (0.3M generator parameters):
each step runs the generator six times, and at width 32 that was too slow
for this 2-core CPU.

  python launch.py --config=configs/train_wgan_gp_mnist5k.py \
      --workdir=/tmp/wgan_gp_mnist5k --export=wgan_gp_mnist5k
"""

import os
import sys

import ml_collections

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_dcgan_mnist5k  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config() -> ml_collections.ConfigDict:
  config = train_dcgan_mnist5k.get_config()
  config.architecture = "wgan_gp"
  config.loss = "wgan_gp"
  config.gp_weight = 10.0
  config.width = 16
  config.critic_steps = 5
  config.steps = 3000
  config.b2 = 0.9
  config.checkpoint_every = 250
  return config
