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
import conftest

ALL_TRANSFORMS = (
    "identity",
    "clip(threshold=0.05)",
    "clip(percentile=95)",
    "clip(percentile=100)",
    "clip(num_std=1.5)",
    "quantize(bits=1)",
    "quantize(bits=1,axis=-1)",
    "quantize(bits=2)",
    "quantize(bits=3,symmetric=False)",
    "quantize(bits=4,axis=-1)",
    "quantize(bits=5,symmetric=False,axis=0)",
    "quantize(bits=8)",
    "quantize(bits=16)",
    "prune(sparsity=0.5)",
    "prune(sparsity=0.3,scope='global')",
    "chain(prune(sparsity=0.2),quantize(bits=6))",
    "clip(percentile=99)+quantize(bits=4,axis=-1)+prune(sparsity=0.1)",
    "masked(quantize(bits=2),mask='.*kernel')",
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
  used = set()
  for spec in ALL_TRANSFORMS:
    used.update(re.findall(r"([a-z_]+)\(", spec))
    used.update(s for s in re.split(r"\W+", spec) if s in compress.names())
  assert set(compress.names()) <= used, set(compress.names()) - used


@pytest.mark.parametrize("spec", ALL_TRANSFORMS)
def test_keeps_structure_shapes_dtypes_and_is_finite(spec, tree):
  t = _applicable(spec, tree)
  out = t(tree)
  chex.assert_trees_all_equal_shapes_and_dtypes(out, tree)
  chex.assert_tree_all_finite([x for x in _leaves(out)
                               if jnp.issubdtype(x.dtype, jnp.floating)])


@pytest.mark.parametrize("spec", ALL_TRANSFORMS)
def test_passes_through_vectors_scalars_and_integers(spec, tree):
  t = _applicable(spec, tree)
  out = t(tree)
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
  chex.assert_trees_all_close(jax.jit(t)(tree), eager, rtol=1e-6, atol=1e-7)
  chex.assert_trees_all_close(t(tree), eager, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("spec", ALL_TRANSFORMS)
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
  # Eager calls reuse one compiled kernel too.
  t(params)
  assert len(t._compiled) == 1  # pylint: disable=protected-access


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
def test_chain_of_one_and_identity_changes_nothing(spec, tree):
  t = _applicable(spec, tree)
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
