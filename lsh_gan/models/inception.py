"""Inception-v3 as the FID feature extractor (pool3, 2,048 features).

The network of the TensorFlow FID graph (`inception-2015-12-05`) as ported
by `pytorch-fid` (its `InceptionV3` with `use_fid_inception=True`, output
block 3), so that the standard weights give the standard features:

- input: images resized to 299 x 299 by bilinear interpolation with
  half-pixel centres and no antialiasing (PyTorch's
  `F.interpolate(..., mode="bilinear", align_corners=False)`), values in
  [-1, 1] (pytorch-fid maps its [0, 1] input to [-1, 1] after resizing;
  resizing is affine, so resizing the [-1, 1] image is the same);
- torchvision's Inception-v3 stem (`Conv2d_1a_3x3` ... `Conv2d_4a_3x3`, two
  3x3 / 2 max pools), every convolution without bias, followed by batch norm
  (eps 1e-3, running statistics) and ReLU;
- the FID variants of the mixed blocks: in `Mixed_5b..5d` (A), `Mixed_6b..6e`
  (C) and `Mixed_7b` (E_1) the pool branch's 3x3 average pool does not count
  the zero padding (TensorFlow's average pool), and in `Mixed_7c` (E_2) it is
  a 3x3 max pool; `Mixed_6a` (B) and `Mixed_7a` (D) are torchvision's;
- the global average pool of `Mixed_7c`: (n, 2048).

Parameter names follow the PyTorch module names (`Mixed_5b/branch1x1/conv`,
`.../bn`), so `lsh_gan.pretrained.inception_v3` converts a `pytorch-fid`
state dict key by key. Convolutions run at `precision` (HIGHEST by default:
float32 on GPU/TPU, as the reference computes).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

SIZE = 299
FEATURES = 2048


def _pair(v):
  return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class BasicConv(nn.Module):
  """Convolution without bias, batch norm (running statistics), ReLU."""
  features: int
  kernel: int | Sequence[int]
  stride: int = 1
  padding: int | Sequence[int] = 0
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    ph, pw = _pair(self.padding)
    x = nn.Conv(self.features, _pair(self.kernel), strides=self.stride,
                padding=((ph, ph), (pw, pw)), use_bias=False,
                precision=self.precision, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg_pool_same(x):
  """3x3 / 1 average pool, padding 1, the padding not counted."""
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool(x, stride=2, padding=0):
  return nn.max_pool(x, (3, 3), strides=(stride, stride),
                     padding=((padding, padding), (padding, padding)))


def _conv(precision):
  """BasicConv(features, kernel, padding=0, *, stride=1, name) at `precision`:
  the one convolution builder of every block."""
  def conv(features, kernel, padding=0, *, stride=1, name=None):
    return BasicConv(features, kernel, stride=stride, padding=padding,
                     name=name, precision=precision)
  return conv


class MixedA(nn.Module):
  """FIDInceptionA: 1x1, 5x5, double 3x3 and (average pool, 1x1)."""
  pool_features: int
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    c = _conv(self.precision)
    b1 = c(64, 1, name="branch1x1")(x)
    b5 = c(48, 1, name="branch5x5_1")(x)
    b5 = c(64, 5, 2, name="branch5x5_2")(b5)
    b3 = c(64, 1, name="branch3x3dbl_1")(x)
    b3 = c(96, 3, 1, name="branch3x3dbl_2")(b3)
    b3 = c(96, 3, 1, name="branch3x3dbl_3")(b3)
    bp = c(self.pool_features, 1, name="branch_pool")(_avg_pool_same(x))
    return jnp.concatenate([b1, b5, b3, bp], -1)


class MixedB(nn.Module):
  """InceptionB (grid reduction 35 -> 17)."""
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    c = _conv(self.precision)
    b3 = c(384, 3, stride=2, name="branch3x3")(x)
    bd = c(64, 1, name="branch3x3dbl_1")(x)
    bd = c(96, 3, 1, name="branch3x3dbl_2")(bd)
    bd = c(96, 3, stride=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool(x)], -1)


class MixedC(nn.Module):
  """FIDInceptionC: factorised 7x7 branches, (average pool, 1x1)."""
  channels_7x7: int
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    c = _conv(self.precision)
    c7 = self.channels_7x7
    b1 = c(192, 1, name="branch1x1")(x)
    b7 = c(c7, 1, name="branch7x7_1")(x)
    b7 = c(c7, (1, 7), (0, 3), name="branch7x7_2")(b7)
    b7 = c(192, (7, 1), (3, 0), name="branch7x7_3")(b7)
    bd = c(c7, 1, name="branch7x7dbl_1")(x)
    bd = c(c7, (7, 1), (3, 0), name="branch7x7dbl_2")(bd)
    bd = c(c7, (1, 7), (0, 3), name="branch7x7dbl_3")(bd)
    bd = c(c7, (7, 1), (3, 0), name="branch7x7dbl_4")(bd)
    bd = c(192, (1, 7), (0, 3), name="branch7x7dbl_5")(bd)
    bp = c(192, 1, name="branch_pool")(_avg_pool_same(x))
    return jnp.concatenate([b1, b7, bd, bp], -1)


class MixedD(nn.Module):
  """InceptionD (grid reduction 17 -> 8)."""
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    c = _conv(self.precision)
    b3 = c(192, 1, name="branch3x3_1")(x)
    b3 = c(320, 3, stride=2, name="branch3x3_2")(b3)
    b7 = c(192, 1, name="branch7x7x3_1")(x)
    b7 = c(192, (1, 7), (0, 3), name="branch7x7x3_2")(b7)
    b7 = c(192, (7, 1), (3, 0), name="branch7x7x3_3")(b7)
    b7 = c(192, 3, stride=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool(x)], -1)


class MixedE(nn.Module):
  """FIDInceptionE_1 (pool branch: average pool without the padding) or,
  with `max_pool`, FIDInceptionE_2 (pool branch: 3x3 max pool)."""
  max_pool: bool = False
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    c = _conv(self.precision)
    b1 = c(320, 1, name="branch1x1")(x)
    b3 = c(384, 1, name="branch3x3_1")(x)
    b3 = jnp.concatenate([c(384, (1, 3), (0, 1), name="branch3x3_2a")(b3),
                          c(384, (3, 1), (1, 0), name="branch3x3_2b")(b3)],
                         -1)
    bd = c(448, 1, name="branch3x3dbl_1")(x)
    bd = c(384, 3, 1, name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([c(384, (1, 3), (0, 1), name="branch3x3dbl_3a")(bd),
                          c(384, (3, 1), (1, 0), name="branch3x3dbl_3b")(bd)],
                         -1)
    pooled = (_max_pool(x, stride=1, padding=1) if self.max_pool
              else _avg_pool_same(x))
    bp = c(192, 1, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], -1)


def resize(images: jnp.ndarray, size: int = SIZE,
           precision=jax.lax.Precision.HIGHEST) -> jnp.ndarray:
  """(n, H, W, C) -> (n, size, size, C), bilinear, half-pixel centres, no
  antialiasing: PyTorch's `F.interpolate(mode="bilinear",
  align_corners=False)` (at the border a source coordinate below 0 or past
  the last pixel takes the edge pixel, in both)."""
  n, _, _, c = images.shape
  return jax.image.resize(images, (n, size, size, c), "bilinear",
                          antialias=False, precision=precision)


def to_input(images, precision=jax.lax.Precision.HIGHEST) -> jnp.ndarray:
  """(n, H, W, 1 or 3) images -> (n, 299, 299, 3) float32: grey repeated to
  RGB, then `resize`."""
  x = jnp.asarray(images, jnp.float32)
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  return resize(x, SIZE, precision)


class InceptionV3(nn.Module):
  """pool3 features of the FID Inception-v3: (n, H, W, 1 or 3) images in
  [-1, 1] of any size -> (n, 2048) float32.

  With `resize_input=False` the images must already be RGB and 299 x 299
  (`to_input` makes them so): the network then compiles once per batch
  size whatever the image size.
  """
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST
  resize_input: bool = True

  @nn.compact
  def __call__(self, images):
    p = self.precision
    c = _conv(p)
    x = to_input(images, p) if self.resize_input else images
    x = c(32, 3, stride=2, name="Conv2d_1a_3x3")(x)
    x = c(32, 3, name="Conv2d_2a_3x3")(x)
    x = c(64, 3, 1, name="Conv2d_2b_3x3")(x)
    x = _max_pool(x)
    x = c(80, 1, name="Conv2d_3b_1x1")(x)
    x = c(192, 3, name="Conv2d_4a_3x3")(x)
    x = _max_pool(x)
    x = MixedA(32, p, name="Mixed_5b")(x)
    x = MixedA(64, p, name="Mixed_5c")(x)
    x = MixedA(64, p, name="Mixed_5d")(x)
    x = MixedB(p, name="Mixed_6a")(x)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                     ("Mixed_6e", 192)):
      x = MixedC(c7, p, name=name)(x)
    x = MixedD(p, name="Mixed_7a")(x)
    x = MixedE(False, p, name="Mixed_7b")(x)
    x = MixedE(True, p, name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))
