"""Leaf paths and leaf selection shared by every transform.

A parameter tree is flattened once into a list of leaves with '/'-joined path
strings; transforms work on that list and a parallel list of booleans saying
which leaves they may touch.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from typing import Any, Callable, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

# A mask selects leaves: a regex fully matched against the leaf path, a
# callable ``(path, leaf) -> bool``, or a pytree of Python bools (a prefix of
# the parameter tree is allowed, as in optax.masked).
Mask = Union[str, Callable[[str, Any], bool], Any]


def _key_str(key) -> str | None:
  if isinstance(key, jax.tree_util.DictKey):
    return str(key.key)
  if isinstance(key, jax.tree_util.SequenceKey):
    return str(key.idx)
  if isinstance(key, jax.tree_util.GetAttrKey):
    return key.name
  if isinstance(key, jax.tree_util.FlattenedIndexKey):
    return str(key.key)
  return str(key)


def path_str(path: Sequence[Any]) -> str:
  """Joins a key path with '/'; a trailing NNX ``.value`` is dropped.

  Flax NNX variables flatten to ``.../kernel/value``; users think of that leaf
  as ``.../kernel``, so regex masks written for Linen trees also fit NNX states.
  """
  parts = [_key_str(k) for k in path]
  if (len(parts) > 1 and isinstance(path[-1], jax.tree_util.GetAttrKey)
      and parts[-1] == "value"):
    parts = parts[:-1]
  return "/".join(parts)


def flatten(tree, is_leaf=None):
  """Returns (leaves, paths, treedef) of a pytree."""
  with_path, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)
  paths = tuple(path_str(p) for p, _ in with_path)
  leaves = [leaf for _, leaf in with_path]
  return leaves, paths, treedef


def is_array(leaf) -> bool:
  """Whether a leaf is an array (numpy, JAX, a tracer or a numpy scalar).

  Arrays go into the compiled kernel as arguments; every other leaf (Python
  numbers, strings, other objects) passes through untouched.
  """
  return hasattr(leaf, "dtype") and hasattr(leaf, "shape")


class _Static:
  """Stands for a non-array leaf inside a compiled kernel: nothing selects it."""

  def __repr__(self):
    return "<static leaf>"


STATIC = _Static()

_WIDE_DTYPES = frozenset(
    np.dtype(d) for d in ("float64", "int64", "uint64", "complex128"))


def x64_scope(arrays):
  """A context in which JAX keeps the 64-bit dtypes of `arrays`.

  JAX truncates float64 and int64 inputs to 32 bits unless ``jax_enable_x64``
  is set; the transform contract keeps dtypes, so a call on concrete 64-bit
  leaves runs with 64-bit types enabled (a thread-local, scoped setting).
  Tracers already carry the dtype the caller's trace chose.
  """
  if jax.config.read("jax_enable_x64") or not any(
      np.dtype(x.dtype) in _WIDE_DTYPES and not isinstance(x, jax.core.Tracer)
      for x in arrays):
    return contextlib.nullcontext()
  return jax.enable_x64(True)


def is_floating(leaf) -> bool:
  dtype = getattr(leaf, "dtype", None)
  return dtype is not None and jnp.issubdtype(dtype, jnp.floating)


def default_selected(leaf) -> bool:
  """The selection of every factory: floating leaves with ndim >= 2 (kernels)."""
  return is_floating(leaf) and len(getattr(leaf, "shape", ())) >= 2


class PytreeMask:
  """A snapshot of a pytree of bools, taken when the mask is built.

  Holding the values (not the user's containers) means that changing the
  user's dict afterwards cannot change what a built transform selects.
  """

  def __init__(self, mask):
    values, self.treedef = jax.tree_util.tree_flatten(mask)
    if not values:
      raise ValueError(f"mask={mask!r}: a pytree mask must hold at least one "
                       "bool")
    for value in values:
      if not isinstance(value, (bool, np.bool_)):
        raise ValueError(
            f"mask={mask!r} must be a regex string, a callable "
            "(path, leaf) -> bool, or a pytree of Python bools; it holds a "
            f"leaf of type {type(value).__name__}")
    self.values = tuple(bool(v) for v in values)

  def resolve(self, treedef, num_leaves: int) -> list[bool]:
    index_tree = jax.tree_util.tree_unflatten(treedef, list(range(num_leaves)))
    try:
      subtrees = self.treedef.flatten_up_to(index_tree)
    except (ValueError, TypeError) as e:
      raise ValueError(
          "mask: a pytree mask must have the structure of the parameters (or "
          f"a prefix of it): {e}") from None
    selected = [False] * num_leaves
    for value, subtree in zip(self.values, subtrees):
      for index in jax.tree_util.tree_leaves(subtree):
        selected[index] = value
    return selected


def resolve_mask(mask: Mask, leaves, paths, treedef) -> list[bool]:
  """Evaluates a mask to one bool per leaf (before the floating-point filter).

  Args:
    mask: a regex string, a callable ``(path, leaf) -> bool`` or a
      `PytreeMask`.
    leaves: the leaves (a callable mask is called on each).
    paths: their '/'-joined paths.
    treedef: the tree structure (for a pytree mask).

  Returns:
    One bool per leaf.

  Raises:
    ValueError: for a regex that selects no floating-point leaf (the message
      lists the leaf paths).
  """
  if isinstance(mask, str):
    pattern = re.compile(mask)
    selected = [pattern.fullmatch(p) is not None for p in paths]
    if not any(s and is_floating(l) for s, l in zip(selected, leaves)):
      shown = ", ".join(repr(p) for p in paths[:50])
      more = f" ... ({len(paths) - 50} more)" if len(paths) > 50 else ""
      raise ValueError(
          f"mask={mask!r} selects no floating-point leaf; the leaf paths are: "
          f"{shown}{more}")
    return selected
  if isinstance(mask, PytreeMask):
    return mask.resolve(treedef, len(leaves))
  return [bool(mask(p, l)) for p, l in zip(paths, leaves)]


def validate_mask(mask: Mask):
  """Checks a mask when it is built; returns it in the form `resolve_mask` reads.

  Raises:
    ValueError: for an invalid regex, a callable that cannot take
      ``(path, leaf)``, or anything else that is not a pytree of bools.
  """
  if isinstance(mask, str):
    try:
      re.compile(mask)
    except re.error as e:
      raise ValueError(f"mask={mask!r} is not a valid regex: {e}") from None
    return mask
  if callable(mask):
    try:
      signature = inspect.signature(mask)
    except (TypeError, ValueError):  # builtins without a signature
      return mask
    try:
      signature.bind("path", None)
    except TypeError:
      raise ValueError(f"mask={mask!r}: a callable mask must take two "
                       f"arguments (path, leaf); its signature is "
                       f"{signature}") from None
    return mask
  if mask is None:
    raise ValueError("mask: expected a regex, a callable or a pytree of bools, "
                     "got None")
  return PytreeMask(mask)
