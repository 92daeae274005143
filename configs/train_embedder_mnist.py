"""Classifier embedder for TFDS `mnist` (needs a network to download it once).

  python launch.py --config=configs/train_embedder_mnist.py \
      --workdir=/tmp/embedder_mnist --export=embedder_mnist

Not run for this repository (no network here); the sweep configs of mnist
need this embedder and the GAN of configs/train_dcgan_mnist.py exported first.
"""

import ml_collections

from configs import train_embedder_mnist5k


def get_config() -> ml_collections.ConfigDict:
  config = train_embedder_mnist5k.get_config()
  config.dataset = "mnist"
  config.steps = 5000
  return config
