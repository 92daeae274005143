"""A small CNN classifier whose features are the embedding.

Convolutions (3x3, ReLU; every one after the first has stride 2) and a
dense layer of `embed_dim` units with ReLU, then a last dense layer to class
logits. No batch norm and no dropout, so the model is a pure function of its
parameters with no extra state.

The embedding the metrics compare (`embedding`):

  "multilayer"   each convolution's activations averaged over the image and
                 the penultimate layer's activations, each vector scaled to
                 unit length, concatenated: sum(features) + embed_dim
                 numbers, every block of norm 1 (0 where all its
                 activations are 0). The default embedders use it: images
                 that are not digits (noise, blank or checkerboard images)
                 land far from every digit, where the penultimate layer
                 alone puts many of them among the digits (docs/embedders.md).
  "penultimate"  the penultimate layer's activations as they are (embed_dim).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

EMBEDDINGS = ("multilayer", "penultimate")


class Classifier(nn.Module):
  """Image classifier; `embed` gives the penultimate activations.

  Attributes:
    features: channels of the convolutions.
    embed_dim: size of the embedding (the penultimate dense layer).
    num_classes: number of logits.
    embedding: "multilayer" or "penultimate" (see the module docstring).
  """
  features: Sequence[int] = (32, 64, 64)
  embed_dim: int = 128
  num_classes: int = 10
  embedding: str = "penultimate"

  def setup(self):
    if self.embedding not in EMBEDDINGS:
      raise ValueError(f"embedding={self.embedding!r} must be one of "
                       f"{', '.join(EMBEDDINGS)}")
    self.convs = [nn.Conv(channels, (3, 3), strides=1 if i == 0 else 2)
                  for i, channels in enumerate(self.features)]
    self.hidden = nn.Dense(self.embed_dim)
    self.head = nn.Dense(self.num_classes)

  def _layers(self, images):
    x, pooled = images, []
    for conv in self.convs:
      x = nn.relu(conv(x))
      pooled.append(jnp.mean(x, axis=(1, 2)))
    return pooled, nn.relu(self.hidden(x.reshape(x.shape[0], -1)))

  def embed(self, images: jnp.ndarray) -> jnp.ndarray:
    """(n, H, W, C) images in [-1, 1] -> (n, embedding_size) float32."""
    pooled, hidden = self._layers(images)
    if self.embedding == "penultimate":
      return hidden
    unit = lambda v: v / jnp.maximum(jnp.linalg.norm(v, axis=-1,
                                                     keepdims=True), 1e-12)
    return jnp.concatenate([unit(v) for v in pooled + [hidden]], axis=-1)

  @property
  def embedding_size(self) -> int:
    if self.embedding not in EMBEDDINGS:
      raise ValueError(f"embedding={self.embedding!r} must be one of "
                       f"{', '.join(EMBEDDINGS)}")
    return self.embed_dim + (sum(self.features)
                             if self.embedding == "multilayer" else 0)

  def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
    """(n, H, W, C) images -> (n, num_classes) logits."""
    return self.head(self._layers(images)[1])
