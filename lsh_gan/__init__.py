"""lsh_gan: compress pre-trained GANs after training and measure what it did.

Subpackages:
  compress: clip / quantize / prune as pure parameter-tree transforms, with
    real low-bit and sparse storage and a size/error report.
  finetune (imported on use): fine-tuning a compressed generator under its
    transform, the methods post-training compression is weighed against.
"""

from lsh_gan import compress

__version__ = "0.1.0"

__all__ = ("compress", "__version__")
