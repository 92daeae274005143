"""What a generator costs to run: multiply-accumulates and parameters."""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.extend  # pylint: disable=unused-import  # jax.extend.core is not loaded by `import jax`
import numpy as np

from lsh_gan.compress import _packing


def num_params(tree) -> int:
  """Entries of the array leaves of a tree (a stored leaf counts its dense
  size; Python scalars count one each).

  Examples:
    >>> import numpy as np
    >>> num_params({"w": np.zeros((3, 4)), "b": np.zeros(4)})
    16
  """
  total = 0
  for leaf in jax.tree_util.tree_leaves(tree, is_leaf=_packing.is_packed):
    total += int(getattr(leaf, "size", 1))
  return total


def _taps(out_size: int, in_size: int, kernel: int, stride: int, pad_lo: int,
          lhs_dilation: int, rhs_dilation: int) -> int:
  """(output position, kernel tap) pairs of one spatial dimension that read
  a real input element (not padding, not a zero a transposed convolution
  inserts between inputs)."""
  out = np.arange(out_size)[:, None] * stride
  tap = np.arange(kernel)[None, :] * rhs_dilation
  index = out + tap - pad_lo  # in the dilated, unpadded input
  real = ((index >= 0) & (index <= (in_size - 1) * lhs_dilation) &
          (index % lhs_dilation == 0))
  return int(real.sum())


def _conv_macs(eqn) -> int:
  lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
  out = eqn.outvars[0].aval.shape
  p = eqn.params
  dn = p["dimension_numbers"]
  lhs_spec, rhs_spec, out_spec = dn.lhs_spec, dn.rhs_spec, dn.out_spec
  spatial = 1
  for d in range(len(lhs_spec) - 2):
    spatial *= _taps(out[out_spec[d + 2]], lhs[lhs_spec[d + 2]],
                     rhs[rhs_spec[d + 2]], p["window_strides"][d],
                     p["padding"][d][0], p["lhs_dilation"][d],
                     p["rhs_dilation"][d])
  # Each output element of a batch reads rhs's in-features (C_in per group).
  return (out[out_spec[0]] * out[out_spec[1]] * rhs[rhs_spec[1]] * spatial)


def _dot_macs(eqn) -> int:
  lhs = eqn.invars[0].aval.shape
  (contract, _), _ = eqn.params["dimension_numbers"]
  out = eqn.outvars[0].aval.shape
  return math.prod(out) * math.prod(lhs[d] for d in contract)


def _sub_jaxprs(value):
  """The jaxprs held in one equation parameter."""
  if isinstance(value, jax.extend.core.ClosedJaxpr):
    yield value.jaxpr
  elif isinstance(value, jax.extend.core.Jaxpr):
    yield value
  elif isinstance(value, (tuple, list)):
    for v in value:
      yield from _sub_jaxprs(v)


def _count(jaxpr) -> int:
  total = 0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "dot_general":
      total += _dot_macs(eqn)
    elif name == "conv_general_dilated":
      total += _conv_macs(eqn)
    elif name == "while":
      raise ValueError("fn: has a while loop, whose trip count is not known "
                       "when traced; count the MACs of its body instead")
    elif name == "cond":  # the costliest branch
      total += max(_count(j) for j in _sub_jaxprs(eqn.params["branches"]))
    else:
      inner = sum(_count(j) for v in eqn.params.values()
                  for j in _sub_jaxprs(v))
      total += inner * (eqn.params["length"] if name == "scan" else 1)
  return total


def macs(fn: Callable[..., Any], *args, **kwargs) -> int:
  """Multiply-accumulates of ``fn(*args, **kwargs)``, counted on its trace.

  Sums, over the matrix products (``dot_general``: output size times the
  contracted size) and convolutions (output size times input features per
  group times the kernel taps that meet a real input element: padding and
  the zeros a transposed convolution inserts are not counted), in every
  nested call; a `scan` counts its body once per step, a `cond` its costliest
  branch. Nothing runs: the arguments may be ``jax.ShapeDtypeStruct``.
  Elementwise work (activations, normalisation) is not counted, as MAC counts
  in the compression literature do not count it.

  Raises:
    ValueError: for a ``while`` loop (its trip count is unknown).

  Examples:
    >>> import jax.numpy as jnp
    >>> macs(lambda a, b: a @ b, jnp.ones((2, 3)), jnp.ones((3, 4)))
    24
  """
  return _count(jax.make_jaxpr(lambda *a: fn(*a, **kwargs))(*args).jaxpr)
