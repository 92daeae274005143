"""The committed pix2pix (outlines -> digits), compressed after training.

  python launch.py --config=configs/sweep_pix2pix_edges2digits.py \
      --workdir=/tmp/pix2pix_sweep

Every point compresses the generator's variables, translates the 1,000
outlines of edges2digits' test split, embeds the outputs with the mnist5k
embedder and scores them against the 1,000 test digits with every metric,
and each output against its own target (L1, PSNR, SSIM) and input (edge
F1: its outline against the input edges), `lsh_gan.metrics.paired`. A
conditional sweep runs on one device. docs/image_to_image.md reports it.
"""

import ml_collections

from configs import sweep_dcgan_mnist5k

# The default sweep, as transform strings (see lsh_gan.compress.parse).
POINTS = (
    "quantize(bits=8)", "quantize(bits=6)", "quantize(bits=4)",
    "quantize(bits=3)", "quantize(bits=2)", "quantize(bits=2,grid='kmeans')",
    "quantize(bits=4,axis=-1)", "clip(percentile=99)", "prune(sparsity=0.5)",
    "prune(sparsity=0.8)", "prune(sparsity=0.9)+quantize(bits=4)")


def get_config() -> ml_collections.ConfigDict:
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = "pix2pix_edges2digits"
  # The pairs: their conditions are translated, their targets are the
  # reference (held out from training); the embedder is the dataset's
  # (edges2digits' targets are mnist5k digits: the mnist5k embedder).
  config.split = "test"
  config.num_samples = 1000  # pairs translated per point: the whole split
  config.points = ";".join(POINTS)
  return config
