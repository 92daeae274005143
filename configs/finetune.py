"""Post-training compression against fine-tuning at matched sizes
(docs/finetune.md), for any committed image generator.

  python launch.py --config=configs/finetune.py:dcgan_digits --seeds=3 \
      --workdir=runs/finetune/dcgan_digits

The argument after ':' names the generator (default dcgan_digits). Every
other field is the default sweep's (configs/sweep_dcgan_mnist5k.py). The
points, about 16x smaller than the float32 generator each:
- 2-bit k-means codebooks (16x), post-training, quantization-aware and
  discriminator-supervised;
- 90% sparse with 4-bit codes (about 22x), the same three;
- a distilled generator of a quarter of the teacher's channels (about 16x
  fewer parameters), and the best sub-network of a width search within the
  distilled one's MACs.
Fine-tuning under a transform takes a tenth of the GAN's training steps
(Yu & Pool fine-tune for 1-10% of training); the slimmer generators, which
are trained anew, as many as the GAN's training. Each is trained once in
the workdir and reused by every seed.
"""

import ml_collections

from configs import sweep_dcgan_mnist5k
from lsh_gan import finetune
from lsh_gan import pretrained

TRANSFORMS = ("quantize(bits=2,grid='kmeans')",
              "prune(sparsity=0.9)+quantize(bits=4)")
METHODS = ("quantization_aware", "discriminator_supervised")


def points(generator: str) -> tuple[str, ...]:
  """The sweep points for a committed generator."""
  info = pretrained.info(generator)
  steps = info["steps"]
  tune = max(steps // 10, 1)
  teacher = finetune.teacher_channels(generator)
  width = max(teacher[-1] // 4, 1)
  budget = finetune.macs_of(generator, width)
  out = []
  for transform in TRANSFORMS:
    out.append(transform)
    out += [f"{transform} >> {m}(steps={tune})" for m in METHODS]
  out.append(f"distill(width={width}, steps={steps})")
  out.append(f"search(budget_macs={budget}, supernet_steps={steps}, "
             f"steps={tune})")
  return tuple(out)


def get_config(generator: str = "dcgan_digits") -> ml_collections.ConfigDict:
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = generator
  config.points = ";".join(points(generator))
  return config
