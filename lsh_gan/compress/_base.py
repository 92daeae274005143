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
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from lsh_gan.compress import _packing
from lsh_gan.compress import _tree

# What a transform sees besides the leaves: their paths and the tree structure
# (the latter for pytree masks).
Context = collections.namedtuple("Context", ["paths", "treedef"])


@jax.jit
def _all_finite(leaves):
  return jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])


class Transform:
  """A pure ``params -> params`` compression transform.

  Call it on a parameter tree (a Flax Linen ``params`` dict, a Flax NNX
  ``State``, or nested dicts/lists/tuples of arrays) to get the compressed
  tree; call `pack` to get the same values in real low-bit storage. ``str(t)``
  is the canonical string that `parse` reads back.

  Eager calls run a jitted kernel that is compiled once per tree structure and
  leaf shapes; ``jax.jit(t)`` works too. Eager calls also check that the
  leaves the transform touches are finite and raise ``ValueError`` otherwise;
  under an outer ``jax.jit`` that check cannot run.
  """

  name: str = "transform"

  def __init__(self, args: dict[str, Any] | None = None):
    self.args = dict(args or {})
    self._compiled: dict[Any, Callable] = {}

  # -- what subclasses implement ------------------------------------------
  def _selection(self, leaves, ctx: Context, selected) -> list[bool]:
    """The leaves this transform touches, given the incoming selection."""
    raise NotImplementedError

  def _apply(self, leaves, ctx: Context, selected, pack: bool) -> list:
    """Transforms a list of leaves; `selected` is None for the default rule."""
    raise NotImplementedError

  # -- public behaviour ----------------------------------------------------
  def __call__(self, params):
    return self._run(params, pack=False)

  def pack(self, params):
    """Applies the transform and stores quantized leaves in low-bit form.

    Leaves that a `quantize` step wrote last come back as `PackedArray`
    (bit-packed integer codes plus float32 scales); every other leaf comes
    back as the dense array ``self(params)`` holds. ``unpack(t.pack(p))`` is
    bit-identical to ``t(p)``.
    """
    return self._run(params, pack=True)

  def _run(self, params, pack: bool):
    leaves, paths, treedef = _tree.flatten(params, is_leaf=_packing.is_packed)
    if any(_packing.is_packed(x) for x in leaves):
      raise ValueError("params: holds PackedArray leaves; call "
                       "lsh_gan.compress.unpack(params) first")
    ctx = Context(paths, treedef)
    array_index = [i for i, x in enumerate(leaves) if hasattr(x, "dtype")]
    arrays = [leaves[i] for i in array_index]
    if not any(isinstance(x, jax.core.Tracer) for x in arrays):
      self._check_finite(leaves, ctx)
    key = (treedef, pack)
    fn = self._compiled.get(key)
    if fn is None:
      def apply_arrays(arrays):
        full = list(leaves)
        for i, x in zip(array_index, arrays):
          full[i] = x
        out = self._apply(full, ctx, None, pack)
        return [out[i] for i in array_index]
      fn = self._compiled[key] = jax.jit(apply_arrays)
    out = list(leaves)
    for i, x in zip(array_index, fn(arrays)):
      out[i] = x
    return jax.tree_util.tree_unflatten(treedef, out)

  def _check_finite(self, leaves, ctx: Context) -> None:
    touched = [i for i, s in enumerate(self._selection(leaves, ctx, None)) if s]
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
    inner = ",".join(f"{k}={v!r}" for k, v in self.args.items())
    return f"{self.name}({inner})"

  def __repr__(self) -> str:
    return f"<lsh_gan.compress transform {self}>"

  def representable(self) -> bool:
    """Whether `parse(str(self))` rebuilds this transform."""
    return True

  def __eq__(self, other) -> bool:
    if not isinstance(other, Transform):
      return NotImplemented
    if self.representable() and other.representable():
      return str(self) == str(other)
    return self is other

  def __hash__(self) -> int:
    return hash(str(self))


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
    for i, s in enumerate(self._selection(leaves, ctx, selected)):
      if s:
        x = leaves[i]
        if _packing.is_packed(x):
          x = x.unpack()
        out[i] = (self._leaf_pack if pack else self._leaf)(x, ctx.paths[i])
    return out


class _Identity(Transform):
  name = "identity"

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

  def _narrow(self, leaves, ctx, selected):
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
    elif callable(self.mask):
      mask = f"<callable {getattr(self.mask, '__name__', '?')}>"
    else:
      mask = "<pytree>"
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

  Raises:
    ValueError: for an invalid regex; when applied, for a regex that selects
      no floating-point leaf (the message lists the leaf paths).

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
  _tree.validate_mask(mask)
  return _Masked(transform, mask)


# -- registry and string form --------------------------------------------------

_REGISTRY: dict[str, Callable[..., Transform]] = {}


def register(name: str, factory: Callable[..., Transform]) -> None:
  """Adds a transform factory to the registry that `parse` reads."""
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


def _parse_node(node: ast.AST, spec: str) -> Transform:
  if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
    return chain(_parse_node(node.left, spec), _parse_node(node.right, spec))
  if isinstance(node, ast.Name):
    return get(node.id)()
  if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
    raise ValueError(
        f"cannot parse {ast.get_source_segment(spec, node)!r} in transform "
        f"string {spec!r}: expected name(arg=value, ...) joined by '+'")
  factory = get(node.func.id)

  def value(arg):
    if isinstance(arg, (ast.Call, ast.BinOp, ast.Name)) and node.func.id in (
        "masked", "chain"):
      return _parse_node(arg, spec)
    try:
      return ast.literal_eval(arg)
    except ValueError:
      raise ValueError(
          f"argument {ast.get_source_segment(spec, arg)!r} of "
          f"{node.func.id}() in {spec!r} is not a literal value") from None

  args = [value(a) for a in node.args]
  kwargs = {k.arg: value(k.value) for k in node.keywords}
  try:
    inspect.signature(factory).bind(*args, **kwargs)
  except TypeError as e:
    valid = ", ".join(inspect.signature(factory).parameters)
    raise ValueError(f"bad arguments for {node.func.id}() in {spec!r}: {e}; "
                     f"valid arguments: {valid}") from None
  return factory(*args, **kwargs)


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
      unknown argument (listing the valid ones), or a bad argument value.

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
