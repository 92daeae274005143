"""DCGAN on `mnist5k`: non-saturating loss, width 32 (0.9M generator params).

  python launch.py --config=configs/train_dcgan_mnist5k.py \
      --workdir=/tmp/dcgan_mnist5k --export=dcgan_mnist5k
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "mnist5k"
  config.data_dir = None  # $LSH_GAN_DATA_DIR or ~/tensorflow_datasets
  config.architecture = "dcgan"
  config.loss = "nonsaturating"
  config.width = 32
  config.latent_dim = 100
  config.batch_size = 64
  config.critic_steps = 1
  config.steps = 6000
  config.learning_rate = 2e-4
  config.b1 = 0.5
  config.b2 = 0.999
  config.ema_decay = 0.999  # the generator exported: weights averaged
  config.seed = 0
  config.log_every = 200
  config.checkpoint_every = 500
  return config
