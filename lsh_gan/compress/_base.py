"""The transform type, its composition (`chain`, `masked`) and its string form.

A transform is a pure function ``params -> params``: same tree structure, same
shapes and dtypes, jit-able, no mutation. Transforms here are small objects so
that they also carry their canonical string (``"quantize(bits=4,axis=-1)"``),
which configs and the command line use, and a `pack` method for real low-bit
storage.
"""

from __future__ import annotations

import ast
import collections
import inspect
import numbers
import threading
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan.compress import _packing
from lsh_gan.compress import _tree

# What a transform sees besides the leaves: their paths, the tree structure
# (for pytree masks) and the values of its callable masks, which are evaluated
# on the caller's leaves before compiling (keyed by the id of the `_Masked`
# node that holds the callable).
Context = collections.namedtuple("Context", ["paths", "treedef", "masks"])

# Compiled kernels of representable transforms, shared by equal transforms:
# (kernel identity, call key) -> jitted function. Bounded, least recently used
# first out.
_KERNELS: collections.OrderedDict = collections.OrderedDict()
_MAX_KERNELS = 256
_KERNELS_LOCK = threading.Lock()

# Counts kernel traces; tests read it to check that a repeated call with the
# same tree structure compiles nothing new.
_TRACE_COUNT = 0


@jax.jit
def _all_finite(leaves):
  return jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])


def _build_kernel(transform: "Transform", key) -> Callable:
  """A jitted pure function of the array leaves, built from `key` alone.

  Everything the trace depends on besides the array values is in `key`: the
  pack flag, the tree structure, the leaf paths, which leaves are arrays
  (with their shapes and dtypes) and the values of callable masks. Non-array
  leaves enter as a placeholder that no selection picks, and the caller puts
  its own non-array leaves back into the output.
  """
  pack, treedef, paths, signatures, mask_values = key
  ctx = Context(paths, treedef, dict(mask_values))
  array_index = [i for i, sig in enumerate(signatures) if sig is not None]

  def apply_arrays(arrays):
    global _TRACE_COUNT
    _TRACE_COUNT += 1
    full = [_tree.STATIC] * len(signatures)
    for i, x in zip(array_index, arrays):
      full[i] = x
    out = transform._apply(full, ctx, None, pack)  # pylint: disable=protected-access
    return [out[i] for i in array_index]

  return jax.jit(apply_arrays)


class Transform:
  """A pure ``params -> params`` compression transform.

  Call it on a parameter tree (a Flax Linen ``params`` dict, a Flax NNX
  ``State``, or nested dicts/lists/tuples of arrays) to get the compressed
  tree; call `pack` to get the same values in real low-bit storage. ``str(t)``
  is the canonical string that `parse` reads back, and transforms with the
  same string are equal and behave the same.

  Eager calls run a jitted kernel compiled once per tree structure, leaf
  paths, leaf shapes and dtypes (and callable-mask values); equal transforms
  share it. ``jax.jit(t)`` works too. Array leaves keep their dtype: float64
  leaves are computed in float64, with JAX's 64-bit types enabled for the
  call (under an outer ``jax.jit`` without ``jax_enable_x64``, JAX has made
  them float32 before the transform sees them). Non-array leaves (Python
  numbers, strings) pass through. Eager calls
  also check that the leaves the transform touches are finite and raise
  ``ValueError`` otherwise; under an outer ``jax.jit`` that check cannot run.
  """

  name: str = "transform"
  # Whether str(self) spells out everything that decides the transform's
  # behaviour (true of the built-in factories, whose state is their args).
  # Only then do transforms with one string compare equal and share
  # compiled kernels; a subclass keeping state elsewhere compares by
  # identity and compiles its own kernels. Set it in a subclass only if its
  # string captures all of its state.
  STRING_IS_STATE: bool = False

  def __init__(self, args: dict[str, Any] | None = None):
    self._args = dict(args or {})
    self._kernels: dict[Any, Callable] = {}

  @property
  def args(self) -> dict[str, Any]:
    """The arguments that differ from the factory's defaults (a copy: equal
    transforms share compiled kernels, so a transform never changes)."""
    return dict(self._args)

  # -- what subclasses implement ------------------------------------------
  def _selection(self, leaves, ctx: Context, selected) -> list[bool]:
    """The leaves this transform touches, given the incoming selection."""
    raise NotImplementedError

  def _apply(self, leaves, ctx: Context, selected, pack: bool) -> list:
    """Transforms a list of leaves; `selected` is None for the default rule."""
    raise NotImplementedError

  def _children(self) -> tuple["Transform", ...]:
    """The transforms this one is built from (for `chain` and `masked`)."""
    return ()

  def _identity(self):
    """What decides this transform's behaviour, hashable; None if only itself.

    Two transforms with the same identity trace to the same kernel, so they
    may share compiled kernels and compare equal (``jax.jit`` relies on the
    latter to reuse a trace). The default, the type and the canonical string,
    applies to classes that declare ``STRING_IS_STATE``.
    """
    if not (type(self).STRING_IS_STATE and self.representable()):
      return None
    return (type(self), str(self))

  # -- public behaviour ----------------------------------------------------
  def __call__(self, params):
    return self._run(params, pack=False)

  def pack(self, params):
    """Applies the transform and stores its leaves in low-bit or sparse form.

    Leaves that a `quantize` step wrote last (or a `prune` after it) come
    back as `PackedArray` (bit-packed integer codes plus scales or codebook,
    with a mask of the exact zeros when that is smaller or the grid has no
    zero level); other touched leaves with enough exact zeros (pruned) come
    back as `SparseArray` (mask plus non-zero values); every other leaf as
    the dense array ``self(params)`` holds. ``unpack(t.pack(p))`` is
    bit-identical to ``t(p)``. The layouts are chosen on concrete values:
    under an outer ``jax.jit`` no leaf becomes sparse, and masks keep a code
    for every entry.
    """
    return self._run(params, pack=True)

  def _mask_values(self, leaves, paths) -> tuple:
    """Evaluates each callable mask in this transform on the caller's leaves."""
    values = []
    stack = [self]
    while stack:
      t = stack.pop()
      if isinstance(t, _Masked) and not isinstance(
          t.mask, (str, _tree.PytreeMask)):
        values.append((id(t), tuple(
            _tree.resolve_mask(t.mask, leaves, paths, None))))
      stack.extend(t._children())  # pylint: disable=protected-access
    return tuple(values)

  def _kernel(self, key) -> Callable:
    identity = self._identity()
    if identity is None:
      fn = self._kernels.get(key)
      if fn is None:
        fn = self._kernels[key] = _build_kernel(self, key)
      return fn
    full_key = (identity, key)
    with _KERNELS_LOCK:  # eviction and reordering are not atomic
      fn = _KERNELS.get(full_key)
      if fn is None:
        fn = _KERNELS[full_key] = _build_kernel(self, key)
        if len(_KERNELS) > _MAX_KERNELS:
          _KERNELS.popitem(last=False)
      else:
        _KERNELS.move_to_end(full_key)
    return fn

  def _run(self, params, pack: bool):
    leaves, paths, treedef = _tree.flatten(params, is_leaf=_packing.is_packed)
    if any(_packing.is_packed(x) for x in leaves):
      raise ValueError("params: holds stored (PackedArray or SparseArray) "
                       "leaves; call lsh_gan.compress.unpack(params) first")
    is_array = [_tree.is_array(x) for x in leaves]
    arrays = [x for x, a in zip(leaves, is_array) if a]
    signatures = tuple((tuple(x.shape), np.dtype(x.dtype)) if a else None
                       for x, a in zip(leaves, is_array))
    with _tree.x64_scope(arrays):
      mask_values = self._mask_values(leaves, paths)
      ctx = Context(paths, treedef, dict(mask_values))
      concrete = not any(isinstance(x, jax.core.Tracer) for x in arrays)
      touched = []
      if concrete:
        touched = self._touched(
            [x if a else _tree.STATIC for x, a in zip(leaves, is_array)], ctx,
            None)
        self._check_finite(leaves, touched, ctx)
      fn = self._kernel((pack, treedef, paths, signatures, mask_values))
      new_arrays = iter(fn(arrays))
      out = [next(new_arrays) if a else x for x, a in zip(leaves, is_array)]
      if pack:  # layouts are chosen on concrete values only
        for i in touched:
          out[i] = _packing.smallest_layout(out[i])
    return jax.tree_util.tree_unflatten(treedef, out)

  def _touched(self, leaves, ctx: Context, selected) -> list[int]:
    """Indices of the leaves this transform changes: selected and not
    zero-size (such a leaf has nothing to compress, and no scale)."""
    return [i for i, s in enumerate(self._selection(leaves, ctx, selected))
            if s and leaves[i].size]

  def _check_finite(self, leaves, touched: list[int], ctx: Context) -> None:
    if not touched:
      return
    finite = _all_finite([leaves[i] for i in touched])
    bad = [ctx.paths[i] for i, ok in zip(touched, finite.tolist()) if not ok]
    if bad:
      raise ValueError(
          f"params: non-finite values (NaN or inf) in {len(bad)} leaf/leaves "
          f"to be compressed: {', '.join(repr(p) for p in bad[:10])}")

  # -- string form and identity ---------------------------------------------
  def __str__(self) -> str:
    inner = ",".join(f"{k}={v!r}" for k, v in self._args.items())
    return f"{self.name}({inner})"

  def __repr__(self) -> str:
    return f"<lsh_gan.compress transform {self}>"

  def representable(self) -> bool:
    """Whether `parse(str(self))` rebuilds this transform."""
    return True

  def __eq__(self, other) -> bool:
    if not isinstance(other, Transform):
      return NotImplemented
    mine = self._identity()
    return self is other if mine is None else mine == other._identity()  # pylint: disable=protected-access

  def __hash__(self) -> int:
    identity = self._identity()
    return id(self) if identity is None else hash(identity)


def python_number(value):
  """A numpy scalar as the Python number it holds; anything else unchanged.

  Factories store their arguments this way so that ``str(t)`` spells
  ``0.5``, not ``np.float32(0.5)``, and `parse` reads it back.
  """
  if isinstance(value, (bool, np.bool_)):
    return bool(value)
  if isinstance(value, numbers.Integral):
    return int(value)
  if isinstance(value, numbers.Real):
    return float(value)
  return value


def _canonical_args(factory: Callable, **given) -> dict[str, Any]:
  """Keeps the arguments that differ from the factory's defaults, in order."""
  params = inspect.signature(factory).parameters
  out = {}
  for name, value in given.items():
    default = params[name].default
    if default is inspect.Parameter.empty or value != default or (
        type(value) is not type(default)):
      out[name] = value
  return out


class LeafTransform(Transform):
  """A transform that maps each selected leaf on its own."""

  def _leaf(self, x, path: str):
    raise NotImplementedError

  def _leaf_pack(self, x, path: str):
    return self._leaf(x, path)

  def _selection(self, leaves, ctx, selected):
    if selected is None:
      return [_tree.default_selected(x) for x in leaves]
    return list(selected)

  def _apply(self, leaves, ctx, selected, pack):
    out = list(leaves)
    for i in self._touched(leaves, ctx, selected):
      x = _packing.dense(leaves[i])
      out[i] = (self._leaf_pack if pack else self._leaf)(x, ctx.paths[i])
    return out


class _Identity(Transform):
  name = "identity"
  STRING_IS_STATE = True

  def _selection(self, leaves, ctx, selected):
    return [False] * len(leaves)

  def _apply(self, leaves, ctx, selected, pack):
    return list(leaves)

  def __str__(self):
    return "identity"


def identity() -> Transform:
  """The transform that changes nothing (the uncompressed baseline).

  Examples:
    >>> str(identity())
    'identity'
  """
  return _Identity()


class _Chain(Transform):
  name = "chain"

  def __init__(self, transforms: Sequence[Transform]):
    super().__init__()
    self.transforms = tuple(transforms)

  def _selection(self, leaves, ctx, selected):
    touched = [False] * len(leaves)
    for t in self.transforms:
      touched = [a or b for a, b in zip(touched, t._selection(leaves, ctx, selected))]  # pylint: disable=protected-access
    return touched

  def _apply(self, leaves, ctx, selected, pack):
    for t in self.transforms:
      leaves = t._apply(leaves, ctx, selected, pack)  # pylint: disable=protected-access
    return leaves

  def __str__(self):
    return "+".join(str(t) for t in self.transforms)

  def representable(self):
    return all(t.representable() for t in self.transforms)

  def _children(self):
    return self.transforms

  def _identity(self):
    parts = tuple(t._identity() for t in self.transforms)  # pylint: disable=protected-access
    return None if None in parts else (_Chain, parts)


def chain(*transforms: Transform) -> Transform:
  """Applies transforms in order: ``chain(a, b)(p) == b(a(p))``.

  Its string is the parts joined by ``+``; nested chains are flattened and an
  empty chain is `identity`.

  Args:
    *transforms: transforms (or transform strings) to apply, first to last.

  Returns:
    The composed transform.

  Raises:
    ValueError: if an argument is not a transform.

  Examples:
    >>> from lsh_gan.compress import clip, quantize
    >>> t = chain(clip(percentile=99.9), quantize(4, axis=-1))
    >>> str(t)
    'clip(percentile=99.9)+quantize(bits=4,axis=-1)'
  """
  flat = []
  for t in transforms:
    if isinstance(t, str):
      t = parse(t)
    if not isinstance(t, Transform):
      raise ValueError(f"chain: expected transforms, got {type(t).__name__}")
    if isinstance(t, _Chain):
      flat.extend(t.transforms)
    elif not isinstance(t, _Identity):
      flat.append(t)
  if not flat:
    return identity()
  if len(flat) == 1:
    return flat[0]
  return _Chain(flat)


class _Masked(Transform):
  name = "masked"

  def __init__(self, inner: Transform, mask: _tree.Mask):
    super().__init__()
    self.inner = inner
    self.mask = mask

  def _children(self):
    return (self.inner,)

  def _identity(self):
    inner = self.inner._identity()  # pylint: disable=protected-access
    if inner is None or not isinstance(self.mask, str):
      return None
    return (_Masked, self.mask, inner)

  def _narrow(self, leaves, ctx, selected):
    if id(self) in ctx.masks:
      chosen = ctx.masks[id(self)]
    else:
      chosen = _tree.resolve_mask(self.mask, leaves, ctx.paths, ctx.treedef)
    if selected is None:
      selected = [True] * len(leaves)
    return [s and c and _tree.is_floating(x)
            for s, c, x in zip(selected, chosen, leaves)]

  def _selection(self, leaves, ctx, selected):
    return self.inner._selection(leaves, ctx, self._narrow(leaves, ctx, selected))  # pylint: disable=protected-access

  def _apply(self, leaves, ctx, selected, pack):
    return self.inner._apply(leaves, ctx, self._narrow(leaves, ctx, selected),  # pylint: disable=protected-access
                             pack)

  def representable(self):
    return isinstance(self.mask, str) and self.inner.representable()

  def __str__(self):
    if isinstance(self.mask, str):
      mask = repr(self.mask)
    elif isinstance(self.mask, _tree.PytreeMask):
      mask = "<pytree>"
    else:
      mask = f"<callable {getattr(self.mask, '__name__', '?')}>"
    return f"masked({self.inner},mask={mask})"


def masked(transform: Transform | str, mask: _tree.Mask) -> Transform:
  """Applies `transform` only to the leaves that `mask` selects.

  The selection replaces the factory default (floating leaves with
  ndim >= 2), so a mask can also pick biases; integer leaves are never
  touched. Nested masks intersect.

  Args:
    transform: the transform (or transform string) to narrow.
    mask: a regex fully matched against each '/'-joined leaf path (for an NNX
      ``State`` the trailing ``/value`` is dropped), a callable
      ``(path, leaf) -> bool``, or a pytree of Python bools with the structure
      of the parameters (or a prefix of it).

  Returns:
    The masked transform. Only regex masks have a string form that `parse`
    reads back.

  A callable mask is evaluated on the leaves of the tree passed in (arrays
  as given eagerly, tracers under an outer ``jax.jit``), before any step of
  the transform runs; a pytree mask is copied when the mask is built.

  Raises:
    ValueError: for an invalid regex, a callable that cannot take
      ``(path, leaf)``, a transform given as the mask, or any other value that
      is not a pytree of bools; when applied, for a regex that selects no
      floating-point leaf (the message lists the leaf paths).

  Examples:
    >>> from lsh_gan.compress import quantize
    >>> t = masked(quantize(8), r".*kernel")
    >>> str(t)
    "masked(quantize(bits=8),mask='.*kernel')"
  """
  if isinstance(transform, str):
    transform = parse(transform)
  if not isinstance(transform, Transform):
    raise ValueError(f"transform: expected a transform, got "
                     f"{type(transform).__name__}")
  if isinstance(mask, Transform):
    raise ValueError(f"mask={mask}: expected a regex, a callable "
                     "(path, leaf) -> bool or a pytree of bools, got a "
                     "transform (compose transforms with chain)")
  return _Masked(transform, _tree.validate_mask(mask))


# -- registry and string form --------------------------------------------------

_REGISTRY: dict[str, Callable[..., Transform]] = {}


def register(name: str, factory: Callable[..., Transform], *,
             replace: bool = False) -> None:
  """Adds a transform factory to the registry that `parse` reads.

  Args:
    name: the name `parse` reads (a Python identifier).
    factory: a callable returning a `Transform`.
    replace: allow replacing a factory already registered under `name`.

  Raises:
    ValueError: if `name` is taken and `replace` is False, `name` is not an
      identifier, or `factory` is not callable.

  Examples:
    >>> from lsh_gan.compress import quantize
    >>> register("quantize", quantize)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: name='quantize' is already registered...
  """
  if not isinstance(name, str) or not name.isidentifier():
    raise ValueError(f"name={name!r} must be a Python identifier")
  if not callable(factory):
    raise ValueError(f"factory={factory!r} must be callable")
  if name in _REGISTRY and not replace:
    raise ValueError(f"name={name!r} is already registered (to "
                     f"{getattr(_REGISTRY[name], '__qualname__', '?')}); pass "
                     "replace=True to replace it")
  _REGISTRY[name] = factory


def names() -> list[str]:
  """Names of the registered transform factories, sorted."""
  return sorted(_REGISTRY)


def get(name: str) -> Callable[..., Transform]:
  """The factory registered under `name`.

  Raises:
    ValueError: for an unknown name; the message lists the valid ones.
  """
  if name not in _REGISTRY:
    raise ValueError(f"unknown transform {name!r}; valid names: "
                     f"{', '.join(names())}")
  return _REGISTRY[name]


def _call_factory(name: str, args, kwargs, spec: str) -> Transform:
  """Calls a registered factory; a signature mismatch becomes a ValueError."""
  factory = get(name)
  signature = inspect.signature(factory)
  try:
    signature.bind(*args, **kwargs)
  except TypeError as e:
    valid = ", ".join(signature.parameters)
    given = set(list(signature.parameters)[:len(args)]) | set(kwargs)
    missing = [p.name for p in signature.parameters.values()
               if p.default is inspect.Parameter.empty and p.kind in (
                   p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               and p.name not in given]
    if missing and not set(kwargs) - set(signature.parameters):
      raise ValueError(
          f"{name}() in {spec!r} needs the argument(s) "
          f"{', '.join(missing)}, e.g. {name}({missing[0]}=...); valid "
          f"arguments: {valid}") from None
    raise ValueError(f"bad arguments for {name}() in {spec!r}: {e}; "
                     f"valid arguments: {valid}") from None
  return factory(*args, **kwargs)


# Arguments that `parse` reads as transforms rather than literals.
_TRANSFORM_ARGS = {"chain": None, "masked": ("transform", 0)}


def _parse_node(node: ast.AST, spec: str) -> Transform:
  if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
    return chain(_parse_node(node.left, spec), _parse_node(node.right, spec))
  if isinstance(node, ast.Name):
    return _call_factory(node.id, [], {}, spec)
  if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
    raise ValueError(
        f"cannot parse {ast.get_source_segment(spec, node)!r} in transform "
        f"string {spec!r}: expected name(arg=value, ...) joined by '+'")
  name = node.func.id

  def value(arg, position):
    if name in _TRANSFORM_ARGS and (_TRANSFORM_ARGS[name] is None or
                                    position in _TRANSFORM_ARGS[name]):
      if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return parse(arg.value)
      return _parse_node(arg, spec)
    try:
      literal = ast.literal_eval(arg)
    except ValueError:
      raise ValueError(
          f"argument {ast.get_source_segment(spec, arg)!r} of "
          f"{name}() in {spec!r} is not a literal value") from None
    if name == "masked" and position in (1, "mask") and not isinstance(
        literal, str):
      # Only a regex has a string form: a pytree mask would print as
      # <pytree>, so two different masks would share one name.
      raise ValueError(
          f"mask={ast.get_source_segment(spec, arg)} of masked() in {spec!r}: "
          "a transform string takes a regex mask (a quoted string); build "
          "pytree and callable masks with compress.masked in code")
    return literal

  args = [value(a, i) for i, a in enumerate(node.args)]
  kwargs = {k.arg: value(k.value, k.arg) for k in node.keywords}
  return _call_factory(name, args, kwargs, spec)


def parse(spec: str | Transform) -> Transform:
  """Builds a transform from its string form.

  The grammar is Python call syntax over the registry: ``name(arg=value)``
  parts joined by ``+`` (a chain); a bare name means no arguments; values
  are literals. ``parse(str(t))`` rebuilds ``t`` for every transform with a
  string form.

  Args:
    spec: e.g. ``"clip(percentile=99.9)+quantize(bits=4,axis=-1)"``. A
      transform is returned as it is.

  Returns:
    The transform.

  Raises:
    ValueError: for a malformed string, an unknown transform name or an
      unknown argument (listing the valid ones), a missing required argument
      (naming it, also for a bare name such as ``"quantize"``), or a bad
      argument value (a mask included: it is checked here, not when the
      transform is first applied).

  Examples:
    >>> str(parse("quantize(4) + prune(0.5)"))
    'quantize(bits=4)+prune(sparsity=0.5)'
  """
  if isinstance(spec, Transform):
    return spec
  if not isinstance(spec, str) or not spec.strip():
    raise ValueError(f"transform string must be a non-empty str, got {spec!r}")
  try:
    tree = ast.parse(spec.strip(), mode="eval")
  except SyntaxError as e:
    raise ValueError(f"cannot parse transform string {spec!r}: {e.msg}; "
                     "expected name(arg=value, ...) joined by '+'") from None
  return _parse_node(tree.body, spec.strip())


register("identity", identity)
register("chain", chain)
register("masked", masked)
