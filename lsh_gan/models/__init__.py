"""Flax generators, discriminators and the classifier embedders (Linen).

Flax Linen, not NNX: Linen variables are plain nested dicts, which the
compress transforms, Orbax and jax.jit take as they are, and a generator's
output is `generator.apply(variables, z)`, a pure function of them.

GAN architectures are chosen by name with `gan(architecture, ...)`:

  dcgan    DCGAN generator and discriminator (batch norm) for any square
           image side 8, 14, 28, 32, 64, ... (models.dcgan).
  wgan_gp  the same generator and a critic without normalization, for the
           WGAN-GP loss.
  mlp_gan  MLPs for the 2-D mixtures (models.mlp_gan).
  pix2pix  a conditional U-Net generator and PatchGAN discriminator for
           paired image-to-image translation (models.pix2pix): the
           generator maps a condition image to an image, no latents.
"""

from __future__ import annotations

import functools
from typing import Sequence

from lsh_gan.models import dcgan
from lsh_gan.models import mlp_gan
from lsh_gan.models import pix2pix
from lsh_gan.models.classifier import Classifier
from lsh_gan.models.dcgan import Discriminator as DCGANDiscriminator
from lsh_gan.models.dcgan import Generator as DCGANGenerator
from lsh_gan.models.mlp_gan import MLPDiscriminator
from lsh_gan.models.mlp_gan import MLPGenerator

ARCHITECTURES = ("dcgan", "wgan_gp", "mlp_gan", "pix2pix")
# Architectures whose generator maps a condition image, not latents.
CONDITIONAL = ("pix2pix",)
# Every model a config can name in its `architecture` (see `build`).
MODELS = ARCHITECTURES + ("classifier",)


def gan(architecture: str, *, sample_shape: Sequence[int], width: int = 64,
        hidden: Sequence[int] = (128, 128, 128), d_width: int | None = None,
        levels: int = 5, n_layers: int = 2):
  """(generator, discriminator) modules of a GAN architecture.

  Args:
    architecture: one of ARCHITECTURES.
    sample_shape: one sample's shape: (H, W, C) images, or (2,) points.
    width: channels of the convolutional models (pix2pix: the U-Net's first
      level).
    hidden: layer widths of the MLPs.
    d_width: pix2pix: the PatchGAN's first channels (default 2 x width).
    levels: pix2pix: the U-Net's stride-2 steps.
    n_layers: pix2pix: the PatchGAN's stride-2 convolutions.

  Raises:
    ValueError: an unknown architecture (the valid ones are listed), or a
      sample shape the architecture cannot make.
  """
  sample_shape = tuple(sample_shape)
  if architecture == "mlp_gan":
    if len(sample_shape) != 1:
      raise ValueError(f"architecture='mlp_gan' makes points (d,), not "
                       f"samples of shape {sample_shape}")
    return (MLPGenerator(hidden=tuple(hidden), out_dim=sample_shape[0]),
            MLPDiscriminator(hidden=tuple(hidden)))
  if architecture in ("dcgan", "wgan_gp", "pix2pix") and (
      len(sample_shape) != 3 or sample_shape[0] != sample_shape[1]):
    raise ValueError(f"architecture={architecture!r} makes square images "
                     f"(H, H, C), not samples of shape {sample_shape}")
  if architecture == "pix2pix":
    if not isinstance(levels, int) or isinstance(levels, bool) or (
        levels < 1):
      raise ValueError(f"levels={levels!r} must be a positive integer")
    return (pix2pix.UNetGenerator(width=width, levels=levels,
                                  out_channels=sample_shape[2]),
            pix2pix.PatchDiscriminator(
                width=2 * width if d_width is None else d_width,
                n_layers=n_layers))
  if architecture in ("dcgan", "wgan_gp"):
    dcgan.upsamplings(sample_shape[0])
    return (DCGANGenerator(width=width, image_shape=sample_shape),
            DCGANDiscriminator(width=width,
                               norm="batch" if architecture == "dcgan"
                               else "none"))
  raise ValueError(f"architecture={architecture!r} is not a GAN "
                   f"architecture; valid ones: {', '.join(ARCHITECTURES)}")


def build(config):
  """The modules a model's config describes, by its `architecture` (one
  registry for training, the committed models and fine-tuning):
  (generator, discriminator) for a GAN (`gan`; `width` default 64,
  `hidden` (128, 128, 128)), the `Classifier` of an embedder for
  "classifier" (`features`, `embed_dim`, `num_classes`, `embedding`
  default "penultimate").

  Args:
    config: a training config (configs/train_*.py) or the one a committed
      model's info.json records (a ConfigDict or a dict); a GAN's also
      needs `dataset` (its sample shape).

  Raises:
    ValueError: an architecture not in MODELS (the valid ones are listed).
  """
  architecture = config.get("architecture")
  if architecture == "classifier":
    return Classifier(features=tuple(config["features"]),
                      embed_dim=config["embed_dim"],
                      num_classes=config["num_classes"],
                      embedding=config.get("embedding", "penultimate"))
  if architecture not in ARCHITECTURES:
    raise ValueError(f"config.architecture={architecture!r} is not a model; "
                     f"valid ones: {', '.join(MODELS)}")
  from lsh_gan import data  # pylint: disable=g-import-not-at-top
  return gan(architecture, sample_shape=data.sample_shape(config["dataset"]),
             width=config.get("width", 64),
             hidden=config.get("hidden", (128, 128, 128)),
             d_width=config.get("d_width"), levels=config.get("levels", 5),
             n_layers=config.get("n_layers", 2))


def is_gan(config) -> bool:
  """Whether a model's config describes a GAN (else an embedder)."""
  return config.get("architecture") in ARCHITECTURES


def is_conditional(config) -> bool:
  """Whether a model's config describes a conditional GAN (its generator
  maps condition images, CONDITIONAL)."""
  return config.get("architecture") in CONDITIONAL


def built_once(build):
  """Decorates build(module, *args) -> a jitted function, so that it runs
  once per distinct arguments: flax modules are equal, and hash alike, when
  their fields are. A module with an unhashable field (a list, in a module
  built by hand) cannot be a cache key: it is built afresh each call."""
  cached = functools.lru_cache(maxsize=64)(build)

  @functools.wraps(build)
  def get(*args):
    try:
      hash(args)
    except TypeError:
      return build(*args)
    return cached(*args)
  return get


@built_once
def sampler(generator, latent_dim: int):
  """sample(variables, key, num) -> (num, *sample_shape) float32.

  Draws num standard normal latents of size latent_dim from key and applies
  the generator in inference mode (batch norm uses its running averages), so
  samples are a pure function of (variables, key, num). Jitted, num static;
  compressed variables (`lsh_gan.compress`) go in directly. Built once per
  generator module (`built_once`).
  """
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  def apply(variables, z):
    return generator.apply(variables, z).astype(jax.numpy.float32)

  def sample(variables, key, num):
    return apply(variables,
                 jax.random.normal(key, (num, latent_dim), jax.numpy.float32))
  jitted = jax.jit(sample, static_argnums=2)

  @functools.wraps(sample)
  def checked(variables, key, num):
    if isinstance(num, (bool, np.bool_)) or not isinstance(
        num, (int, np.integer)) or num < 1:
      raise ValueError(f"num={num!r} must be a positive integer (the number "
                       "of samples)")
    return jitted(variables, key, int(num))
  checked.jitted = jitted
  # For the data-parallel pipeline: the latents' size, and the generator
  # on given latents (traceable; one function per sampler).
  checked.latent_dim = latent_dim
  checked.apply = apply
  return checked


@built_once
def translator(generator):
  """translate(variables, conditions) -> float32 images of a conditional
  generator (CONDITIONAL): conditions (n, H, W, C) in [-1, 1], the
  generator in inference mode (batch norm uses its running averages), so an
  output is a pure function of the variables and its own condition. Jitted
  (one program per conditions shape); compressed variables go in directly.
  Built once per generator module."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  def apply(variables, conditions):
    return generator.apply(variables, conditions).astype(jax.numpy.float32)
  jitted = jax.jit(apply)

  @functools.wraps(apply)
  def checked(variables, conditions):
    shape = getattr(conditions, "shape", None)
    if shape is None or len(shape) != 4 or shape[0] < 1:
      raise ValueError(f"conditions of shape {shape}: must be (n, H, W, C) "
                       "images in [-1, 1], n >= 1")
    if not np.issubdtype(np.dtype(conditions.dtype), np.floating):
      raise ValueError(f"conditions of dtype {conditions.dtype}: must be "
                       "float images in [-1, 1]")
    # The first convolution's kernel (h, w, in, out) says what it takes.
    kernel = variables.get("params", {}).get("Conv_0", {}).get("kernel")
    if kernel is not None and kernel.shape[2] != shape[-1]:
      raise ValueError(f"conditions of shape {shape}: the generator takes "
                       f"{kernel.shape[2]}-channel conditions")
    return jitted(variables, conditions)
  checked.jitted = jitted
  checked.apply = apply
  return checked


__all__ = ("ARCHITECTURES", "CONDITIONAL", "MODELS", "Classifier", "DCGANDiscriminator",
           "DCGANGenerator", "MLPDiscriminator", "MLPGenerator", "dcgan",
           "build", "built_once", "gan", "is_conditional", "is_gan",
           "mlp_gan", "pix2pix", "sampler", "translator")
