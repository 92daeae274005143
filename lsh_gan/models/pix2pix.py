"""pix2pix (Isola et al. 2017): a U-Net generator and a PatchGAN
discriminator for paired image-to-image translation, in Flax Linen.

Our reading of the authors' code (`UnetGenerator`, `NLayerDiscriminator`),
scaled to 28x28 digits (docs/image_to_image.md gives the whole reading):

  U-Net   `levels` stride-2 4x4 convolutions down to a 1x1 bottleneck and
          as many stride-2 4x4 transposed convolutions back up; each
          decoder level's output is concatenated with the encoder output of
          the same resolution (the skip connections). Channels double per
          level from `width`, capped at 8 x width; leaky ReLU (0.2) before
          each down-convolution but the first, ReLU before each up one,
          batch norm after each but the first down, the bottleneck and the
          last up (which has a bias and a tanh). An image whose side is not
          a multiple of 2**levels is padded with the background (-1) to the
          next one and the output cropped back: 28 -> 32 for 5 levels, the
          fewest the authors' `UnetGenerator` builds (their stock ones have
          7 and 8; no dropout: theirs sits only in a sixth level and
          deeper).
  PatchGAN  `n_layers` stride-2 4x4 convolutions of width, 2 width, ...
          (capped at 8 x width), a stride-1 one doubling again, and a
          stride-1 one to one logit per patch; leaky ReLU (0.2), batch norm
          after all but the first and the last. It sees the condition and
          an image concatenated on the channel axis. With n_layers=2 on
          28x28 its 5x5 logits each see 34x34 pixels (padding included),
          the whole digit.

Deviation from the authors' code: the generator's batch norm uses its
running averages when generating (train=False), as the DCGAN's does, so an
output is a function of its own input alone; the authors' test mode keeps
batch statistics. The discriminator always uses batch statistics, as the
DCGAN discriminator does.

References:
  P. Isola, J.-Y. Zhu, T. Zhou, A. A. Efros, "Image-to-Image Translation
  with Conditional Adversarial Networks", https://arxiv.org/abs/1611.07004
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def level_channels(width: int, levels: int) -> tuple[int, ...]:
  """The U-Net encoder's channels, outermost level first: width * 2**i,
  capped at 8 * width (the authors' widths, e.g. 16, 32, 64, 128, 128)."""
  return tuple(width * min(2 ** i, 8) for i in range(levels))


def patch_channels(width: int, n_layers: int) -> tuple[int, ...]:
  """The PatchGAN's convolutions' channels, first to last: width * 2**i,
  capped at 8 * width (n_layers + 1 of them)."""
  return tuple(width * min(2 ** i, 8) for i in range(n_layers + 1))


def padded_side(side: int, levels: int) -> int:
  """The side a U-Net of `levels` works at: `side` rounded up to a multiple
  of 2**levels."""
  step = 2 ** levels
  return -(-side // step) * step


class UNetGenerator(nn.Module):
  """conditions (N, H, W, C_in) in [-1, 1] -> images (N, H, W, out_channels)
  in [-1, 1].

  The variables are ``{"params": ..., "batch_stats": ...}``; generation
  (train=False) is a pure function of them and of the input, so compressed
  variables generate directly. Each level's output (encoder: after its
  convolution and norm; decoder: after its transposed convolution and norm,
  before the skip concatenation) is sown into "intermediates" as
  "features", outermost encoder level first, innermost decoder level
  first: distillation matches them.

  Attributes:
    width: the first level's channels.
    levels: stride-2 steps down (and up); the bottleneck is 1x1 when the
      padded side is 2**levels.
    out_channels: the output's channels.
    channels: the encoder's channels per level, outermost first (`levels`
      of them), instead of those `width` sets; decoder level i outputs
      channels[i - 1] (as in the authors' U-Net). The slimmer generators of
      distillation, width search and pruning. Parameter names are the same
      at any channels.
  """
  width: int = 16
  levels: int = 5
  out_channels: int = 1
  channels: Sequence[int] | None = None

  @nn.compact
  def __call__(self, conditions: jax.Array, train: bool = False) -> jax.Array:
    if conditions.ndim != 4:
      raise ValueError(f"conditions of shape {conditions.shape}: must be "
                       "(n, H, W, C) images")
    n, height, wide, _ = conditions.shape
    if height != wide:
      raise ValueError(f"conditions of shape {conditions.shape}: must be "
                       "square images")
    hidden = (level_channels(self.width, self.levels)
              if self.channels is None else tuple(self.channels))
    if len(hidden) != self.levels or min(hidden) < 1:
      raise ValueError(f"channels={self.channels!r} must be {self.levels} "
                       "positive channel counts, one per level")
    side = padded_side(height, self.levels)
    before = (side - height) // 2
    x = jnp.pad(conditions, ((0, 0), (before, side - height - before),
                             (before, side - height - before), (0, 0)),
                constant_values=-1.0)
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)
    down = lambda features: nn.Conv(features, (4, 4), strides=(2, 2),
                                    padding=((1, 1), (1, 1)),
                                    use_bias=False)
    skips = []
    for level, features in enumerate(hidden):
      if level:
        x = nn.leaky_relu(x, 0.2)
      x = down(features)(x)
      if 0 < level < self.levels - 1:
        x = norm()(x)
      self.sow("intermediates", "features", x)
      skips.append(x)
    for level in range(self.levels - 1, 0, -1):
      x = nn.relu(x)
      x = nn.ConvTranspose(hidden[level - 1], (4, 4), strides=(2, 2),
                           padding="SAME", use_bias=False)(x)
      x = norm()(x)
      self.sow("intermediates", "features", x)
      x = jnp.concatenate([x, skips[level - 1]], axis=-1)
    x = nn.relu(x)
    x = nn.ConvTranspose(self.out_channels, (4, 4), strides=(2, 2),
                         padding="SAME")(x)
    x = x[:, before:before + height, before:before + height]
    return jnp.tanh(x).reshape(n, height, height, self.out_channels)


class PatchDiscriminator(nn.Module):
  """(conditions, images) (N, H, W, C each) -> patch logits (N, h, w).

  Attributes:
    width: the first convolution's channels.
    n_layers: stride-2 convolutions (the receptive field of a logit is 16,
      34, 70 pixels for 1, 2, 3).
    channels: the convolutions' channels, first to last (n_layers + 1 of
      them), instead of those `width` sets (pruned discriminators).
  """
  width: int = 32
  n_layers: int = 2
  channels: Sequence[int] | None = None

  @nn.compact
  def __call__(self, conditions: jax.Array, images: jax.Array) -> jax.Array:
    if conditions.shape[:3] != images.shape[:3]:
      raise ValueError(f"conditions {conditions.shape} and images "
                       f"{images.shape} must be images of one size")
    hidden = (patch_channels(self.width, self.n_layers)
              if self.channels is None else tuple(self.channels))
    if len(hidden) != self.n_layers + 1 or min(hidden) < 1:
      raise ValueError(f"channels={self.channels!r} must be "
                       f"{self.n_layers + 1} positive channel counts")
    x = jnp.concatenate([conditions, images], axis=-1)
    for i, features in enumerate(hidden):
      stride = 2 if i < self.n_layers else 1
      x = nn.Conv(features, (4, 4), strides=(stride, stride),
                  padding=((1, 1), (1, 1)), use_bias=not i)(x)
      if i:
        x = nn.BatchNorm(use_running_average=False)(x)
      x = nn.leaky_relu(x, 0.2)
    x = nn.Conv(1, (4, 4), padding=((1, 1), (1, 1)))(x)
    return x[..., 0]
