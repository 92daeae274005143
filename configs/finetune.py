"""Post-training compression against fine-tuning at matched sizes
(docs/finetune.md), for any committed image generator.

  python launch.py --config=configs/finetune.py:dcgan_digits --seeds=3 \
      --workdir=runs/finetune/dcgan_digits

The argument after ':' names the generator (default dcgan_digits). Every
other field is the default sweep's (configs/sweep_dcgan_mnist5k.py). The
points:
- 2-bit k-means codebooks, post-training, quantization-aware and
  discriminator-supervised (9-13x smaller than float32 on the committed
  GANs: scales, codebooks and batch-norm averages stay float32);
- 90% sparse with 4-bit codes, the same three (11-16x);
- a distilled generator whose float32 variables are as near as a width
  allows to the 2-bit point's size, and the best sub-network of a width
  search within the distilled one's MACs (per-layer shares from half the
  distilled one's to four times it).
The sizes are measured, not assumed: every row of results.csv has its
stored_bytes, compression_ratio, macs and params. Fine-tuning under a
transform takes a tenth of the GAN's training steps (Yu & Pool fine-tune
for 1-10% of training); the slimmer generators, trained anew, as many as
the GAN's training. Each is trained once in the workdir and reused by every
seed.
"""

import math

import ml_collections

from configs import sweep_dcgan_mnist5k
from lsh_gan import compress
from lsh_gan import finetune
from lsh_gan import pretrained

TRANSFORMS = ("quantize(bits=2,grid='kmeans')",
              "prune(sparsity=0.9)+quantize(bits=4)")
METHODS = ("quantization_aware", "discriminator_supervised")


def matched_width(generator: str, transform: str = TRANSFORMS[0]) -> int:
  """The distilled width whose stored size is nearest (in ratio) to the
  transform's on the committed generator."""
  _, dense = pretrained.generator(generator)
  target = compress.report(dense, compress.parse(transform).pack(
      dense)).total.stored_bytes
  size = lambda w: finetune.stored_bytes_of(generator, w)
  # The size grows with the width: bisect for the first width at or above
  # the target, then take it or the one before (a few traces, not one per
  # width).
  lo, hi = 1, finetune.teacher_channels(generator)[-1]
  while lo < hi:
    mid = (lo + hi) // 2
    lo, hi = (mid + 1, hi) if size(mid) < target else (lo, mid)
  return min({max(1, lo - 1), lo},
             key=lambda w: abs(math.log(size(w) / target)))


def points(generator: str) -> tuple[str, ...]:
  """The sweep points for a committed generator."""
  steps = pretrained.info(generator)["steps"]
  tune = max(steps // 10, 1)
  width = matched_width(generator)
  budget = finetune.macs_of(generator, width)
  # Per-layer shares from half the distilled one's to four times it: the
  # distilled shape is one candidate within the budget, and sub-networks
  # narrower in the costly layers and wider in the cheap ones are others
  # (5 to 36 candidates on the committed GANs).
  share = width / finetune.teacher_channels(generator)[-1]
  choices = tuple(sorted({round(share * f, 4) for f in (0.5, 1, 2, 4)
                          if share * f <= 1} | {1.0}))
  out = []
  for transform in TRANSFORMS:
    out.append(transform)
    out += [f"{transform} >> {m}(steps={tune})" for m in METHODS]
  out.append(f"distill(width={width}, steps={steps})")
  out.append(f"search(budget_macs={budget}, supernet_steps={steps}, "
             f"steps={tune}, choices={choices})")
  return tuple(out)


def get_config(generator: str = "dcgan_digits") -> ml_collections.ConfigDict:
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = generator
  config.points = ";".join(points(generator))
  return config
