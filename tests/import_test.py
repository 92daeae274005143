"""The public API imports and is what __all__ says."""

import lsh_gan
from lsh_gan import compress


def test_public_names_exist():
  assert lsh_gan.__version__
  for name in compress.__all__:
    assert hasattr(compress, name), name
  assert set(compress.names()) == {"chain", "clip", "identity", "masked",
                                   "prune", "quantize"}


def test_every_public_callable_is_documented():
  for name in compress.__all__:
    doc = getattr(compress, name).__doc__
    assert doc and len(doc.strip()) > 20, name
