"""DCGAN on `mnist5k`: non-saturating loss, width 32 (0.9M generator params).

  python launch.py --config=configs/train_dcgan_mnist5k.py \
      --workdir=/tmp/dcgan_mnist5k --export=dcgan_mnist5k

Committed as `dcgan_mnist5k`: 6,000 steps (96 epochs), 1,995 s on the 2-core
CPU (shared with up to three other training runs; alone it runs 6.6
steps/s, about 15 minutes). Against the 4,000 training digits, 5,000
samples, k = 3, in the (multilayer) mnist5k embedding: precision 0.39,
recall 0.79, FID 0.059 -- short of the 0.7 precision target. For scale, the
1,000 held-out real digits read precision 0.85, recall 0.85.

What else was tried on this CPU (docs/embedders.md, "Stronger GANs"), none
better on both counts: DiffAugment (translation, cutout) with EMA 0.999,
8,000 steps: 0.35 / 0.43; DiffAugment (translation) with EMA 0.999: 0.42 /
0.37 at 8,000 steps, still rising by 0.002 / 0.03 per 2,000; width 64 runs
2.4 steps/s (12,000 steps would take 85 min alone), not finished;
truncated latents (psi 0.7: 0.41 / 0.75; 0.5: 0.29 / 0.55); sampling with
batch statistics instead of the running averages: 0.40 / 0.79.
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.kind = "train"  # launch.py trains it
  config.dataset = "mnist5k"
  # A folder (str); None: $LSH_GAN_DATA_DIR or ~/tensorflow_datasets.
  config.data_dir = config_dict.placeholder(str)
  config.architecture = "dcgan"
  config.loss = "nonsaturating"
  config.width = 32
  config.latent_dim = 100
  config.batch_size = 64
  config.critic_steps = 1
  config.steps = 6000
  config.learning_rate = 2e-4
  config.b1 = 0.5
  config.b2 = 0.999
  # Weight averaging did not help here: EMA 0.999 read precision 0.43,
  # recall 0.77 against the last iterate's 0.46, 0.77 (in the previous,
  # penultimate-layer embedding).
  config.ema_decay = 0.0
  config.seed = 0
  config.log_every = 200
  config.checkpoint_every = 500
  return config
