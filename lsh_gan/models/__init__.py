"""Flax generators and the classifier embedders (Linen)."""

from lsh_gan.models.classifier import Classifier
from lsh_gan.models.dcgan import Generator as DCGANGenerator

__all__ = ("Classifier", "DCGANGenerator")
