"""Classifier embedder for TFDS `mnist` (needs a network to download it once).

  python launch.py --config=configs/train_embedder_mnist.py \
      --workdir=/tmp/embedder_mnist --export=embedder_mnist

Not run for this repository (no network here); the sweep configs of mnist
need this embedder and the GAN of configs/train_dcgan_mnist.py exported first.
"""

import os
import sys

import ml_collections

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_embedder_mnist5k  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config() -> ml_collections.ConfigDict:
  config = train_embedder_mnist5k.get_config()
  config.dataset = "mnist"
  config.steps = 5000
  return config
