"""The default sweep on the committed `dcgan_digits` generator.

  python launch.py --config=configs/sweep_dcgan_digits.py --workdir=/tmp/sweep_dcgan_digits
"""

import ml_collections

from configs import sweep_dcgan_mnist5k


def get_config() -> ml_collections.ConfigDict:
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = "dcgan_digits"
  return config
