"""Bit-packed storage: layout, exactness, sizes, Orbax round trips."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lsh_gan import compress
from lsh_gan.compress import _packing
import conftest


RNG = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def _reseed():
  """Each test draws the same data whatever order the tests run in."""
  global RNG
  RNG = np.random.default_rng(7)


def np_bitpack(codes, bits):
  """Independent layout reference: little-endian bit stream, 32-bit words."""
  codes = np.asarray(codes, np.uint64).ravel()
  stream = ((codes[:, None] >> np.arange(bits, dtype=np.uint64)) & 1).astype(
      np.uint8).ravel()
  stream = np.pad(stream, (0, -stream.size % (32 * bits)))
  return np.packbits(stream, bitorder="little").view("<u4")


_BITPACK = jax.jit(_packing.bitpack, static_argnums=1)
_BITUNPACK = jax.jit(_packing.bitunpack, static_argnums=(1, 2))


@pytest.mark.parametrize("bits", list(range(1, 17)))
@pytest.mark.parametrize("size", [1, 32, 33, 1000])
def test_bitpack_layout_and_round_trip(bits, size):
  codes = RNG.integers(0, 2 ** bits, size=size, dtype=np.uint32)
  codes[0] = 2 ** bits - 1  # the largest code survives
  words = _BITPACK(jnp.asarray(codes), bits)
  np.testing.assert_array_equal(np.asarray(words), np_bitpack(codes, bits))
  assert words.size == -(-size // 32) * bits  # b bits per code, 32-code groups
  np.testing.assert_array_equal(np.asarray(_BITUNPACK(words, bits, size)),
                                codes)
  # The host's packing (what `pack` uses to lay out masks) is the same.
  np.testing.assert_array_equal(_packing.np_bitpack(codes, bits), words)
  np.testing.assert_array_equal(_packing.np_bitunpack(words, bits, size),
                                codes)


# Every width both ways, and every pair of grid and axis (not the whole
# cross: each case compiles its own kernels; compress_common_test.py packs
# every transform of its list on three trees).
@pytest.mark.parametrize("bits,symmetric,axis", [
    (1, True, None), (1, False, -1), (2, True, 0), (2, False, None),
    (3, True, -1), (3, False, 0), (5, True, None), (5, False, -1),
    (16, True, 0), (16, False, None)])
def test_pack_equals_quantize_bit_for_bit(bits, symmetric, axis):
  params = conftest.linen_variables()
  packed = compress.pack(params, bits, symmetric=symmetric, axis=axis)
  fake = compress.quantize(bits, symmetric=symmetric, axis=axis)(params)
  chex.assert_trees_all_equal(compress.unpack(packed), fake)
  chex.assert_trees_all_equal_shapes_and_dtypes(compress.unpack(packed), params)


def test_pack_with_mask_packs_only_selected_leaves():
  params = conftest.linen_variables()
  packed = compress.pack(params, 4, mask=r".*Conv_0/kernel")
  kinds = {compress._tree.path_str(p): type(x).__name__  # pylint: disable=protected-access
           for p, x in jax.tree_util.tree_flatten_with_path(
               packed, is_leaf=_packing.is_packed)[0]}
  assert kinds.pop("params/Conv_0/kernel") == "PackedArray"
  assert "PackedArray" not in kinds.values()


def test_packed_size_is_b_bits_per_weight_plus_scales():
  w = RNG.normal(size=(3, 3, 64, 128)).astype(np.float32)
  n = w.size

  def codes_bytes(p, bits):
    # b bits per weight; or, where that is smaller, one mask bit per weight
    # and b bits per weight not exactly zero.
    nnz = np.count_nonzero(np.asarray(compress.unpack(p)["k"]))
    return min(-(-n // 32) * bits * 4,
               -(-n // 32) * 4 + -(-nnz // 32) * bits * 4)

  for bits in (1, 2, 3, 4, 8, 16):
    per_tensor = compress.pack({"k": w}, bits)
    assert compress.size_bytes(per_tensor) == codes_bytes(per_tensor, bits) + 4
    per_channel = compress.pack({"k": w}, bits, axis=-1, symmetric=False)
    # One float32 scale and one int32 zero point per output channel.
    assert compress.size_bytes(per_channel) == (
        codes_bytes(per_channel, bits) + 128 * 4 + 128 * 4)
  # Ternary by max|w| zeroes most of a Gaussian: the mask pays for itself.
  assert compress.pack({"k": w}, 2)["k"].mask is not None
  assert compress.pack({"k": w}, 8)["k"].mask is None


def test_four_bit_dcgan_is_more_than_5x_smaller_including_everything():
  from lsh_gan.models import dcgan  # pylint: disable=g-import-not-at-top
  variables = dcgan.Generator().init(jax.random.key(0), jnp.zeros((1, 100)))
  original = compress.size_bytes(variables)
  for t in (compress.quantize(4), compress.quantize(4, axis=-1),
            compress.parse("clip(percentile=99.9)+quantize(bits=4,axis=-1)")):
    packed = t.pack(variables)
    assert compress.size_bytes(packed) * 5 < original, str(t)
  # Dense storage of the same values is not smaller: only packing saves bytes.
  assert compress.size_bytes(compress.quantize(4)(variables)) == original


def test_size_bytes_counts_buffers():
  tree = {"a": np.zeros((10, 3), np.float32), "b": jnp.zeros(5, jnp.bfloat16),
          "c": [np.int8(1)], "d": 2.0}
  assert compress.size_bytes(tree) == 120 + 10 + 1 + 8


def test_packed_arrays_go_through_jit_and_keep_metadata():
  params = {"kernel": RNG.normal(size=(40, 24)).astype(np.float32)}
  packed = compress.pack(params, 3, symmetric=False, axis=0)
  again = jax.jit(lambda t: t)(packed)
  p = again["kernel"]
  assert (p.bits, p.symmetric, p.axis, p.shape, p.dtype) == (
      3, False, 0, (40, 24), jnp.float32)
  assert repr(p) == "PackedArray(int3 asym axis=0, shape=(40, 24), dtype=float32)"
  np.testing.assert_array_equal(np.asarray(p.unpack()),
                                np.asarray(compress.unpack(packed)["kernel"]))


def test_save_and_restore_with_orbax(tmp_path):
  params = conftest.linen_variables()
  params["params"]["extra"] = [RNG.normal(size=(6, 7)).astype(np.float32),
                               jnp.asarray(RNG.normal(size=(8, 3)), jnp.bfloat16)]
  t = compress.parse("masked(quantize(bits=3,symmetric=False,axis=-1),"
                     "mask='.*Conv.*kernel')+masked(quantize(bits=1),"
                     "mask='.*extra.*')+masked(quantize(bits=5),"
                     "mask='.*Dense.*')")
  packed = t.pack(params)
  compress.save(tmp_path / "ckpt", packed)
  restored = compress.restore(tmp_path / "ckpt")
  chex.assert_trees_all_equal(compress.unpack(restored), t(params))
  assert compress.size_bytes(restored) == compress.size_bytes(packed)
  kernel = restored["params"]["Conv_0"]["kernel"]
  assert isinstance(kernel, compress.PackedArray)
  assert (kernel.bits, kernel.symmetric, kernel.axis) == (3, False, 3)
  assert restored["params"]["extra"][1].dtype == jnp.bfloat16
  with pytest.raises(ValueError, match="exists; pass force=True"):
    compress.save(tmp_path / "ckpt", packed)
  compress.save(tmp_path / "ckpt", packed, force=True)
  with pytest.raises(ValueError, match="is not a checkpoint folder"):
    compress.restore(tmp_path / "missing")


def test_pack_rejects_bad_arguments():
  with pytest.raises(ValueError, match="bits=0"):
    compress.pack({"k": np.ones((2, 2), np.float32)}, 0)
  with pytest.raises(ValueError, match="mask='zzz' selects no"):
    compress.pack({"k": np.ones((2, 2), np.float32)}, 4, mask="zzz")


def _packed_leaf(**changes):
  p = compress.pack({"kernel": RNG.normal(size=(6, 7)).astype(np.float32)}, 4,
                    symmetric=False, axis=-1)["kernel"]
  fields = dict(codes=p.codes, scale=p.scale, zero_point=p.zero_point,
                shape=p.shape, dtype=p.dtype, bits=p.bits,
                symmetric=p.symmetric, axis=p.axis)
  fields.update(changes)
  return compress.PackedArray(
      fields.pop("codes"), fields.pop("scale"), fields.pop("zero_point"),
      **fields)


@pytest.mark.parametrize("changes,match", [
    (dict(bits=0), r"bits=0 is outside 1\.\.16"),
    (dict(bits=17), r"bits=17"),
    (dict(bits=5), r"codes hold 8 words.*need 10"),
    (dict(shape=(6, 70)), r"codes hold 8 words.*need 56"),
    (dict(codes=np.zeros(8, np.int32)), r"codes hold 8 words of int32"),
    (dict(scale=np.ones(6, np.float32)), r"scale has shape \(6,\), expected "
     r"\(7,\)"),
    (dict(axis=2), r"axis=2 is out of range"),
    (dict(zero_point=None), r"zero point is missing"),
    (dict(zero_point=np.zeros(3, np.int32)), r"zero_point has shape \(3,\)"),
    (dict(dtype=np.int32), r"dtype=int32 is not a floating"),
])
def test_unpack_names_the_leaf_and_the_inconsistent_field(changes, match):
  tree = {"params": {"kernel": _packed_leaf(**changes)}}
  with pytest.raises(ValueError, match=r"packed leaf 'params/kernel' is "
                     r"inconsistent.*" + match):
    compress.unpack(tree)
  with pytest.raises(ValueError, match=r"PackedArray is inconsistent"):
    tree["params"]["kernel"].unpack()


def _saved(tmp_path):
  params = {"kernel": RNG.normal(size=(6, 7)).astype(np.float32),
            "bias": np.ones(7, np.float32)}
  compress.save(tmp_path / "ckpt", compress.pack(params, 4, axis=-1))
  return tmp_path / "ckpt"


# Orbax's reader leaves an asyncio callback behind when tensorstore fails; it
# is reported during whichever test runs next.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("damage", ["metadata_json", "array_data",
                                    "missing_data"])
def test_restore_of_a_damaged_checkpoint_names_the_folder(tmp_path, damage):
  path = _saved(tmp_path)
  if damage == "metadata_json":
    (path / "_METADATA").write_text("{ not json")
  else:
    data = [f for f in path.rglob("*") if f.is_file() and f.parent.name == "d"]
    assert data
    for f in data:
      if damage == "array_data":
        f.write_bytes(b"\x00garbage" * 7)
      else:
        f.unlink()
  with pytest.raises(compress.DamagedCheckpointError,
                     match=rf"checkpoint '{path}' is damaged") as info:
    compress.restore(path)
  assert isinstance(info.value, ValueError)
  assert info.value.path == str(path)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_restore_checks_the_packed_leaves_it_rebuilds(tmp_path):
  packed = compress.pack({"kernel": RNG.normal(size=(6, 7)).astype(
      np.float32)}, 4)
  storable = {"kernel": _packing._to_storable(packed["kernel"])}  # pylint: disable=protected-access
  storable["kernel"][_packing._MARKER][0] = 0  # pylint: disable=protected-access
  compress.save(tmp_path / "ckpt", storable)
  with pytest.raises(compress.DamagedCheckpointError,
                     match=r"is damaged.*packed leaf 'kernel'.*bits=0"):
    compress.restore(tmp_path / "ckpt")
