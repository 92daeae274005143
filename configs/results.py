"""The full compression sweep of docs/results.md, for any pre-trained generator.

  python launch.py --config=configs/results.py:dcgan_mnist5k --seeds=3 \
      --workdir=runs/results/dcgan_mnist5k

The argument after ':' names the generator (`lsh_gan.pretrained.generators()`;
default dcgan_mnist5k). Every other field is the default sweep's
(configs/sweep_dcgan_mnist5k.py): 5,000 samples per point, scored against the
generator's training split. The points: quantization at 16, 8, 6, 5, 4, 3,
2 and 1 bits, per tensor and per output channel (axis=-1); clipping at the
99.9th, 99th, 95th and 90th percentile of |w|; magnitude pruning at 25%, 50%,
75% and 90% sparsity. A conditional generator (pix2pix_edges2digits)
translates the 1,000 pairs of its test split instead, as
configs/sweep_pix2pix_edges2digits.py does. With --seeds=3 each point runs at seeds 0, 1, 2 (the
latents, LSH hashes and KID subsets change) and summary.csv holds the mean
and standard deviation. Run times on the 2-core CPU are in docs/results.md.
"""

import ml_collections

from configs import sweep_dcgan_mnist5k

BITS = (16, 8, 6, 5, 4, 3, 2, 1)
CLIP_PERCENTILES = (99.9, 99, 95, 90)
SPARSITIES = (0.25, 0.5, 0.75, 0.9)
POINTS = (tuple(f"quantize(bits={b})" for b in BITS) +
          tuple(f"quantize(bits={b},axis=-1)" for b in BITS) +
          tuple(f"clip(percentile={p})" for p in CLIP_PERCENTILES) +
          tuple(f"prune(sparsity={s})" for s in SPARSITIES))


def get_config(generator: str = "dcgan_mnist5k") -> ml_collections.ConfigDict:
  if generator == "pix2pix_edges2digits":
    from configs import sweep_pix2pix_edges2digits  # pylint: disable=g-import-not-at-top
    config = sweep_pix2pix_edges2digits.get_config()
  else:
    config = sweep_dcgan_mnist5k.get_config()
  config.generator = generator
  config.points = ";".join(POINTS)
  return config
