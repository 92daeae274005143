"""DCGAN generator for 28x28 images (Radford et al. 2015), in Flax Linen.

References: A. Radford, L. Metz, S. Chintala, "Unsupervised Representation
Learning with Deep Convolutional Generative Adversarial Networks",
https://arxiv.org/abs/1511.06434
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class Generator(nn.Module):
  """z (N, latent_dim) -> images (N, 28, 28, channels) in [-1, 1].

  Dense to 7x7xwidth*4, then transposed convolutions 7 -> 7 -> 14 -> 28, with
  batch norm and leaky ReLU between them and tanh at the end. The variables
  are ``{"params": ..., "batch_stats": ...}``; generation is a pure function
  of them, so compressed variables generate directly.

  Attributes:
    width: channels of the last hidden layer (64 gives 2.3M parameters).
    channels: image channels.
  """
  width: int = 64
  channels: int = 1

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = False) -> jax.Array:
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)
    x = nn.Dense(7 * 7 * self.width * 4, use_bias=False)(z)
    x = nn.leaky_relu(norm()(x), 0.2)
    x = x.reshape((z.shape[0], 7, 7, self.width * 4))
    x = nn.ConvTranspose(self.width * 2, (5, 5), strides=(1, 1),
                         use_bias=False)(x)
    x = nn.leaky_relu(norm()(x), 0.2)
    x = nn.ConvTranspose(self.width, (5, 5), strides=(2, 2), use_bias=False)(x)
    x = nn.leaky_relu(norm()(x), 0.2)
    x = nn.ConvTranspose(self.channels, (5, 5), strides=(2, 2))(x)
    return jnp.tanh(x)
