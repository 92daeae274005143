"""A small CNN classifier whose penultimate layer is the embedding.

Convolutions (3x3, ReLU; every one after the first has stride 2) and a
dense layer of `embed_dim` units with ReLU: that layer's activations are the
embedding the metrics compare. A last dense layer maps it to class logits.
No batch norm and no dropout, so the model is a pure function of its
parameters with no extra state.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class Classifier(nn.Module):
  """Image classifier; `embed` gives the penultimate activations.

  Attributes:
    features: channels of the convolutions.
    embed_dim: size of the embedding (the penultimate dense layer).
    num_classes: number of logits.
  """
  features: Sequence[int] = (32, 64, 64)
  embed_dim: int = 128
  num_classes: int = 10

  def setup(self):
    self.convs = [nn.Conv(channels, (3, 3), strides=1 if i == 0 else 2)
                  for i, channels in enumerate(self.features)]
    self.hidden = nn.Dense(self.embed_dim)
    self.head = nn.Dense(self.num_classes)

  def embed(self, images: jnp.ndarray) -> jnp.ndarray:
    """(n, H, W, C) images in [-1, 1] -> (n, embed_dim) float32."""
    x = images
    for conv in self.convs:
      x = nn.relu(conv(x))
    return nn.relu(self.hidden(x.reshape(x.shape[0], -1)))

  def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
    """(n, H, W, C) images -> (n, num_classes) logits."""
    return self.head(self.embed(images))
