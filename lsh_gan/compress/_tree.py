"""Leaf paths and leaf selection shared by every transform.

A parameter tree is flattened once into a list of leaves with '/'-joined path
strings; transforms work on that list and a parallel list of booleans saying
which leaves they may touch.
"""

from __future__ import annotations

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


def is_floating(leaf) -> bool:
  dtype = getattr(leaf, "dtype", None)
  return dtype is not None and jnp.issubdtype(dtype, jnp.floating)


def default_selected(leaf) -> bool:
  """The selection of every factory: floating leaves with ndim >= 2 (kernels)."""
  return is_floating(leaf) and len(getattr(leaf, "shape", ())) >= 2


def _mask_from_pytree(mask, treedef, num_leaves: int) -> list[bool]:
  index_tree = jax.tree_util.tree_unflatten(treedef, list(range(num_leaves)))
  mask_leaves, mask_def = jax.tree_util.tree_flatten(mask)
  try:
    subtrees = mask_def.flatten_up_to(index_tree)
  except (ValueError, TypeError) as e:
    raise ValueError(
        "mask: a pytree mask must have the structure of the parameters (or a "
        f"prefix of it): {e}") from None
  selected = [False] * num_leaves
  for value, subtree in zip(mask_leaves, subtrees):
    if not isinstance(value, (bool, np.bool_)):
      raise ValueError(
          "mask: a pytree mask must hold Python bools, got a leaf of type "
          f"{type(value).__name__}")
    for index in jax.tree_util.tree_leaves(subtree):
      selected[index] = bool(value)
  return selected


def resolve_mask(mask: Mask, leaves, paths, treedef) -> list[bool]:
  """Evaluates a mask to one bool per leaf (before the floating-point filter)."""
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
  if callable(mask):
    return [bool(mask(p, l)) for p, l in zip(paths, leaves)]
  return _mask_from_pytree(mask, treedef, len(leaves))


def validate_mask(mask: Mask) -> None:
  if isinstance(mask, str):
    try:
      re.compile(mask)
    except re.error as e:
      raise ValueError(f"mask={mask!r} is not a valid regex: {e}") from None
  elif mask is None:
    raise ValueError("mask: expected a regex, a callable or a pytree of bools, "
                     "got None")
