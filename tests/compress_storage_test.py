"""Low-bit grids (zero-free, k-means), sparse and masked storage, MACs.

Each grid is checked against an independent reference (a hand computation,
numpy's nearest level, scikit-learn's Lloyd k-means); sizes against the
bytes the layout must take; MACs against a convolution of ones, whose sum
counts the products one by one.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import cluster

from lsh_gan import compress
from lsh_gan.compress import _packing


def _kernel(*shape, seed=0):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _apply(t, w):
  return np.asarray(t({"w": w})["w"])


def _bits_equal(a, b):
  a, b = np.asarray(a), np.asarray(b)
  assert a.dtype == b.dtype and a.shape == b.shape
  np.testing.assert_array_equal(a.view(f"u{a.dtype.itemsize}"),
                                b.view(f"u{b.dtype.itemsize}"))


# -- grids --------------------------------------------------------------------


def test_zero_free_two_bits_by_hand():
  # max|w| = 1: s = 1 / 1.5, levels {-1, -1/3, 1/3, 1}.
  w = np.array([[-1.0, -0.4], [0.1, 0.7]], np.float32)
  got = _apply(compress.quantize(2, grid="zero_free"), w)
  np.testing.assert_allclose(got, [[-1, -1 / 3], [1 / 3, 1]], rtol=1e-6)


@pytest.mark.parametrize("bits", [1, 2, 3, 5])
@pytest.mark.parametrize("axis", [None, 0, -1])
def test_zero_free_takes_the_nearest_of_its_levels(bits, axis):
  w = _kernel(40, 24) * np.linspace(0.1, 3, 24, dtype=np.float32)
  got = _apply(compress.quantize(bits, grid="zero_free", axis=axis), w)
  # numpy: levels (q + 1/2) s, s = max|w| / (2^(b-1) - 1/2), the nearest.
  half = 2 ** (bits - 1)
  m = np.max(np.abs(w), axis=None if axis is None else 1 - axis % 2,
              keepdims=axis is not None).astype(np.float64)
  s = m / (half - 0.5)
  levels = (np.arange(-half, half) + 0.5)
  dist = np.abs(w[..., None] / s[..., None] - levels)
  want = levels[np.argmin(dist, axis=-1)] * s
  scale = np.max(np.abs(w))
  off = np.abs(got - want) > 1e-6 * scale
  # A weight within rounding of a level boundary may take either level.
  assert off.mean() < 0.01, off.sum()
  assert np.unique(got).size <= 2 ** bits * (1 if axis is None else 40)
  assert not np.any(got == 0)


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_kmeans_codebook_is_a_lloyd_fixed_point_as_good_as_scikit_learns(
    bits):
  w = _kernel(64, 50, seed=bits)
  t = compress.quantize(bits, grid="kmeans")
  codebook = np.asarray(t.pack({"w": w})["w"].scale, np.float64)
  got = _apply(t, w).astype(np.float64)
  x = w.reshape(-1).astype(np.float64)
  # Each weight takes its nearest value; each value is the mean of its
  # weights (a fixed point of Lloyd's iteration), checked in float64.
  nearest = codebook[np.argmin(np.abs(x[:, None] - codebook), axis=1)]
  assert np.mean(got.reshape(-1) != nearest) < 0.001
  for value in np.unique(got):
    np.testing.assert_allclose(value, x[got.reshape(-1) == value].mean(),
                               rtol=1e-5, atol=1e-6)
  # As good as scikit-learn's Lloyd from the same start, run to convergence
  # (a float32 and a float64 run can settle at nearby fixed points: 1%).
  k = 2 ** bits
  init = np.linspace(x.min(), x.max(), k).reshape(-1, 1)
  ref = cluster.KMeans(k, init=init, n_init=1, max_iter=1000, tol=0,
                       algorithm="lloyd").fit(x.reshape(-1, 1))
  assert np.sum((got.reshape(-1) - x) ** 2) <= ref.inertia_ * 1.01


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_fitted_grids_beat_the_uniform_one_on_gaussian_weights(bits):
  w = _kernel(128, 96)
  err = {}
  for grid in ("uniform", "zero_free", "kmeans"):
    got = _apply(compress.quantize(bits, grid=grid), w)
    err[grid] = np.linalg.norm(got - w) / np.linalg.norm(w)
  assert err["kmeans"] < err["uniform"]
  assert err["kmeans"] <= err["zero_free"] * 1.0001
  if bits == 2:  # ternary by max|w| zeroes most of a Gaussian
    assert err["zero_free"] < err["uniform"]
    assert err["kmeans"] < 0.5 * err["uniform"]


def test_kmeans_per_channel_fits_each_channel():
  w = _kernel(30, 4) * np.array([0.01, 1, 100, 1e4], np.float32)
  got = _apply(compress.quantize(2, grid="kmeans", axis=-1), w)
  for c in range(4):
    assert np.unique(got[:, c]).size <= 4
    rel = np.linalg.norm(got[:, c] - w[:, c]) / np.linalg.norm(w[:, c])
    assert rel < 0.4, (c, rel)


@pytest.mark.parametrize("spec", [
    "quantize(bits=1)", "quantize(bits=2,grid='zero_free')",
    "quantize(bits=3,grid='kmeans')", "quantize(bits=2,grid='kmeans',axis=-1)",
    "quantize(bits=4)", "quantize(bits=3,symmetric=False,axis=0)"])
def test_a_pruned_weight_stays_zero_and_the_grid_fits_the_rest(spec):
  w = _kernel(50, 40)
  pruned = _apply(compress.prune(0.8), w)
  t = compress.parse(spec)
  got = _apply(t, pruned)
  np.testing.assert_array_equal(got[pruned == 0], 0)
  kept = pruned != 0
  # The error on the kept weights is what the grid gives them alone: no
  # level wasted on the zeros (1-bit: mean|w| over the kept).
  if spec == "quantize(bits=1)":
    want = np.abs(pruned[kept]).mean() * np.sign(pruned[kept])
    np.testing.assert_allclose(got[kept], want, rtol=1e-5)
  assert np.linalg.norm(got[kept] - pruned[kept]) < 0.6 * np.linalg.norm(
      pruned[kept])


def test_new_grid_arguments_are_checked():
  for call, match in (
      (lambda: compress.quantize(2, grid="ternary"), r"grid='ternary'"),
      (lambda: compress.quantize(2, grid="kmeans", symmetric=False),
       "symmetric=False"),
      (lambda: compress.quantize(9, grid="kmeans"), r"bits=9.*1\.\.8")):
    with pytest.raises(ValueError, match=match):
      call()
  assert str(compress.parse("quantize(bits=2, grid='kmeans')")) == (
      "quantize(bits=2,grid='kmeans')")


# -- storage ------------------------------------------------------------------


def _mask_bytes(n):
  return 4 * -(-n // 32)


def _code_bytes(n, bits):
  return 4 * -(-n // 32) * bits


def test_pruned_and_quantized_storage_takes_its_bytes_and_is_20x_smaller():
  w = _kernel(300, 200)
  t = compress.parse("prune(sparsity=0.9)+quantize(bits=4)")
  packed = t.pack({"w": w})["w"]
  kept = int(round(w.size * 0.1))
  assert isinstance(packed, compress.PackedArray) and packed.count == kept
  want = _mask_bytes(w.size) + _code_bytes(kept, 4) + 4  # + one scale
  assert compress.size_bytes(packed) == want
  assert w.nbytes / want > 20
  _bits_equal(packed.unpack(), _apply(t, w))
  # Pruning alone: a mask and the float32 values kept.
  sparse = compress.prune(0.9).pack({"w": w})["w"]
  assert isinstance(sparse, compress.SparseArray)
  assert compress.size_bytes(sparse) == _mask_bytes(w.size) + 4 * kept
  _bits_equal(sparse.unpack(), _apply(compress.prune(0.9), w))
  # Few zeros: the dense codes are smaller, no mask.
  light = compress.parse("prune(sparsity=0.01)+quantize(bits=8)").pack(
      {"w": w})["w"]
  assert light.mask is None and light.count == w.size
  assert compress.size_bytes(compress.prune(0.01).pack({"w": w})) == w.nbytes


@pytest.mark.parametrize("spec,dtype", [
    ("prune(sparsity=0.7)+quantize(bits=2,grid='kmeans',axis=-1)",
     np.float32),
    ("quantize(bits=3,grid='zero_free')+prune(sparsity=0.5)", np.float16),
    ("quantize(bits=5,symmetric=False,axis=0)+prune(sparsity=0.95)",
     np.float64),
    ("prune(sparsity=0.3,scope='global')+quantize(bits=1,axis=-1)",
     np.float32),
    ("quantize(bits=2,grid='kmeans')", np.float64),
    ("prune(sparsity=0.99)", np.float16)])
def test_every_layout_unpacks_bit_for_bit_and_survives_orbax(spec, dtype,
                                                             tmp_path):
  params = {"a": {"w": _kernel(33, 17).astype(dtype)},
            "b": _kernel(8, 9, seed=2).astype(dtype),
            "bias": np.zeros(9, dtype)}
  t = compress.parse(spec)
  want = t(params)
  packed = t.pack(params)
  for got, ref in zip(jax.tree_util.tree_leaves(compress.unpack(packed)),
                      jax.tree_util.tree_leaves(want)):
    _bits_equal(got, ref)
  assert compress.size_bytes(packed) < compress.size_bytes(params)
  # Under an outer jit: fixed shapes (masks keep every code), same values
  # (float64 leaves there are float32 without JAX's 64-bit mode).
  if dtype != np.float64:
    jitted = jax.jit(t.pack)(params)
    for got, ref in zip(jax.tree_util.tree_leaves(compress.unpack(jitted)),
                        jax.tree_util.tree_leaves(want)):
      np.testing.assert_array_equal(np.asarray(got), np.asarray(ref))
  compress.save(tmp_path / "ckpt", packed)
  back = compress.restore(tmp_path / "ckpt")
  for got, ref in zip(jax.tree_util.tree_leaves(compress.unpack(back)),
                      jax.tree_util.tree_leaves(want)):
    _bits_equal(got, ref)
  assert compress.size_bytes(back) == compress.size_bytes(packed)


def test_a_fully_pruned_leaf_stores_no_code_and_survives_orbax(tmp_path):
  w = {"w": np.zeros((40, 40), np.float32)}
  for i, spec in enumerate(("quantize(bits=2,grid='kmeans')",
                            "prune(sparsity=0.5)")):
    packed = compress.parse(spec).pack(w)["w"]
    assert packed.count == 0 and compress.size_bytes(packed) <= (
        _mask_bytes(1600) + 16)
    _bits_equal(packed.unpack(), w["w"])
    compress.save(tmp_path / str(i), {"w": packed})
    back = compress.restore(tmp_path / str(i))["w"]
    assert type(back) is type(packed) and back.count == 0
    _bits_equal(back.unpack(), w["w"])
  # A global prune can empty a whole small layer.
  p = {"a": _kernel(16, 16) * 1e-3, "b": _kernel(64, 64, seed=1)}
  out = compress.prune(0.1, scope="global").pack(p)
  assert out["a"].count == 0
  compress.save(tmp_path / "global", out)
  _bits_equal(compress.unpack(compress.restore(tmp_path / "global"))["a"],
              np.zeros((16, 16), np.float32))


def test_a_sparse_leaf_whose_mask_keeps_fewer_values_is_damaged():
  sparse = compress.prune(0.5).pack({"w": _kernel(8, 8)})["w"]
  values = jnp.concatenate([sparse.values, sparse.values])
  with pytest.raises(ValueError, match="mask keeps 32 of 64 entries"):
    compress.SparseArray(sparse.mask, values, shape=(8, 8),
                         dtype=np.float32).unpack()


def test_damaged_masks_are_named():
  w = _kernel(50, 40)
  packed = compress.parse("prune(sparsity=0.8)+quantize(bits=3)").pack(
      {"w": w})["w"]
  words = np.asarray(packed.mask).copy()
  words[0] ^= 1  # one entry more or less than the codes stored
  with pytest.raises(ValueError, match=r"mask keeps \d+ of 2000 entries"):
    packed.replace(mask=jnp.asarray(words)).unpack()
  with pytest.raises(ValueError, match="bits set past the last entry"):
    bad = np.asarray(packed.mask).copy()
    bad[-1] |= np.uint32(1 << 31)  # 2000 = 62 * 32 + 16: bit 31 is padding
    packed.replace(mask=jnp.asarray(bad)).unpack()
  with pytest.raises(ValueError, match="codebook has shape"):
    compress.quantize(2, grid="kmeans").pack({"w": w})["w"].replace(
        scale=jnp.zeros(3)).unpack()


def test_a_checkpoint_written_before_grids_and_masks_restores(tmp_path):
  # The layout of earlier releases: no grid, mask or count fields.
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  w = _kernel(20, 30)
  packed = compress.quantize(4, axis=-1).pack({"w": w})["w"]
  old = {"w": {_packing._MARKER: np.asarray([4, 1, 1, 0, 20, 30], np.int64),  # pylint: disable=protected-access
               "codes": np.asarray(packed.codes),
               "scale": np.asarray(packed.scale)}}
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(str(tmp_path / "old"), old)
  checkpointer.wait_until_finished()
  back = compress.restore(tmp_path / "old")["w"]
  _bits_equal(back.unpack(), packed.unpack())


def test_report_shows_the_stored_share():
  w = {"w": _kernel(100, 100)}
  r = compress.report(w, compress.parse(
      "prune(sparsity=0.9)+quantize(bits=2,grid='kmeans')").pack(w))
  assert r.leaves[0].storage == "int2 kmeans, 10.0% stored"
  assert r.leaves[0].sparsity == pytest.approx(0.9)
  assert r.fewest_bits == 2
  assert r.total.compression_ratio > 25
  r = compress.report(w, compress.prune(0.9).pack(w))
  assert r.leaves[0].storage == "float32 sparse, 10.0% stored"
  assert r.fewest_bits is None


# -- MACs ---------------------------------------------------------------------


def _ones_products(conv, x_shape):
  """Products a convolution makes with real inputs, counted by running it on
  ones with a kernel of ones (one feature in, one out)."""
  variables = conv.init(jax.random.key(0), jnp.ones(x_shape))
  variables = jax.tree_util.tree_map(jnp.ones_like, variables)
  return float(conv.apply(variables, jnp.ones(x_shape)).sum())


@pytest.mark.parametrize("make", [
    lambda c, g: nn.Conv(c, (3, 3), padding="SAME", use_bias=False,
                         feature_group_count=g),
    lambda c, g: nn.Conv(c, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)),
                         use_bias=False, feature_group_count=g),
    lambda c, g: nn.Conv(c, (3, 3), kernel_dilation=(2, 2), padding="VALID",
                         use_bias=False, feature_group_count=g),
    lambda c, g: nn.ConvTranspose(c, (4, 4), strides=(2, 2), padding="SAME",
                                  use_bias=False),
    lambda c, g: nn.ConvTranspose(c, (5, 5), strides=(3, 3),
                                  padding="VALID", use_bias=False)])
@pytest.mark.parametrize("groups", [1, 4])
def test_conv_macs_count_the_products_with_real_inputs(make, groups):
  shape = (1, 9, 7)
  if groups > 1 and isinstance(make(1, 1), nn.ConvTranspose):
    pytest.skip("flax's ConvTranspose has no feature groups")
  one = _ones_products(make(1, 1), (*shape, 1))
  conv = make(8, groups)
  x = jnp.ones((2, *shape, 4))
  variables = conv.init(jax.random.key(0), x)
  # Two samples, 8 features out, each reading 4 / groups features in.
  assert compress.macs(conv.apply, variables, x) == 2 * one * 8 * 4 // groups


def test_macs_needs_no_other_import():
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  code = ("import jax.numpy as jnp; from lsh_gan.compress import macs; "
          "print(macs(lambda a, b: jnp.tanh(a @ b), jnp.ones((2, 3)), "
          "jnp.ones((3, 4))))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True, timeout=120)
  assert out.stdout.split()[-1] == "24"


def test_macs_of_dense_layers_scans_and_a_generator():
  assert compress.macs(lambda a, b: jnp.einsum("bij,bjk->bik", a, b),
                       jnp.ones((5, 2, 3)), jnp.ones((5, 3, 4))) == 5 * 24

  def scanned(w, x):
    return jax.lax.scan(lambda c, _: (c @ w, None), x, None, length=6)[0]

  assert compress.macs(scanned, jnp.ones((4, 4)), jnp.ones((2, 4))) == 6 * 32
  with pytest.raises(ValueError, match="while loop"):
    compress.macs(lambda x: jax.lax.while_loop(lambda c: c[0, 0] < 3,
                                               lambda c: c @ c, x),
                  jnp.ones((2, 2)))
  mlp = nn.Sequential([nn.Dense(16), nn.relu, nn.Dense(3)])
  x = jax.ShapeDtypeStruct((1, 5), jnp.float32)
  variables = mlp.init(jax.random.key(0), jnp.ones((1, 5)))
  assert compress.macs(mlp.apply, variables, x) == 5 * 16 + 16 * 3
  assert compress.num_params(variables) == 5 * 16 + 16 + 16 * 3 + 3
