"""DCGAN on TFDS `mnist` (needs a network to download it once).

  python launch.py --config=configs/train_dcgan_mnist.py \
      --workdir=/tmp/dcgan_mnist --export=dcgan_mnist

Not run for this repository (no network here). Then sweep it with
configs/sweep_dcgan_mnist.py (after exporting embedder_mnist too).
"""

import ml_collections

from configs import train_dcgan_mnist5k


def get_config() -> ml_collections.ConfigDict:
  config = train_dcgan_mnist5k.get_config()
  config.dataset = "mnist"
  config.width = 64
  config.steps = 20000
  config.ema_decay = 0.999
  return config
