"""Flax generators and the classifier embedders (Linen)."""

from lsh_gan.models.classifier import Classifier
from lsh_gan.models import mlp_gan
from lsh_gan.models.dcgan import Generator as DCGANGenerator
from lsh_gan.models.mlp_gan import MLPDiscriminator
from lsh_gan.models.mlp_gan import MLPGenerator

__all__ = ("Classifier", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator",
           "mlp_gan")
