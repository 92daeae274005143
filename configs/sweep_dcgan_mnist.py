"""The default sweep on a DCGAN trained on TFDS `mnist` (network needed).

First train and export the GAN and the embedder (see
configs/train_dcgan_mnist.py and configs/train_embedder_mnist.py), then

  python launch.py --config=configs/sweep_dcgan_mnist.py --workdir=/tmp/sweep_mnist
"""

import ml_collections

from configs import sweep_dcgan_mnist5k


def get_config() -> ml_collections.ConfigDict:
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = "dcgan_mnist"
  config.num_reference = 10000
  config.num_samples = 10000
  return config
