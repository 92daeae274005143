"""DCGAN on TFDS `cifar10` (needs a network to download it once).

  python launch.py --config=configs/train_dcgan_cifar10.py \
      --workdir=/tmp/dcgan_cifar10 --export=dcgan_cifar10

Not run for this repository (no network here). Then sweep it with
configs/sweep_dcgan_cifar10.py (after exporting embedder_cifar10 too).
"""

import ml_collections

from configs import train_dcgan_mnist5k


def get_config() -> ml_collections.ConfigDict:
  config = train_dcgan_mnist5k.get_config()
  config.dataset = "cifar10"
  config.width = 64
  config.steps = 20000
  config.ema_decay = 0.999
  return config
