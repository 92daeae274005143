"""pix2pix on `edges2digits`: a digit drawn from its outline.

  python launch.py --config=configs/train_pix2pix_edges2digits.py \
      --workdir=/tmp/pix2pix_edges2digits --export=pix2pix_edges2digits

The authors' recipe (lsh_gan.models.pix2pix, docs/image_to_image.md) at the
scale of 28x28 digits: a 5-level U-Net of width 16 (1.04M parameters, the
28x28 input padded to 32x32) and a 2-layer PatchGAN of width 32, L1 weight
100, Adam 2e-4 (0.5, 0.999) with the rate falling linearly to 0 over the
second half, batch 32 (the authors use 1-4 on larger images).
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.kind = "train"  # launch.py trains it
  config.dataset = "edges2digits"
  # A folder (str); None: $LSH_GAN_DATA_DIR or ~/tensorflow_datasets.
  config.data_dir = config_dict.placeholder(str)
  config.architecture = "pix2pix"
  config.width = 16
  config.levels = 5
  config.d_width = 32
  config.n_layers = 2
  config.l1_weight = 100.0
  config.augment_shift = 0
  config.batch_size = 32
  config.steps = 6000
  config.decay_steps = 3000
  config.learning_rate = 2e-4
  config.b1 = 0.5
  config.b2 = 0.999
  config.seed = 0
  config.log_every = 200
  config.checkpoint_every = 500
  return config
