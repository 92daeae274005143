"""The default sweep on the committed `mlp_gan_ring8` generator.

  python launch.py --config=configs/sweep_mlp_gan_ring8.py --workdir=/tmp/sweep_mlp_gan_ring8
"""

import ml_collections

from configs import sweep_dcgan_mnist5k


def get_config() -> ml_collections.ConfigDict:
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = "mlp_gan_ring8"
  return config
