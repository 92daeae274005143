"""DCGAN generator and discriminator (Radford et al. 2015), in Flax Linen.

One pair of modules serves every image size of the project: 28x28 (MNIST),
8x8 (scikit-learn digits), 32x32 (CIFAR-10) and 64x64 (CelebA). The
generator starts from a `start x start` map, where `start` is the image side
halved until it is at most 7 (28 -> 7, 8 -> 4, 32 -> 4, 64 -> 4), and
doubles it with stride-2 transposed convolutions. The discriminator mirrors
it with stride-2 convolutions.

The WGAN-GP critic (Gulrajani et al. 2017) is the discriminator with
`norm="none"`: batch norm would make the gradient penalty, taken per
example, depend on the rest of the batch.

References:
  A. Radford, L. Metz, S. Chintala, "Unsupervised Representation Learning
  with Deep Convolutional Generative Adversarial Networks",
  https://arxiv.org/abs/1511.06434
  I. Gulrajani et al., "Improved Training of Wasserstein GANs",
  https://arxiv.org/abs/1704.00028
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def upsamplings(side: int) -> int:
  """Stride-2 steps from the generator's first map (side <= 7) to `side`."""
  steps, start = 0, side
  while start > 7 and start % 2 == 0:
    start //= 2
    steps += 1
  if start > 7 or steps == 0:
    raise ValueError(f"image side {side} is not a map of side 4 to 7 doubled "
                     "one or more times (8, 14, 28, 32, 64, ...)")
  if start < 4:
    raise ValueError(f"image side {side} starts from a {start}x{start} map "
                     "(at least 4x4 is needed)")
  return steps


class Generator(nn.Module):
  """z (N, latent_dim) -> images (N, *image_shape) in [-1, 1].

  Dense to a start x start map of width * 2**n channels (n stride-2 steps),
  a stride-1 transposed convolution halving the channels, n - 1 stride-2
  ones halving them again, and a last stride-2 one to the image channels;
  batch norm and leaky ReLU between them and tanh at the end. For 28x28 this
  is 7x7x4w -> 7x7x2w -> 14x14xw -> 28x28xC.

  The variables are ``{"params": ..., "batch_stats": ...}``; generation
  (train=False) is a pure function of them, so compressed variables generate
  directly.

  Each hidden layer's output (after its activation) is sown into the
  "intermediates" collection as "features" (a no-op unless that collection
  is mutable): distillation (`lsh_gan.finetune.distill`) matches them.

  Attributes:
    width: channels of the last hidden layer (64 at 28x28 gives 2.3M
      parameters, 32 gives 0.84M).
    image_shape: (H, W, C) with H == W.
    channels: the hidden layers' channels, first to last (one per hidden
      layer: `hidden_channels(width, image_shape)` has as many), instead of
      those `width` sets; the slimmer generators of distillation and width
      search. Parameter names are the same at any channels.
  """
  width: int = 64
  image_shape: Sequence[int] = (28, 28, 1)
  channels: Sequence[int] | None = None

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = False) -> jax.Array:
    side, _, out_channels = self.image_shape
    steps = upsamplings(side)
    start = side // 2 ** steps
    hidden = (hidden_channels(self.width, self.image_shape)
              if self.channels is None else tuple(self.channels))
    if len(hidden) != steps + 1 or min(hidden) < 1:
      raise ValueError(f"channels={self.channels!r} must be {steps + 1} "
                       f"positive channel counts for {side}x{side} images")
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)
    x = nn.Dense(start * start * hidden[0], use_bias=False)(z)
    x = nn.leaky_relu(norm()(x), 0.2)
    x = x.reshape((z.shape[0], start, start, hidden[0]))
    self.sow("intermediates", "features", x)
    for stride, features in zip([1] + [2] * (steps - 1), hidden[1:]):
      x = nn.ConvTranspose(features, (5, 5), strides=(stride, stride),
                           use_bias=False)(x)
      x = nn.leaky_relu(norm()(x), 0.2)
      self.sow("intermediates", "features", x)
    x = nn.ConvTranspose(out_channels, (5, 5), strides=(2, 2))(x)
    return jnp.tanh(x)


def hidden_channels(width: int, image_shape: Sequence[int]) -> tuple[int, ...]:
  """The generator's hidden channels at `width`, first to last: width *
  2**n, then halved n times (n stride-2 steps), e.g. (4w, 2w, w) at 28x28."""
  steps = upsamplings(image_shape[0])
  return tuple(width * 2 ** (steps - i) for i in range(steps + 1))


class Discriminator(nn.Module):
  """images (N, H, W, C) -> logits (N,).

  Stride-2 5x5 convolutions of width, 2 width, ... channels until the map
  side is at most 7 (preceded by a stride-1 one when a single stride-2 step
  gets there, as for 8x8), then one dense logit. Leaky ReLU (0.2); batch norm
  after every convolution but the first when norm == "batch" (DCGAN; batch
  statistics are always used, so there is no state to keep), none when
  norm == "none" (the WGAN-GP critic).
  """
  width: int = 64
  norm: str = "batch"

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    if self.norm not in ("batch", "none"):
      raise ValueError(f"norm={self.norm!r} must be 'batch' or 'none'")
    steps = upsamplings(images.shape[1])
    # At least two convolutions: one downsampling (8x8 images) gets a
    # stride-1 convolution first.
    strides = [1] * max(2 - steps, 0) + [2] * steps
    x, features = images, self.width
    for i, stride in enumerate(strides):
      x = nn.Conv(features, (5, 5), strides=(stride, stride))(x)
      if i and self.norm == "batch":
        x = nn.BatchNorm(use_running_average=False)(x)
      x = nn.leaky_relu(x, 0.2)
      features *= 2
    return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]
