"""The default sweep on a DCGAN trained on TFDS `cifar10` (network needed).

First train and export the GAN (configs/train_dcgan_cifar10.py), then, with
the FID Inception-v3 weights of pytorch-fid (pt_inception-2015-12-05-6726825d.pth,
see lsh_gan.pretrained.inception_v3), every metric and the FID are computed
in Inception's 2,048 pool3 features, as in the paper and published FIDs:

  python launch.py --config=configs/sweep_dcgan_cifar10.py \
      --workdir=/tmp/sweep_cifar10 --config.inception_weights=PATH.pth

(or set $LSH_GAN_INCEPTION_WEIGHTS). `--config.embedder=dataset` uses the
project's CIFAR-10 classifier instead (configs/train_embedder_cifar10.py).
"""

import ml_collections

from configs import sweep_dcgan_mnist5k


def get_config() -> ml_collections.ConfigDict:
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = "dcgan_cifar10"
  config.num_reference = 10000
  config.num_samples = 10000
  config.embedder = "inception_v3"
  return config
