"""Flax generators (and, later, discriminators and embedders)."""

from lsh_gan.models.dcgan import Generator as DCGANGenerator

__all__ = ("DCGANGenerator",)
