"""Post-training compression as pure, composable parameter-tree transforms.

Factories return transforms (pure ``params -> params`` functions, jit-able)
in the style of optax::

  from lsh_gan import compress
  t = compress.chain(compress.clip(percentile=99.9),
                     compress.quantize(4, axis=-1))
  small = t(params)                 # fake-quantized, same dtypes
  packed = t.pack(params)           # real 4-bit storage
  assert compress.size_bytes(packed) < compress.size_bytes(params) / 5
  print(compress.report(params, packed))

Every transform has a string form, ``str(t) ==
"clip(percentile=99.9)+quantize(bits=4,axis=-1)"``, that `parse` reads back;
configs and the command line use it.
"""

from lsh_gan.compress._base import chain
from lsh_gan.compress._base import get
from lsh_gan.compress._base import identity
from lsh_gan.compress._base import masked
from lsh_gan.compress._base import names
from lsh_gan.compress._base import parse
from lsh_gan.compress._base import register
from lsh_gan.compress._base import Transform
from lsh_gan.compress._cost import macs
from lsh_gan.compress._cost import num_params
from lsh_gan.compress._packing import DamagedCheckpointError
from lsh_gan.compress._packing import PackedArray
from lsh_gan.compress._packing import restore
from lsh_gan.compress._packing import save
from lsh_gan.compress._packing import size_bytes
from lsh_gan.compress._packing import SparseArray
from lsh_gan.compress._packing import unpack
from lsh_gan.compress._report import LeafReport
from lsh_gan.compress._report import report
from lsh_gan.compress._report import Report
from lsh_gan.compress._transforms import clip
from lsh_gan.compress._transforms import pack
from lsh_gan.compress._transforms import prune
from lsh_gan.compress._transforms import quantize

__all__ = (
    "chain",
    "clip",
    "DamagedCheckpointError",
    "get",
    "identity",
    "LeafReport",
    "macs",
    "masked",
    "names",
    "num_params",
    "pack",
    "PackedArray",
    "parse",
    "prune",
    "quantize",
    "register",
    "report",
    "Report",
    "restore",
    "save",
    "size_bytes",
    "SparseArray",
    "Transform",
    "unpack",
)
