"""Generic properties every transform must have, over one shared list.

Adding a transform to the registry means adding an entry to ALL_TRANSFORMS;
`test_every_registered_name_is_covered` fails until it is.
"""

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lsh_gan import compress
from lsh_gan.compress import _base
import conftest


# The specs: every way a transform computes or stores a leaf but the plain
# clip threshold (compress_test.py checks it; each spec here costs about ten
# compilations): the percentile and standard-deviation clips; the sign grid
# per tensor and per channel; the symmetric grid per tensor (inside
# `masked`) and per channel; the asymmetric grid per tensor (a scalar zero
# point, stored as a mask and the codes off it) and per channel on another
# axis; zero-free, k-means and the 16-bit limit; pruning per leaf (sparse
# floats) and global; a prune before a k-means quantize (sparse codes) and
# one after a uniform quantize, in both spellings of a chain; masks.
ALL_TRANSFORMS = (
    "identity",
    "clip(percentile=95)",
    "clip(num_std=1.5)",
    "quantize(bits=1)",
    "quantize(bits=1,axis=-1)",
    "quantize(bits=4,axis=-1)",
    "quantize(bits=3,symmetric=False)",
    "quantize(bits=5,symmetric=False,axis=0)",
    "quantize(bits=2,grid='zero_free',axis=-1)",
    "quantize(bits=16)",
    "prune(sparsity=0.5)",
    "prune(sparsity=0.3,scope='global')",
    "chain(prune(sparsity=0.6),quantize(bits=1,grid='kmeans'))",
    "clip(percentile=99)+quantize(bits=4,axis=-1)+prune(sparsity=0.1)",
    "masked(quantize(bits=2),mask='.*kernel')",
    "masked(clip(num_std=1.0)+quantize(bits=3),mask='.*(kernel|w)')",
)


# The kernel-cache checks below compile a transform many times over (cold,
# warm, under an outer jit, on trees that change kind); the cache is keyed
# in `Transform._run` / `_kernel`, shared by every transform, so they run
# on one transform per way of applying leaves: a leaf map with packing, a
# global prune, a chain ending in a prune of packed leaves, a masked chain,
# and the identity.
KERNEL_CACHE_SPECS = (
    "identity",
    "quantize(bits=4,axis=-1)",
    "prune(sparsity=0.3,scope='global')",
    "clip(percentile=99)+quantize(bits=4,axis=-1)+prune(sparsity=0.1)",
    "masked(clip(num_std=1.0)+quantize(bits=3),mask='.*(kernel|w)')",
)


_PARSED = {}


def _parse(spec):
  """One transform object per spec, so its compiled kernels are reused."""
  if spec not in _PARSED:
    _PARSED[spec] = compress.parse(spec)
  return _PARSED[spec]


def _leaves(tree):
  return jax.tree_util.tree_leaves(tree)


def _assert_bitwise_equal(a, b):
  chex.assert_trees_all_equal_structs(a, b)
  for x, y in zip(_leaves(a), _leaves(b)):
    assert np.asarray(x).dtype == np.asarray(y).dtype
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def assert_close_to_scale(got, want, *, ulps=4, max_tie_fraction=0.01):
  """Leaves agree to `ulps` units in the last place of their dtype, relative
  to each leaf's largest magnitude.

  For two computations that may round differently in the last bit (op by op
  against fused, one program against another). At most `max_tie_fraction` of
  a leaf's entries (at least one) may differ by more: a value within rounding
  error of a quantization tie may take either neighbouring level. Non-float
  leaves must be equal; values are compared, not dtypes.
  """
  chex.assert_trees_all_equal_structs(got, want)
  for x, y in zip(_leaves(got), _leaves(want)):
    x, y = np.asarray(x), np.asarray(y)
    assert x.shape == y.shape
    floats = [a.dtype for a in (x, y) if jnp.issubdtype(a.dtype, jnp.floating)]
    if not floats:
      np.testing.assert_array_equal(x, y)
      continue
    eps = max(float(jnp.finfo(d).eps) for d in floats)
    x, y = x.astype(np.float64), y.astype(np.float64)
    tol = ulps * eps * np.max(np.abs(y), initial=0.0)
    off = ~(np.abs(x - y) <= tol)
    assert off.sum() <= max(1, max_tie_fraction * off.size), (
        f"{off.sum()} of {off.size} entries differ by more than {tol:.3g}, "
        f"e.g. {x[off][:5]} vs {y[off][:5]}")


def _applicable(spec, tree):
  """The transform of `spec`; skips trees that a masked spec's regex misses."""
  t = _parse(spec)
  try:
    t(tree)
  except ValueError as e:
    if "selects no floating-point leaf" in str(e):
      pytest.skip("mask matches no leaf of this tree")
    raise
  return t


def test_every_registered_name_is_covered():
  assert set(KERNEL_CACHE_SPECS) <= set(ALL_TRANSFORMS)
  used = set()
  for spec in ALL_TRANSFORMS:
    used.update(re.findall(r"([a-z_]+)\(", spec))
    used.update(s for s in re.split(r"\W+", spec) if s in compress.names())
  assert set(compress.names()) <= used, set(compress.names()) - used


@pytest.mark.parametrize("spec", ALL_TRANSFORMS)
def test_keeps_structure_shapes_dtypes_and_passes_vectors_through(spec, tree):
  t = _applicable(spec, tree)
  out = t(tree)
  chex.assert_trees_all_equal_shapes_and_dtypes(out, tree)
  chex.assert_tree_all_finite([x for x in _leaves(out)
                               if jnp.issubdtype(x.dtype, jnp.floating)])
  # Vectors, scalars and integers pass through.
  for x, y in zip(_leaves(tree), _leaves(out)):
    if np.ndim(x) < 2 or not jnp.issubdtype(np.asarray(x).dtype, jnp.floating):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# The checks below compile the transform again (a new outer jit, a re-parsed
# transform) or run it op by op, so they use one tree: the nested one, with
# float32, bfloat16, float16 and integer leaves.


@pytest.mark.parametrize("spec", ALL_TRANSFORMS)
def test_jit_equals_eager(spec):
  tree = conftest.nested_tree()
  t = _parse(spec)
  with jax.disable_jit():
    eager = t(tree)
  # Op by op and compiled may round differently in the last bit (and so, at
  # a quantization tie, by a level); bfloat16 leaves then differ by an ulp.
  assert_close_to_scale(jax.jit(t)(tree), eager)
  assert_close_to_scale(t(tree), eager)


@pytest.mark.parametrize("spec", KERNEL_CACHE_SPECS)
def test_second_jit_call_does_not_retrace(spec):
  chex.clear_trace_counter()
  t = compress.parse(spec)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def apply(params):
    return t(params)

  rng = np.random.default_rng(0)
  for _ in range(3):
    params = {"kernel": jnp.asarray(rng.normal(size=(16, 8)), jnp.float32),
              "w": jnp.asarray(rng.normal(size=(8, 4)), jnp.float32)}
    apply(params)
  # Eager calls reuse one compiled kernel too, with new values or numpy input.
  traces = _base._TRACE_COUNT  # pylint: disable=protected-access
  t(params)
  t(jax.tree_util.tree_map(lambda x: np.asarray(x) * 2, params))
  compress.parse(spec)(params)  # an equal transform shares the kernel
  assert _base._TRACE_COUNT - traces <= 1  # pylint: disable=protected-access


def _kinds_trees():
  """Trees of one structure or nearly, whose leaf "a" changes kind.

  Calling one transform object on them in turn caught kernels that kept the
  first call's non-array leaves and array positions.
  """
  rng = np.random.default_rng(5)
  kernel = rng.normal(size=(12, 10)).astype(np.float32)
  w = rng.normal(size=(10, 6)).astype(np.float32)
  for a in (1.0, jnp.asarray(rng.normal(size=(3, 3)), jnp.float32),
            np.float32(2.5), "a string", None):
    yield {"a": a, "kernel": kernel, "w": w}
  # Same structure, arrays in other slots and of other shapes.
  yield {"a": kernel, "kernel": w, "w": rng.normal(size=(5, 7)).astype(
      np.float16)}


def _cold(spec, params):
  """`spec` applied by a new object with no compiled kernel to reuse."""
  saved = _base._KERNELS.copy()  # pylint: disable=protected-access
  _base._KERNELS.clear()  # pylint: disable=protected-access
  try:
    return compress.parse(spec)(params)
  finally:
    _base._KERNELS.clear()  # pylint: disable=protected-access
    _base._KERNELS.update(saved)  # pylint: disable=protected-access


@pytest.mark.parametrize("spec", KERNEL_CACHE_SPECS)
def test_one_object_on_changing_leaf_kinds_equals_a_fresh_object(spec):
  t = compress.parse(spec)
  for i, params in enumerate(_kinds_trees()):
    want = _cold(spec, params)
    _assert_bitwise_equal(t(params), want)
    if i in (1, 3):
      _assert_bitwise_equal(compress.unpack(t.pack(params)), want)
    if i in (0, 2):
      # Eager then jit: the outer trace must not reuse what eager calls saw.
      assert_close_to_scale(jax.jit(t)(params), want)


def test_issue_12_repro_kernel_is_quantized_after_a_scalar_call():
  kernel = np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32)
  t = compress.quantize(4)
  assert np.unique(t({"a": 1.0, "kernel": kernel})["kernel"]).size <= 15
  out = t({"a": jnp.ones((3, 3)) * 0.3, "kernel": kernel})
  assert np.unique(out["kernel"]).size <= 15
  for again in (compress.quantize(4), compress.parse("quantize(bits=4)")):
    out = jax.jit(again)({"a": jnp.ones((3, 3)), "kernel": kernel})
    assert np.unique(out["kernel"]).size <= 15


def test_equal_transforms_never_share_a_stale_trace():
  kernel = np.random.default_rng(1).normal(size=(8, 8)).astype(np.float32)
  for spec in KERNEL_CACHE_SPECS:
    first, second = compress.parse(spec), compress.parse(spec)
    assert first == second and hash(first) == hash(second)
    first({"a": 1.0, "kernel": kernel})
    jax.jit(first)({"a": 1.0, "kernel": kernel})
    params = {"a": kernel + 1, "kernel": kernel, "w": kernel * 2}
    assert_close_to_scale(jax.jit(second)(params), _cold(spec, params))
    _assert_bitwise_equal(second(params), _cold(spec, params))


def test_transforms_that_differ_are_not_equal():
  # A transform type of its own with the string of a registered one must not
  # share kernels (nor, through jax.jit, traces) with it.
  class Negate(_base.LeafTransform):
    name = "quantize"

    def __init__(self):
      super().__init__({"bits": 4})

    def _leaf(self, x, path):
      return -x

  kernel = np.ones((3, 3), np.float32)
  fake = Negate()
  assert str(fake) == str(compress.quantize(4))
  assert fake != compress.quantize(4)
  np.testing.assert_array_equal(compress.quantize(4)({"k": kernel})["k"], kernel)
  np.testing.assert_array_equal(fake({"k": kernel})["k"], -kernel)
  np.testing.assert_array_equal(jax.jit(fake)({"k": kernel})["k"], -kernel)


def test_callable_mask_is_evaluated_per_call():
  big = lambda path, leaf: np.asarray(leaf).size > 20
  t = compress.masked(compress.quantize(2), big)
  small, large = np.full((4, 4), 0.3, np.float32), np.linspace(
      -1, 1, 36, dtype=np.float32).reshape(6, 6)
  out = t({"a": small, "b": large})
  np.testing.assert_array_equal(out["a"], small)
  assert np.unique(out["b"]).size == 3
  out = t({"a": large, "b": small})
  assert np.unique(out["a"]).size == 3
  np.testing.assert_array_equal(out["b"], small)


def test_pytree_mask_is_copied_when_built():
  mask = {"a": True, "b": False}
  t = compress.masked(compress.quantize(2), mask)
  params = {"a": np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4),
            "b": np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4)}
  t(params)
  mask["b"] = True
  out = t(params)
  np.testing.assert_array_equal(out["b"], params["b"])
  assert np.unique(out["a"]).size == 3


@pytest.mark.parametrize("spec", ALL_TRANSFORMS)
def test_keeps_64_bit_dtypes_and_computes_float64_in_float64(spec):
  rng = np.random.default_rng(2)
  params = {"kernel": rng.normal(size=(12, 10)),  # float64
            "w": rng.normal(size=(10, 6)).astype(np.float32),
            "bias": rng.normal(size=(10,)),
            "table": np.arange(6).reshape(2, 3)}  # int64
  t = compress.parse(spec)
  out = t(params)
  chex.assert_trees_all_equal_shapes(out, params)
  for name in params:
    assert np.asarray(out[name]).dtype == params[name].dtype, name
  # float32 leaves are untouched by a float64 neighbour.
  alone = t({"kernel": params["kernel"].astype(np.float32), "w": params["w"]})
  _assert_bitwise_equal(out["w"], alone["w"])
  # float64 values: the float32 result to float32 precision (the exact
  # float64 values are checked per transform in compress_test.py), and no
  # overflow where float32 cannot represent the values at all.
  assert_close_to_scale(out["kernel"].astype(np.float32), alone["kernel"])
  huge = t({"kernel": params["kernel"] * 1e300, "w": params["w"]})["kernel"]
  assert np.asarray(huge).dtype == np.float64
  assert np.all(np.isfinite(huge))
  _assert_bitwise_equal(compress.unpack(t.pack(params)), out)


@pytest.mark.parametrize("spec", ALL_TRANSFORMS)
def test_zero_size_leaves_pass_through(spec):
  rng = np.random.default_rng(4)
  params = {"kernel": rng.normal(size=(12, 10)).astype(np.float32),
            "w": rng.normal(size=(10, 6)).astype(np.float32),
            "empty_kernel": np.zeros((0, 8), np.float32),
            "empty_w": np.zeros((3, 0, 2), np.float32)}
  t = compress.parse(spec)
  out = t(params)
  chex.assert_trees_all_equal_shapes_and_dtypes(out, params)
  without = t({"kernel": params["kernel"], "w": params["w"]})
  _assert_bitwise_equal({k: out[k] for k in ("kernel", "w")}, without)
  packed = t.pack(params)
  _assert_bitwise_equal(compress.unpack(packed), out)
  r = compress.report(params, packed)
  assert r.total.num_params == params["kernel"].size + params["w"].size


@pytest.mark.parametrize("spec", ALL_TRANSFORMS)
def test_string_round_trips(spec):
  tree = conftest.nested_tree()
  t = _parse(spec)
  again = compress.parse(str(t))
  assert again == t and hash(again) == hash(t)
  assert str(again) == str(t)
  assert compress.parse(str(again)) == again
  _assert_bitwise_equal(again(tree), t(tree))


@pytest.mark.parametrize("spec", ALL_TRANSFORMS)
def test_chain_of_one_and_identity_changes_nothing(spec):
  # Chaining is about the transform, not the tree: the nested one only.
  tree = conftest.nested_tree()
  t = _parse(spec)
  _assert_bitwise_equal(compress.chain(t)(tree), t(tree))
  _assert_bitwise_equal(
      compress.chain(compress.identity(), t, compress.identity())(tree),
      t(tree))


@pytest.mark.parametrize("spec", ALL_TRANSFORMS)
def test_pack_unpack_is_bit_exact(spec, tree):
  t = _applicable(spec, tree)
  packed = t.pack(tree)
  _assert_bitwise_equal(compress.unpack(packed), t(tree))
  assert compress.size_bytes(packed) <= compress.size_bytes(tree)


@pytest.mark.parametrize("spec", ALL_TRANSFORMS)
def test_does_not_mutate_its_input(spec):
  rng = np.random.default_rng(1)
  params = {"kernel": rng.normal(size=(10, 7)).astype(np.float32),
            "bias": rng.normal(size=(7,)).astype(np.float32)}
  before = jax.tree_util.tree_map(np.copy, params)
  compress.parse(spec)(params)
  _assert_bitwise_equal(params, before)


@pytest.mark.parametrize("spec", ALL_TRANSFORMS)
def test_rejects_non_finite_weights(spec):
  t = compress.parse(spec)
  params = {"kernel": np.ones((4, 4), np.float32)}
  params["kernel"][1, 2] = np.nan
  if spec == "identity":
    t(params)  # touches nothing, checks nothing
    return
  with pytest.raises(ValueError, match="non-finite.*'kernel'"):
    t(params)
