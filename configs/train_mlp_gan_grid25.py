"""MLP GAN on `grid25` (2-D mixture). Not yet tuned: no checkpoint committed.

  python -m lsh_gan.train --config=configs/train_mlp_gan_grid25.py \
      --workdir=/tmp/mlp_gan_grid25 --export=mlp_gan_grid25
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "grid25"
  config.data_dir = None  # $LSH_GAN_DATA_DIR or ~/tensorflow_datasets
  config.architecture = "mlp_gan"
  config.hidden = (128, 128, 128)
  config.latent_dim = 16
  config.batch_size = 256
  config.steps = 20000
  config.learning_rate = 1e-4
  config.seed = 0
  config.log_every = 500
  config.checkpoint_every = 1000
  return config
