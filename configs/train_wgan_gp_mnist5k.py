"""WGAN-GP on `mnist5k`: the DCGAN generator and a critic without batch norm,
Wasserstein loss with a gradient penalty (weight 10), 5 critic steps per
generator step, Adam(2e-4, 0.5, 0.9). Width 16 (0.3M generator parameters):
each step runs the generator six times, and at width 32 that was too slow
for this 2-core CPU.

Committed as `wgan_gp_mnist5k`: 3,000 steps (15,000 critic steps), 1,757 s
on the 2-core CPU (shared with up to three other training runs). Against the
4,000 training digits, 5,000 samples, k = 3, in the (multilayer) mnist5k
embedding: precision 0.29, recall 0.75, FID 0.079 -- short of the 0.7
precision target. For scale, the 1,000 held-out real digits read precision
0.85, recall 0.85.

  python launch.py --config=configs/train_wgan_gp_mnist5k.py \
      --workdir=/tmp/wgan_gp_mnist5k --export=wgan_gp_mnist5k
"""

import ml_collections

from configs import train_dcgan_mnist5k


def get_config() -> ml_collections.ConfigDict:
  config = train_dcgan_mnist5k.get_config()
  config.architecture = "wgan_gp"
  config.loss = "wgan_gp"
  config.gp_weight = 10.0
  config.width = 16
  config.critic_steps = 5
  config.steps = 3000
  config.b2 = 0.9
  config.checkpoint_every = 250
  return config
