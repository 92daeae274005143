"""The default sweep on the committed `wgan_gp_mnist5k` generator.

  python launch.py --config=configs/sweep_wgan_gp_mnist5k.py --workdir=/tmp/sweep_wgan_gp_mnist5k
"""

import ml_collections

from configs import sweep_dcgan_mnist5k


def get_config() -> ml_collections.ConfigDict:
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = "wgan_gp_mnist5k"
  return config
