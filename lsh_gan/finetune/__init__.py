"""Fine-tuning a compressed generator: what post-training compression is
weighed against.

The paper this project reimplements compresses after training, with no
fine-tuning. The methods here fine-tune a committed GAN's generator under
the same transform, or train a slimmer one from it, so that one sweep
compares them at equal size:

  from lsh_gan import compress, finetune
  t = compress.parse("prune(sparsity=0.8)+quantize(bits=4)")
  out = finetune.discriminator_supervised("dcgan_digits", t, steps=500,
                                          workdir="/tmp/ft")
  samples = sample_fn(out.variables, key, 1000)   # t's constraints hold
  stored = out.transform.pack(out.weights)        # its real storage
  sample_fn, variables = finetune.distill("dcgan_digits", width=16,
                                          steps=2000)

Under a transform (`lsh_gan.finetune.FineTuned`):
- `quantization_aware`: the compressed generator is trained to reproduce
  the dense generator's samples on the same latents (mean absolute error),
  with straight-through gradients through the transform.
- `discriminator_supervised`: our reading of Yu & Pool (NeurIPS 2020,
  "Self-Supervised GAN Compression"): the committed generator's own trained
  discriminator supervises the compressed generator.
The transform's constraints hold after every step: the forward pass uses
``transform(weights)`` exactly (its gradient passed straight through to the
float weights), with each prune step's mask fixed where it fell on the
dense weights (`freeze`; those entries' gradient is masked), so a pruned
weight stays pruned, a quantized one on its grid and a clipped one inside
its bound; step 0 is the post-training generator, bit for bit.

Slimmer generators (`lsh_gan.finetune.Distilled`), after GAN Compression
(Li et al., CVPR 2020):
- `distill`: fewer channels, trained on reconstruction, intermediate
  features through 1x1 adaptors and the GAN loss.
- `search`: a once-for-all supernet over per-layer widths, the best
  sub-network under a MACs budget by our metrics, then fine-tuned.

For an image-to-image GAN (pix2pix), after Ganjdanesh et al. (AAAI 2024):
- `collaborative_prune`: the generator's and discriminator's channels
  chosen together by two pruning agents that exchange feedback, under a
  MACs budget, preserving the local density structure of the generator's
  outputs (`local_density_loss`); then the pruned pair fine-tuned.

A launcher sweep holds fine-tuned points beside post-training ones, one
string each (`parse_recipe`): "prune(sparsity=0.8) >>
discriminator_supervised(steps=2000)", "distill(width=16, steps=3000)".

docs/finetune.md gives our reading of each paper and what it leaves open.
Runs are resumable (Orbax checkpoints in `workdir`), seeded and logged like
training.
"""

from lsh_gan.finetune._collaborative import collaborative_prune
from lsh_gan.finetune._collaborative import local_density_loss
from lsh_gan.finetune._compressed import DISCRIMINATOR_WEIGHT
from lsh_gan.finetune._compressed import discriminator_supervised
from lsh_gan.finetune._compressed import FineTuned
from lsh_gan.finetune._compressed import freeze
from lsh_gan.finetune._compressed import frozen_zeros
from lsh_gan.finetune._compressed import METHODS
from lsh_gan.finetune._compressed import quantization_aware
from lsh_gan.finetune._distill import CHOICES
from lsh_gan.finetune._distill import distill
from lsh_gan.finetune._distill import macs_of
from lsh_gan.finetune._distill import Distilled
from lsh_gan.finetune._distill import search
from lsh_gan.finetune._distill import stored_bytes_of
from lsh_gan.finetune._distill import teacher_channels
from lsh_gan.finetune._recipe import parse_recipe
from lsh_gan.finetune._recipe import Recipe

__all__ = ("CHOICES", "DISCRIMINATOR_WEIGHT", "Distilled", "FineTuned",
           "METHODS", "collaborative_prune", "discriminator_supervised",
           "distill", "freeze", "frozen_zeros", "local_density_loss",
           "macs_of", "parse_recipe", "quantization_aware", "Recipe",
           "search", "stored_bytes_of", "teacher_channels")
