"""Classifier embedder for TFDS `cifar10` (needs a network to download it once).

  python launch.py --config=configs/train_embedder_cifar10.py \
      --workdir=/tmp/embedder_cifar10 --export=embedder_cifar10

Not run for this repository (no network here); the sweep configs of cifar10
need this embedder and the GAN of configs/train_dcgan_cifar10.py exported first.
"""

import ml_collections

from configs import train_embedder_mnist5k


def get_config() -> ml_collections.ConfigDict:
  config = train_embedder_mnist5k.get_config()
  config.dataset = "cifar10"
  config.steps = 5000
  return config
