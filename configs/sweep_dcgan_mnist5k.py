"""The default experiment: the committed DCGAN on mnist5k, compressed.

  python launch.py                      # this config, workdir /tmp/lsh_gan
  python launch.py --config=configs/sweep_dcgan_mnist5k.py --workdir=DIR \
      --config.num_samples=2000 --config.add_points="quantize(bits=5)"

Every point of the sweep compresses the generator's variables, generates
5,000 samples from the same latents, embeds them with the mnist5k embedder
(288 multilayer features, docs/embedders.md) and scores them against the
4,000 training images with every metric. On the 2-core CPU it took 2 min 17 s
with nothing else running (peak memory 3.1 GB). Expected numbers (KNN
precision / recall / FID): baseline 0.393 / 0.772 / 0.054, quantize(bits=4)
0.382 / 0.772 / 0.059, quantize(bits=3) 0.345 / 0.726 / 0.084,
quantize(bits=2) 0.000 / 0.000 / 1.99 (checkerboard noise).
"""

import ml_collections
from ml_collections import config_dict

# The default sweep, as transform strings (see lsh_gan.compress.parse).
POINTS = (
    "quantize(bits=16)", "quantize(bits=8)", "quantize(bits=6)",
    "quantize(bits=4)", "quantize(bits=3)", "quantize(bits=2)",
    "quantize(bits=1)", "quantize(bits=4,axis=-1)",
    "quantize(bits=2,axis=-1)", "clip(percentile=99.9)",
    "clip(percentile=99)", "clip(percentile=95)", "prune(sparsity=0.5)",
    "prune(sparsity=0.8)", "prune(sparsity=0.95)")


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.kind = "sweep"  # launch.py runs it (lsh_gan.pipeline)
  config.generator = "dcgan_mnist5k"  # a name of lsh_gan.pretrained
  # A folder (str); None: $LSH_GAN_DATA_DIR or ~/tensorflow_datasets.
  config.data_dir = config_dict.placeholder(str)
  config.split = "train"  # the reference: the split the GAN was trained on
  # "dataset": the committed embedder of the generator's dataset;
  # "inception_v3": the FID Inception-v3 (2,048 features), its weights from
  # inception_weights (a path; None: $LSH_GAN_INCEPTION_WEIGHTS).
  config.embedder = "dataset"
  config.inception_weights = config_dict.placeholder(str)
  config.num_reference = config_dict.placeholder(int)  # None: whole split
  config.num_samples = 5000  # generated per sweep point
  config.k = 3  # KNN precision/recall and LSH+KNN
  config.density_k = 5  # density and coverage
  config.lsh_tables = 32  # LSH-only defaults (lsh_gan.metrics.lsh)
  config.lsh_hashes = 8
  config.lsh_knn_tables = 4
  config.seed = 0  # latents, LSH hashes and KID subsets
  config.grid_samples = 64  # images per sample grid (0: no grids)
  config.points = ";".join(POINTS)  # ';'-separated transform strings
  config.add_points = ""  # more points, e.g. "quantize(bits=5);prune(0.3)"
  # Devices to generate, embed and score on, data-parallel (-1: all, of
  # every process; 1: one device). The numbers do not depend on it.
  config.mesh = ml_collections.ConfigDict()
  config.mesh.devices = -1
  return config
