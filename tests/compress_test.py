"""Each transform against numpy references, hand computations and properties."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lsh_gan import compress
from lsh_gan.compress import _base
from compress_common_test import assert_close_to_scale
import conftest


RNG = np.random.default_rng(42)


@pytest.fixture(autouse=True)
def _reseed():
  """Each test draws the same data whatever order the tests run in."""
  global RNG
  RNG = np.random.default_rng(42)


def _other_axes(ndim, axis):
  return None if axis is None else tuple(i for i in range(ndim) if i != axis % ndim)


# -- numpy references (float32 arithmetic, written from the documented formulas)


# The references run in float64: the exact quotient u = w / s, rounded half to
# even. float32 code (XLA evaluates w / s as w * (1/s)) can land on the other
# side of a rounding tie when u is within float32 error of a half-integer;
# such entries may take either neighbouring level, all others must match.


def _near_tie(u):
  return np.abs(np.abs(u - np.floor(u)) - 0.5) < 1e-6 * np.maximum(1, np.abs(u))


def np_quantize_symmetric(w, bits, axis=None):
  """Returns (values, lower level, upper level, near-tie mask)."""
  w = np.asarray(w, np.float64)
  axes = _other_axes(w.ndim, axis)
  if bits == 1:
    alpha = np.mean(np.abs(w), axis=axes, keepdims=True)
    v = np.where(w >= 0, alpha, -alpha) + 0 * w
    return v, v, v, np.zeros(w.shape, bool)
  qmax = 2 ** (bits - 1) - 1
  s = np.max(np.abs(w), axis=axes, keepdims=True) / qmax
  u = w / np.where(s > 0, s, 1)
  level = lambda q: np.clip(q, -qmax, qmax) * s
  return level(np.rint(u)), level(np.floor(u)), level(np.ceil(u)), _near_tie(u)


def np_quantize_asymmetric(w, bits, axis=None):
  """Like np_quantize_symmetric; a tied zero point may round either way."""
  w = np.asarray(w, np.float64)
  axes = _other_axes(w.ndim, axis)
  levels = 2 ** bits - 1
  lo = np.minimum(np.min(w, axis=axes, keepdims=True), 0)
  hi = np.maximum(np.max(w, axis=axes, keepdims=True), 0)
  s = (hi - lo) / levels
  s_safe = np.where(s > 0, s, 1)
  u = w / s_safe
  zero = -lo / s_safe
  variants = []
  for z in (np.rint(zero), np.where(_near_tie(zero), np.floor(zero), np.rint(zero)),
            np.where(_near_tie(zero), np.ceil(zero), np.rint(zero))):
    z = np.clip(z, 0, levels)
    level = lambda q, z=z: (np.clip(q + z, 0, levels) - z) * s
    variants.append((level(np.rint(u)), level(np.floor(u)), level(np.ceil(u)),
                     _near_tie(u)))
  return variants


def assert_matches_reference(got, reference, rtol=1e-6):
  """Every entry equals the reference; entries at a rounding tie may take
  either neighbouring level. `reference` may list variants (tied zero points);
  an entry must match one of them. Zero levels must be exact."""
  variants = reference if isinstance(reference, list) else [reference]
  got = np.asarray(got, np.float64)
  close = lambda a: np.isclose(got, a, rtol=rtol, atol=0)
  ok = np.zeros(got.shape, bool)
  for want, lower, upper, near in variants:
    ok |= np.where(near, close(lower) | close(upper), close(want))
  assert np.all(ok), (f"{np.sum(~ok)} of {ok.size} entries differ, e.g. "
                      f"{got[~ok][:5]} vs {variants[0][0][~ok][:5]}")


def np_prune(arrays, sparsity, dtype=np.float32):
  """Zero the round(n*s) smallest |w| jointly; ties to the lower index."""
  flat = np.concatenate([np.abs(a.astype(dtype)).ravel() for a in arrays])
  k = round(flat.size * sparsity)
  drop = np.zeros(flat.size, bool)
  drop[np.argsort(flat, kind="stable")[:k]] = True
  out, start = [], 0
  for a in arrays:
    mask = drop[start:start + a.size].reshape(a.shape)
    out.append(np.where(mask, np.zeros((), a.dtype), a))
    start += a.size
  return out


def _kernel(*shape, scale=1.0):
  return (RNG.normal(size=shape) * scale).astype(np.float32)


def _apply(t, w):
  return np.asarray(t({"kernel": w})["kernel"])


# -- quantize --------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 8, 12, 16])
@pytest.mark.parametrize("axis", [None, -1, 0, 2])
def test_symmetric_quantize_matches_numpy(bits, axis):
  w = _kernel(3, 5, 7, 11)
  got = _apply(compress.quantize(bits, axis=axis), w)
  assert_matches_reference(got, np_quantize_symmetric(w, bits, axis))


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8, 16])
@pytest.mark.parametrize("axis", [None, -1, 1])
@pytest.mark.parametrize("offset", [0.0, 0.8, -3.0])
def test_asymmetric_quantize_matches_numpy(bits, axis, offset):
  w = _kernel(9, 13) + np.float32(offset)  # also all-positive / all-negative
  got = _apply(compress.quantize(bits, symmetric=False, axis=axis), w)
  assert_matches_reference(got, np_quantize_asymmetric(w, bits, axis))


def test_quantize_hand_computed_values():
  w = np.array([[-1.0, -0.4], [0.1, 0.7]], np.float32)
  # 2 bits symmetric: s = 1 / 1, levels {-1, 0, 1}.
  np.testing.assert_array_equal(_apply(compress.quantize(2), w),
                                [[-1.0, 0.0], [0.0, 1.0]])
  # 3 bits symmetric: s = 1/3; -0.4 -> -1/3, 0.1 -> 0, 0.7 -> 2/3.
  np.testing.assert_allclose(_apply(compress.quantize(3), w),
                             [[-1.0, -1 / 3], [0.0, 2 / 3]], rtol=1e-6)
  # 1 bit: mean|w| = 0.55, sign.
  np.testing.assert_allclose(_apply(compress.quantize(1), w),
                             [[-0.55, -0.55], [0.55, 0.55]], rtol=1e-6)
  # 2 bits asymmetric on [-1, 0.7]: s = 1.7/3, zero point round(1/s) = 2,
  # levels {-2s, -s, 0, s}.
  s = 1.7 / 3
  np.testing.assert_allclose(_apply(compress.quantize(2, symmetric=False), w),
                             [[-2 * s, -s], [0.0, s]], rtol=1e-6)
  # Per output channel (axis=-1): column scales 1.0 and 0.7.
  np.testing.assert_allclose(_apply(compress.quantize(2, axis=-1), w),
                             [[-1.0, -0.7], [0.0, 0.7]], rtol=1e-6)


def test_one_bit_per_channel_uses_each_channels_mean_magnitude():
  w = np.array([[1.0, -4.0], [-3.0, 2.0]], np.float32)
  np.testing.assert_array_equal(_apply(compress.quantize(1, axis=-1), w),
                                [[2.0, -3.0], [-2.0, 3.0]])
  np.testing.assert_array_equal(_apply(compress.quantize(1, axis=0), w),
                                [[2.5, -2.5], [-2.5, 2.5]])


@pytest.mark.parametrize("bits,symmetric,axis", list(itertools.product(
    [1, 2, 3, 4, 8, 16], [True, False], [None, -1])))
def test_quantize_is_idempotent(bits, symmetric, axis):
  w = _kernel(6, 5, 40)
  t = compress.quantize(bits, symmetric=symmetric, axis=axis)
  once = _apply(t, w)
  twice = _apply(t, once)
  # Scales recomputed from the quantized tensor agree to float32 rounding
  # (for 1 bit, the float32 sum behind mean|w|): every value moves by a few
  # ulps of the tensor's scale at most, and no two levels merge.
  np.testing.assert_allclose(twice, once, rtol=0,
                             atol=8 * np.finfo(np.float32).eps *
                             np.max(np.abs(once)))
  assert np.unique(twice).size == np.unique(once).size


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 6, 8])
@pytest.mark.parametrize("symmetric", [True, False])
def test_at_most_2_to_the_bits_values_per_tensor_and_per_channel(bits, symmetric):
  w = _kernel(3, 3, 16, 24)
  per_tensor = _apply(compress.quantize(bits, symmetric=symmetric), w)
  assert np.unique(per_tensor).size <= 2 ** bits
  per_channel = _apply(compress.quantize(bits, symmetric=symmetric, axis=-1), w)
  for c in range(w.shape[-1]):
    assert np.unique(per_channel[..., c]).size <= 2 ** bits
  if bits >= 4:  # enough values that the grids really differ per channel
    assert np.unique(per_channel).size > 2 ** bits


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 16])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("axis", [None, -1])
def test_zero_stays_exactly_zero(bits, symmetric, axis):
  w = _kernel(20, 30) + np.float32(0.3)  # asymmetric range
  w[RNG.random(w.shape) < 0.3] = 0.0
  out = _apply(compress.quantize(bits, symmetric=symmetric, axis=axis), w)
  assert np.all(out[w == 0] == 0)


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
@pytest.mark.parametrize("symmetric", [True, False])
def test_per_channel_error_at_most_per_tensor_error(bits, symmetric):
  channel_scale = np.logspace(-1, 1, 32).astype(np.float32)
  w = _kernel(3, 3, 16, 32) * channel_scale
  err_tensor = np.linalg.norm(
      _apply(compress.quantize(bits, symmetric=symmetric), w) - w)
  err_channel = np.linalg.norm(
      _apply(compress.quantize(bits, symmetric=symmetric, axis=-1), w) - w)
  assert err_channel <= err_tensor
  if bits >= 4:  # channel scales spanning 100x: a big win once levels suffice
    assert err_channel < 0.5 * err_tensor


def test_all_zero_tensor_quantizes_to_zero():
  w = np.zeros((4, 4), np.float32)
  for t in (compress.quantize(1), compress.quantize(4),
            compress.quantize(3, symmetric=False, axis=0)):
    np.testing.assert_array_equal(_apply(t, w), w)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_leaves_quantize_in_float32_and_keep_dtype(dtype):
  w = jnp.asarray(_kernel(8, 12), dtype)
  out = compress.quantize(4)({"kernel": w})["kernel"]
  assert out.dtype == dtype
  in_float32 = compress.quantize(4)({"kernel": w.astype(jnp.float32)})["kernel"]
  np.testing.assert_array_equal(np.asarray(out),
                                np.asarray(in_float32.astype(dtype)))


# -- clip ------------------------------------------------------------------------


@pytest.mark.parametrize("percentile", [0.5, 25, 50, 90, 99, 99.9, 100])
def test_percentile_clip_matches_numpy(percentile):
  w = _kernel(33, 17)
  c = np.percentile(np.abs(w).astype(np.float64), percentile)
  got = _apply(compress.clip(percentile=percentile), w)
  np.testing.assert_allclose(got, np.clip(w, -c, c), rtol=1e-6, atol=1e-7)
  assert np.max(np.abs(got)) <= np.float32(c) * (1 + 1e-6)


def test_threshold_and_num_std_clip_match_numpy():
  w = _kernel(40, 25, scale=2.0)
  np.testing.assert_array_equal(_apply(compress.clip(0.7), w),
                                np.clip(w, -0.7, 0.7).astype(np.float32))
  c = 1.5 * np.std(w.astype(np.float64))
  np.testing.assert_allclose(_apply(compress.clip(num_std=1.5), w),
                             np.clip(w, -c, c), rtol=1e-6)


@pytest.mark.parametrize("t", [compress.clip(0.3), compress.clip(percentile=80),
                               compress.clip(num_std=0.5)])
def test_clip_bound_holds_and_inner_values_are_untouched(t):
  w = _kernel(50, 20)
  out = _apply(t, w)
  c = np.max(np.abs(out))
  assert np.all(np.abs(out) <= c)
  inside = np.abs(w) < c
  np.testing.assert_array_equal(out[inside], w[inside])
  assert np.all(out[~inside] == np.sign(w[~inside]) * c)
  assert np.mean(~inside) > 0.01  # something was clipped


def test_clip_to_zero_threshold_zeroes_the_kernel():
  np.testing.assert_array_equal(_apply(compress.clip(0.0), _kernel(3, 3)),
                                np.zeros((3, 3), np.float32))


# -- prune -----------------------------------------------------------------------


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.25, 0.5, 0.9, 0.999])
def test_prune_zeroes_exactly_the_smallest(sparsity):
  w = _kernel(37, 29)
  out = _apply(compress.prune(sparsity), w)
  np.testing.assert_array_equal(out, np_prune([w], sparsity)[0])
  assert np.count_nonzero(out == 0) == round(w.size * sparsity)
  if 0 < sparsity:
    assert np.max(np.abs(w[out == 0])) <= np.min(np.abs(w[out != 0]))


def test_prune_breaks_ties_by_index():
  # Integer magnitudes: many ties at every threshold.
  w = RNG.integers(-3, 4, size=(15, 8)).astype(np.float32)
  for sparsity in (0.05, 0.3, 0.5, 0.77):
    out = _apply(compress.prune(sparsity), w)
    np.testing.assert_array_equal(out, np_prune([w], sparsity)[0])
    assert np.count_nonzero((out == 0) & (w != 0)) == max(
        0, round(w.size * sparsity) - np.count_nonzero(w == 0))


def test_prune_rounds_half_to_even():
  w = np.arange(1, 11, dtype=np.float32).reshape(2, 5)  # n = 10
  assert np.count_nonzero(_apply(compress.prune(0.25), w) == 0) == 2  # 2.5 -> 2
  assert np.count_nonzero(_apply(compress.prune(0.35), w) == 0) == 4  # 3.5 -> 4


def test_global_prune_matches_numpy_and_ranks_across_leaves():
  params = {"a": {"kernel": _kernel(20, 10, scale=0.02)},
            "b": {"kernel": _kernel(3, 3, 4, 5, scale=1.0)},
            "b_ties": {"kernel": RNG.integers(-2, 3, (6, 7)).astype(np.float32)},
            "bias": np.full((10,), 1e-9, np.float32)}
  out = compress.prune(0.4, scope="global")(params)
  kernels = [params[k]["kernel"] for k in ("a", "b", "b_ties")]
  for k, want in zip(("a", "b", "b_ties"), np_prune(kernels, 0.4)):
    np.testing.assert_array_equal(np.asarray(out[k]["kernel"]), want)
  np.testing.assert_array_equal(np.asarray(out["bias"]), params["bias"])
  # The small-magnitude leaf loses far more than 40%, the large one far less.
  assert np.mean(np.asarray(out["a"]["kernel"]) == 0) > 0.7
  assert np.mean(np.asarray(out["b"]["kernel"]) == 0) < 0.2


def test_prune_is_idempotent():
  w = _kernel(31, 9)
  once = _apply(compress.prune(0.6), w)
  np.testing.assert_array_equal(_apply(compress.prune(0.6), once), once)


# -- chain, masked, selection ----------------------------------------------------


def test_chain_equals_sequential_application():
  tree = conftest.linen_variables()
  a, b, c = (compress.clip(percentile=97), compress.prune(0.3),
             compress.quantize(3, axis=-1))
  # One compiled program against three: XLA may round differently in the
  # last bit, and so, at a quantization tie, choose the other level.
  assert_close_to_scale(compress.chain(a, b, c)(tree), c(b(a(tree))))
  chex.assert_trees_all_equal(compress.chain(compress.chain(a, b), c)(tree),
                              compress.chain(a, compress.chain(b, c))(tree))
  assert str(compress.chain(a, compress.chain(b, c))) == (
      "clip(percentile=97)+prune(sparsity=0.3)+quantize(bits=3,axis=-1)")


def test_default_selection_touches_only_floating_kernels():
  tree = conftest.linen_variables()
  out = compress.quantize(2)(tree)
  for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(tree)[0],
                          jax.tree_util.tree_leaves(out)):
    changed = not np.array_equal(np.asarray(x), np.asarray(y))
    assert changed == path[-1].key.endswith("kernel"), path


def _assert_only_selected_changed(tree, out, selected_paths, transform):
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  for (path, x), y in zip(flat, jax.tree_util.tree_leaves(out)):
    name = compress._tree.path_str(path)  # pylint: disable=protected-access
    if name in selected_paths:
      # Compiled alone or within the whole tree: last-bit rounding may differ.
      assert_close_to_scale(y, transform({"kernel": x})["kernel"])
    else:
      np.testing.assert_array_equal(np.asarray(y), np.asarray(x))


def test_masked_with_regex_callable_and_pytree_select_the_same_leaves():
  tree = conftest.linen_variables()
  q = compress.quantize(2)
  selected = {"params/Dense_0/kernel", "params/ConvTranspose_0/bias"}
  by_regex = compress.masked(q, r"params/(Dense_0/kernel|ConvTranspose_0/bias)")
  by_callable = compress.masked(q, lambda path, leaf: path in selected)
  by_pytree = compress.masked(q, jax.tree_util.tree_map_with_path(
      lambda p, _: compress._tree.path_str(p) in selected, tree))  # pylint: disable=protected-access
  for t in (by_regex, by_callable, by_pytree):
    _assert_only_selected_changed(tree, t(tree), selected, q)


def test_masked_with_a_prefix_pytree():
  tree = conftest.linen_variables()
  mask = {"batch_stats": False,
          "params": {k: k == "Conv_0" for k in tree["params"]}}
  out = compress.masked(compress.quantize(2), mask)(tree)
  _assert_only_selected_changed(tree, out, {"params/Conv_0/kernel",
                                            "params/Conv_0/bias"},
                                compress.quantize(2))


def test_nested_masks_intersect():
  tree = conftest.linen_variables()
  inner = compress.masked(compress.quantize(2), r".*kernel")
  outer = compress.masked(inner, r"params/Conv.*")
  _assert_only_selected_changed(
      tree, outer(tree), {"params/Conv_0/kernel", "params/ConvTranspose_0/kernel"},
      compress.quantize(2))


def test_masked_never_touches_integer_leaves():
  tree = conftest.nested_tree()
  out = compress.masked(compress.quantize(1), ".*")(tree)
  np.testing.assert_array_equal(out["table"], tree["table"])
  assert out["step"] == tree["step"]
  assert not np.array_equal(np.asarray(out["layers"][0]["b"]),
                            tree["layers"][0]["b"])  # 1-D but selected


def test_masks_see_nnx_paths_without_value_suffix():
  state = conftest.nnx_state()
  out = compress.masked(compress.quantize(2), r"conv/kernel")(state)
  assert not np.array_equal(np.asarray(out["conv"]["kernel"][...]),
                            np.asarray(state["conv"]["kernel"][...]))
  np.testing.assert_array_equal(np.asarray(out["linear"]["kernel"][...]),
                                np.asarray(state["linear"]["kernel"][...]))
  assert type(out) is type(state)


def test_regex_that_selects_nothing_lists_the_paths():
  tree = conftest.linen_variables()
  with pytest.raises(ValueError, match=r"mask='nope' selects no floating.*"
                     r"'params/Dense_0/kernel'"):
    compress.masked(compress.quantize(4), "nope")(tree)


def test_compressed_generator_still_generates():
  from lsh_gan.models import dcgan  # pylint: disable=g-import-not-at-top
  g = dcgan.Generator(width=8)
  z = jax.random.normal(jax.random.key(0), (4, 16))
  variables = g.init(jax.random.key(1), z)
  images = g.apply(compress.quantize(4, axis=-1)(variables), z)
  assert images.shape == (4, 28, 28, 1)
  assert float(jnp.max(jnp.abs(images))) <= 1.0


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize("make,match", [
    (lambda: compress.quantize(0), r"bits=0 must be an integer in 1\.\.16"),
    (lambda: compress.quantize(17), r"bits=17"),
    (lambda: compress.quantize(4.0), r"bits=4\.0"),
    (lambda: compress.quantize(True), r"bits=True"),
    (lambda: compress.quantize(4, symmetric="yes"), r"symmetric='yes'"),
    (lambda: compress.quantize(4, axis=1.5), r"axis=1\.5"),
    (lambda: compress.prune(1.0), r"sparsity=1\.0 must be a number in \[0, 1\)"),
    (lambda: compress.prune(-0.1), r"sparsity=-0\.1"),
    (lambda: compress.prune(0.5, scope="layer"), r"scope='layer'"),
    (lambda: compress.clip(-1.0), r"threshold=-1\.0 must be >= 0"),
    (lambda: compress.clip(float("nan")), r"threshold=nan must be a finite"),
    (lambda: compress.clip(percentile=0), r"percentile=0 must be in \(0, 100\]"),
    (lambda: compress.clip(percentile=100.5), r"percentile=100\.5"),
    (lambda: compress.clip(num_std=0), r"num_std=0 must be > 0"),
    (lambda: compress.clip(num_std=-2.0), r"num_std=-2\.0"),
    (lambda: compress.clip(), r"exactly one of threshold, percentile, num_std"),
    (lambda: compress.clip(1.0, percentile=50), r"exactly one"),
    (lambda: compress.masked(compress.quantize(4), "(["), r"mask='\(\[' is not"),
    (lambda: compress.chain(compress.quantize(4), 3), r"chain: expected"),
])
def test_bad_arguments_raise_value_error_naming_them(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_axis_out_of_range_names_axis_and_leaf():
  with pytest.raises(ValueError, match=r"axis=2 is out of range for leaf "
                     r"'kernel' with shape \(4, 5\)"):
    compress.quantize(4, axis=2)({"kernel": _kernel(4, 5)})
  with pytest.raises(ValueError, match=r"axis=-3"):
    compress.quantize(4, axis=-3).pack({"kernel": _kernel(4, 5)})


def test_packed_input_is_refused():
  packed = compress.pack({"kernel": _kernel(4, 5)}, 4)
  with pytest.raises(ValueError, match="unpack"):
    compress.quantize(4)(packed)


@pytest.mark.parametrize("spec,match", [
    ("quantise(bits=4)", r"unknown transform 'quantise'; valid names: chain, "
     r"clip, identity, masked, prune, quantize"),
    ("quantize(bitz=4)", r"bad arguments for quantize\(\).*valid arguments: "
     r"bits, symmetric, axis"),
    ("quantize(bits=x)", r"not a literal value"),
    ("quantize(bits=4", r"cannot parse"),
    ("quantize(bits=4)*2", r"cannot parse"),
    ("", r"non-empty"),
    ("quantize(bits=40)", r"bits=40"),
])
def test_parse_errors(spec, match):
  with pytest.raises(ValueError, match=match):
    compress.parse(spec)


def test_parse_accepts_positional_bare_and_spaced_forms():
  assert str(compress.parse(" quantize(4, axis=-1) + prune(0.5) ")) == (
      "quantize(bits=4,axis=-1)+prune(sparsity=0.5)")
  assert compress.parse("identity") == compress.identity()
  assert str(compress.parse("quantize(bits=4,symmetric=True)")) == (
      "quantize(bits=4)")  # defaults are dropped from the canonical form
  assert str(compress.masked(compress.quantize(4), lambda p, x: True)).startswith(
      "masked(quantize(bits=4),mask=<callable")
  assert not compress.masked(compress.quantize(4), lambda p, x: True).representable()


def test_parse_names_a_missing_required_argument():
  with pytest.raises(ValueError, match=r"quantize\(\) in 'quantize' needs the "
                     r"argument\(s\) bits"):
    compress.parse("quantize")
  with pytest.raises(ValueError, match=r"needs the argument\(s\) sparsity"):
    compress.parse("clip(1.0)+prune")
  with pytest.raises(ValueError, match=r"needs the argument\(s\) mask"):
    compress.parse("masked(quantize(4))")


@pytest.mark.parametrize("spec", [
    "masked(quantize(4), mask=1)", "masked(quantize(4), mask=[1, 2])",
    "masked(quantize(4), mask={})", "masked(quantize(4), mask=prune(0.5))",
    "masked(quantize(4), mask=None)"])
def test_parse_rejects_bad_masks_before_applying(spec):
  with pytest.raises(ValueError, match=r"mask"):
    compress.parse(spec)


@pytest.mark.parametrize("mask", [1, 2.5, [True, 3], None, compress.prune(0.5),
                                  lambda path: True])
def test_masked_rejects_bad_masks_at_construction(mask):
  with pytest.raises(ValueError, match=r"mask"):
    compress.masked(compress.quantize(4), mask)


@pytest.mark.parametrize("make,canonical", [
    (lambda: compress.prune(np.float32(0.5)), "prune(sparsity=0.5)"),
    (lambda: compress.prune(np.float64(0.25), scope="global"),
     "prune(sparsity=0.25,scope='global')"),
    (lambda: compress.quantize(np.int64(4), symmetric=np.bool_(False),
                               axis=np.int32(-1)),
     "quantize(bits=4,symmetric=False,axis=-1)"),
    (lambda: compress.clip(np.float64(0.5)), "clip(threshold=0.5)"),
    (lambda: compress.clip(percentile=np.float32(99.5)),
     "clip(percentile=99.5)"),
    (lambda: compress.clip(num_std=np.int64(3)), "clip(num_std=3)"),
])
def test_numpy_arguments_give_parseable_strings(make, canonical):
  t = make()
  assert str(t) == canonical
  assert compress.parse(str(t)) == t


def test_float32_arguments_round_trip_exactly():
  t = compress.prune(np.float32(0.1))
  assert compress.parse(str(t)) == t
  assert t.args["sparsity"] == float(np.float32(0.1))


def test_register_refuses_to_overwrite_unless_asked(monkeypatch):
  monkeypatch.setattr(_base, "_REGISTRY", dict(_base._REGISTRY))  # pylint: disable=protected-access
  with pytest.raises(ValueError, match=r"name='quantize' is already registered"
                     r".*replace=True"):
    compress.register("quantize", compress.prune)
  assert compress.get("quantize") is compress.quantize
  compress.register("quantize", compress.prune, replace=True)
  assert compress.get("quantize") is compress.prune
  compress.register("sparsify", compress.prune)
  assert str(compress.parse("sparsify(0.5)")) == "prune(sparsity=0.5)"
  with pytest.raises(ValueError, match=r"name='not a name'"):
    compress.register("not a name", compress.prune)
  with pytest.raises(ValueError, match=r"factory=3"):
    compress.register("three", 3)


# -- dtypes ----------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("axis", [None, -1])
def test_float64_quantize_is_computed_in_float64(bits, axis):
  w = RNG.normal(size=(9, 13))
  for scale in (1.0, 1e300, 1e-300):
    got = _apply(compress.quantize(bits, axis=axis), w * scale)
    assert got.dtype == np.float64
    assert_matches_reference(got, np_quantize_symmetric(w * scale, bits, axis),
                             rtol=1e-12)
    got = _apply(compress.quantize(bits, symmetric=False, axis=axis), w * scale)
    assert_matches_reference(
        got, np_quantize_asymmetric(w * scale, bits, axis), rtol=1e-12)


def test_float64_clip_and_prune_keep_the_untouched_values_exactly():
  w = RNG.normal(size=(30, 20)) * 1e-3
  w[0, 0] = 1e300  # no float32 overflow
  out = _apply(compress.clip(0.002), w)
  assert out.dtype == np.float64
  np.testing.assert_array_equal(out, np.clip(w, -0.002, 0.002))
  c = np.percentile(np.abs(w), 90)
  np.testing.assert_allclose(_apply(compress.clip(percentile=90), w),
                             np.clip(w, -c, c), rtol=1e-12, atol=0)
  # Magnitudes that float32 cannot tell apart are still ranked exactly.
  w = 1 + RNG.random((20, 20)) * 1e-9
  out = _apply(compress.prune(0.5), w)
  np.testing.assert_array_equal(out, np_prune([w], 0.5, np.float64)[0])


def test_float64_pack_round_trips_in_float64(tmp_path):
  params = {"kernel": RNG.normal(size=(6, 40)) * 1e200}
  t = compress.quantize(5, symmetric=False, axis=-1)
  packed = t.pack(params)
  assert packed["kernel"].scale.dtype == np.float64
  chex.assert_trees_all_equal(compress.unpack(packed), t(params))
  compress.save(tmp_path / "ckpt", packed)
  restored = compress.restore(tmp_path / "ckpt")
  chex.assert_trees_all_equal(compress.unpack(restored), t(params))


def test_zero_size_leaves_pass_through_every_factory_and_report():
  params = {"kernel": np.zeros((0, 5), np.float32), "w": _kernel(4, 5)}
  for t in (compress.quantize(4), compress.clip(percentile=90),
            compress.clip(num_std=2.0), compress.prune(0.5),
            compress.prune(0.5, scope="global"),
            compress.masked(compress.quantize(2), ".*")):
    out = t(params)
    assert out["kernel"].shape == (0, 5)
    assert out["kernel"].dtype == np.float32
  r = compress.report(params, compress.pack(params, 4))
  assert r.leaves[0].num_params == 0 and r.leaves[0].relative_l2_error == 0


def test_report_of_a_tree_with_string_and_scalar_leaves():
  params = {"name": "generator", "step": 3, "kernel": _kernel(6, 5)}
  r = compress.report(params, compress.quantize(4)(params))
  rows = {row.path: row for row in r.leaves}
  assert rows["name"].relative_l2_error == 0
  assert rows["step"].relative_l2_error == 0
  assert 0 < rows["kernel"].relative_l2_error < 0.2


class _Scale(compress.Transform):
  """A user's transform whose state (the factor) is not in its string."""
  name = "scale"

  def __init__(self, factor):
    super().__init__()
    self.factor = factor

  def _selection(self, leaves, ctx, selected):
    return [hasattr(x, "dtype") for x in leaves]

  def _apply(self, leaves, ctx, selected, pack):
    return [x * self.factor if hasattr(x, "dtype") else x for x in leaves]


def test_user_transforms_with_state_outside_their_string_never_share():
  # Both print as "scale()": sharing a kernel or a jit trace by the string
  # would give the second the first one's factor.
  params = {"w": np.ones((2, 2), np.float32)}
  two, three = _Scale(2.0), _Scale(3.0)
  assert str(two) == str(three) and two != three and two == two
  np.testing.assert_array_equal(two(params)["w"], 2.0)
  np.testing.assert_array_equal(three(params)["w"], 3.0)
  np.testing.assert_array_equal(jax.jit(two)(params)["w"], 2.0)
  np.testing.assert_array_equal(jax.jit(three)(params)["w"], 3.0)
  both = compress.chain(two, three)
  np.testing.assert_array_equal(both(params)["w"], 6.0)
  np.testing.assert_array_equal(
      compress.chain(three, three)(params)["w"], 9.0)


@pytest.mark.parametrize("spec", [
    "masked(quantize(2), mask=False)", "masked(quantize(2), mask=True)",
    "masked(quantize(2), {'params': True})"])
def test_a_transform_string_takes_only_a_regex_mask(spec):
  with pytest.raises(ValueError, match="a transform string takes a regex "
                     "mask"):
    compress.parse(spec)


def test_report_reads_bfloat16_leaves_as_numbers():
  # numpy sees bfloat16 as kind "V"; the error must still be measured.
  kernel = jnp.asarray(np.random.default_rng(0).normal(size=(8, 8)),
                       jnp.bfloat16)
  params = {"kernel": kernel}
  total = compress.report(params, compress.quantize(4)(params)).total
  assert 0 < total.relative_l2_error < 0.2
