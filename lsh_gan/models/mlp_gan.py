"""MLP generator and discriminator for 2-D Gaussian mixtures (ring8, grid25).

The usual mode-dropping toy: a few ReLU layers map a Gaussian latent to the
plane; the discriminator mirrors it and returns one logit.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class MLPGenerator(nn.Module):
  """z (n, latent_dim) -> points (n, out_dim)."""
  hidden: Sequence[int] = (128, 128, 128)
  out_dim: int = 2

  @nn.compact
  def __call__(self, z: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    del train  # no batch norm: the same function in training and inference
    x = z
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
      # Each hidden layer's output, for distillation (a no-op unless the
      # "intermediates" collection is mutable).
      self.sow("intermediates", "features", x)
    return nn.Dense(self.out_dim)(x)


class MLPDiscriminator(nn.Module):
  """points (n, in_dim) -> logits (n,)."""
  hidden: Sequence[int] = (128, 128, 128)

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    for width in self.hidden:
      x = nn.leaky_relu(nn.Dense(width)(x), 0.2)
    return nn.Dense(1)(x)[:, 0]
