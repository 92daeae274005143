"""Classifier embedder for `mnist5k` (28x28): the multilayer embedding (288).

  python launch.py --config=configs/train_embedder_mnist5k.py \
      --workdir=/tmp/embedder_mnist5k --export=embedder_mnist5k

Committed as `embedder_mnist5k`: 2,000 steps in 110 s on the 2-core CPU;
test accuracy 0.976 on the 1,000 held-out digits.
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.kind = "train"  # launch.py trains it
  config.architecture = "classifier"  # lsh_gan.models.build
  config.dataset = "mnist5k"
  # A folder (str); None: $LSH_GAN_DATA_DIR or ~/tensorflow_datasets.
  config.data_dir = config_dict.placeholder(str)
  config.features = (32, 64, 64)
  config.embed_dim = 128
  config.num_classes = 10
  config.batch_size = 64
  config.steps = 2000
  # Each convolution's mean activations and the 128 penultimate units, each
  # unit-normalised (models.classifier); see docs/embedders.md.
  config.embedding = "multilayer"
  config.augment_shift = 1  # random shifts of up to 1 pixel
  config.learning_rate = 1e-3
  config.seed = 0
  config.log_every = 100
  config.checkpoint_every = 500
  return config
