"""MLP GAN on `ring8` (2-D mixture). Not yet tuned: no checkpoint committed.

First measurement on this 2-core CPU (157 s of training): 77% of samples
within 3 std of a mode, but only 3 of 8 modes hold a fair share (mode
collapse, as vanilla GANs do on this toy); KNN precision 0.75, recall 1.00.
5,000 steps at 2e-4: 25%, 4 of 8.

  python -m lsh_gan.train --config=configs/train_mlp_gan_ring8.py \
      --workdir=/tmp/mlp_gan_ring8 --export=mlp_gan_ring8
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "ring8"
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
