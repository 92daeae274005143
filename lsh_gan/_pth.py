"""Reads PyTorch state-dict files (`.pth`) into numpy, without PyTorch.

Both formats `torch.save` writes: the zip archive (PyTorch >= 1.6:
`<name>/data.pkl` plus one file per storage under `<name>/data/`) and the
legacy stream (a magic number, protocol, system info, the pickled object,
the storage keys, then each storage as an int64 element count followed by
its bytes). Only what a state dict holds is accepted: (ordered) dicts,
lists and tuples of tensors and Python scalars. The unpickler resolves no
other global, so a file cannot run code when read (like PyTorch's
`weights_only=True`).
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile

import numpy as np

_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64,
    "HalfStorage": np.float16, "LongStorage": np.int64,
    "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "UntypedStorage": np.uint8,
}


class _StorageType:
  def __init__(self, name: str):
    if name not in _DTYPES:
      raise pickle.UnpicklingError(f"unsupported tensor storage {name}")
    self.dtype = np.dtype(_DTYPES[name])


class _Tensor:
  """A tensor whose storage may not be read yet (legacy files store the
  data after the object)."""

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset = storage, offset
    self.size, self.stride = tuple(size), tuple(stride)

  def array(self, storages) -> np.ndarray:
    key, dtype, view_offset = self.storage
    if view_offset < 0 or self.offset < 0 or min(self.stride, default=0) < 0:
      raise pickle.UnpicklingError("a tensor has a negative offset or stride")
    flat = storages[key].view(dtype)[view_offset:]
    if not self.size:
      if self.offset >= flat.size:
        raise pickle.UnpicklingError("a tensor reaches past its storage")
      return np.array(flat[self.offset])
    # Checked against the storage's length before striding into it.
    last = self.offset + sum((s - 1) * st for s, st in zip(self.size,
                                                           self.stride))
    if min(self.size) > 0 and last >= flat.size:
      raise pickle.UnpicklingError("a tensor reaches past its storage")
    if min(self.size) == 0:
      return np.zeros(self.size, dtype)
    return np.lib.stride_tricks.as_strided(
        flat[self.offset:], self.size,
        tuple(st * dtype.itemsize for st in self.stride)).copy()


def _rebuild_tensor(storage, offset, size, stride, *unused):
  del unused  # requires_grad, backward hooks, metadata
  return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *unused):
  del unused
  return data


_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):

  def find_class(self, module, name):
    if (module, name) in _GLOBALS:
      return _GLOBALS[module, name]
    if module in ("torch", "torch.storage") and name.endswith("Storage"):
      return _StorageType(name)
    raise pickle.UnpicklingError(
        f"{module}.{name} is not part of a state dict; this reader only "
        "loads tensors, dicts, lists and numbers")

  def persistent_load(self, pid):
    # ('storage', storage_type, key, location, numel[, view_metadata])
    if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
      raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
    storage_type, key = pid[1], str(pid[2])
    view = pid[5] if len(pid) > 5 else None
    if view is not None:  # legacy: a view of a root storage
      _, view_offset, _ = view
      return (key, storage_type.dtype, int(view_offset))
    return (key, storage_type.dtype, 0)


def _resolve(obj, storages):
  if isinstance(obj, _Tensor):
    return obj.array(storages)
  if isinstance(obj, dict):
    return type(obj)((k, _resolve(v, storages)) for k, v in obj.items())
  if isinstance(obj, (list, tuple)):
    return type(obj)(_resolve(v, storages) for v in obj)
  return obj


def _load_zip(path: str):
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") or
               n == "data.pkl"]
    if len(pickles) != 1:
      raise ValueError(f"{path}: not a PyTorch archive (no data.pkl)")
    prefix = pickles[0][:-len("data.pkl")]
    obj = _Unpickler(io.BytesIO(archive.read(pickles[0]))).load()
    storages = {}
    for name in names:
      if name.startswith(prefix + "data/"):
        storages[name[len(prefix + "data/"):]] = np.frombuffer(
            archive.read(name), np.uint8)
  return obj, storages


def _load_legacy(path: str):
  with open(path, "rb") as f:
    # Every pickle in the stream goes through the restricted unpickler.
    magic = _Unpickler(f).load()
    if magic != _LEGACY_MAGIC:
      raise ValueError(f"{path}: not a PyTorch file (bad magic number)")
    _Unpickler(f).load()  # protocol version
    _Unpickler(f).load()  # system info (endianness, type sizes)
    obj = _Unpickler(f).load()
    keys = _Unpickler(f).load()
    if not isinstance(keys, list):
      raise pickle.UnpicklingError("the storage keys are not a list")
    sizes = {}
    _collect_itemsizes(obj, sizes)
    storages = {}
    for key in keys:
      numel = int(np.frombuffer(f.read(8), "<i8")[0])
      itemsize = sizes.get(str(key), 1)
      raw = f.read(numel * itemsize)
      if len(raw) != numel * itemsize:
        raise ValueError(f"{path}: truncated (storage {key})")
      storages[str(key)] = np.frombuffer(raw, np.uint8)
  return obj, storages


def _collect_itemsizes(obj, sizes):
  if isinstance(obj, _Tensor):
    key, dtype, _ = obj.storage
    sizes[key] = dtype.itemsize
  elif isinstance(obj, dict):
    for v in obj.values():
      _collect_itemsizes(v, sizes)
  elif isinstance(obj, (list, tuple)):
    for v in obj:
      _collect_itemsizes(v, sizes)


def load(path: str):
  """The object a `.pth` file holds, with every tensor a numpy array.

  Raises:
    ValueError: the file is not a PyTorch file of either format, is
      truncated, or holds objects other than tensors, containers and numbers.
  """
  try:
    if zipfile.is_zipfile(path):
      obj, storages = _load_zip(path)
    else:
      obj, storages = _load_legacy(path)
    return _resolve(obj, storages)
  except (pickle.UnpicklingError, EOFError, KeyError, IndexError,
          TypeError, ValueError) as err:
    if isinstance(err, ValueError) and str(err).startswith(path):
      raise
    raise ValueError(f"{path}: cannot be read as a PyTorch state dict "
                     f"({type(err).__name__}: {err})") from err
