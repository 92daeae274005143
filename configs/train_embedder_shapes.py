"""Factor classifier and embedder for `shapes` (32x32 RGB, 96 modes).

  python launch.py --config=configs/train_embedder_shapes.py \
      --workdir=/tmp/embedder_shapes --export=embedder_shapes

A classifier of the 96 modes (shape x colour x size x position): its
predictions give a generator's exact mode coverage
(`lsh_gan.train.mode_coverage`), and its multilayer features are the
embedding the metrics of `shapes` use. No shifts: the position is a factor.
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.kind = "train"  # launch.py trains it
  config.architecture = "classifier"  # lsh_gan.models.build
  config.dataset = "shapes"
  # A folder (str); None: $LSH_GAN_DATA_DIR or ~/tensorflow_datasets.
  config.data_dir = config_dict.placeholder(str)
  config.features = (32, 64, 128)
  config.embed_dim = 128
  config.num_classes = 96
  config.embedding = "multilayer"
  config.batch_size = 64
  config.steps = 3000
  config.augment_shift = 0
  config.learning_rate = 1e-3
  config.seed = 0
  config.log_every = 100
  config.checkpoint_every = 500
  return config
