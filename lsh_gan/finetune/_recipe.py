"""Fine-tuned sweep points written as one string each.

  prune(sparsity=0.8) >> discriminator_supervised(steps=2000)
  quantize(bits=2) >> quantization_aware(steps=1000, seed=1)
  distill(width=16, steps=3000)
  search(budget_macs=2000000, supernet_steps=3000, steps=1000)
  collaborative_prune(macs_ratio=0.125, search_steps=500, steps=3000)

A transform string (`lsh_gan.compress.parse`), `>>`, then a method that
fine-tunes under it; or a method that trains a slimmer generator on its
own. Arguments are keywords with literal values: the method's own, but not
its workdir, data_dir or stop_after, which the launcher gives.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from typing import Any

from lsh_gan import compress
from lsh_gan import pretrained
from lsh_gan.finetune import _collaborative
from lsh_gan.finetune import _compressed
from lsh_gan.finetune import _distill

UNDER_TRANSFORM = {"quantization_aware": _compressed.quantization_aware,
                   "discriminator_supervised":
                   _compressed.discriminator_supervised}
ON_THEIR_OWN = {"distill": _distill.distill, "search": _distill.search,
                "collaborative_prune": _collaborative.collaborative_prune}
_GIVEN = ("name", "transform", "workdir", "data_dir", "stop_after")


@dataclasses.dataclass(frozen=True)
class Recipe:
  """One fine-tuned sweep point: a method, its arguments (in the method's
  order) and, for a method under a transform, the transform. ``str(recipe)`` is
  its canonical string, which `parse_recipe` reads back."""
  method: str
  kwargs: tuple[tuple[str, Any], ...]
  transform: compress.Transform | None = None

  def __str__(self) -> str:
    call = f"{self.method}({','.join(f'{k}={v!r}' for k, v in self.kwargs)})"
    return call if self.transform is None else f"{self.transform} >> {call}"

  def check(self, name: str) -> None:
    """Checks every argument against the generator `name` without
    training (ValueError naming the argument; CheckpointError when the
    method needs a discriminator the generator was committed without)."""
    kwargs = dict(self.kwargs)
    if self.method != "quantization_aware":
      pretrained.discriminator(name)  # CheckpointError if none is committed
    defaults = {k: p.default for k, p in inspect.signature(
        self._fn()).parameters.items() if p.default is not p.empty}
    full = {**defaults, **kwargs}
    if self.transform is not None:
      _compressed._plan(name, self.transform, full["steps"], full["seed"],  # pylint: disable=protected-access
                        full["batch_size"], full["learning_rate"])
    elif self.method == "distill":
      _distill._distill_plan(name, full["width"], full["steps"], full["seed"],  # pylint: disable=protected-access
                             full["batch_size"], full["learning_rate"])
    elif self.method == "collaborative_prune":
      _collaborative._plan(  # pylint: disable=protected-access
          name, full["macs_ratio"], full["search_steps"], full["steps"],
          full["seed"], full["neighbours"], full["noise"],
          full["density_weight"], full["batch_size"], full["learning_rate"])
    else:
      _distill._search_plan(  # pylint: disable=protected-access
          name, full["budget_macs"], full["supernet_steps"], full["steps"],
          full["seed"], full["choices"], full["search_samples"],
          full["batch_size"], full["learning_rate"])

  def depends_on(self, name: str) -> dict:
    """What else than the generator the result depends on, for a sweep to
    tell a saved row from a stale one: the discriminator's fingerprint for
    a method trained against it ({} otherwise)."""
    if self.method == "quantization_aware":
      return {}
    return {"discriminator_fingerprint": pretrained.fingerprint(
        name, "discriminator")}

  def run(self, name: str, workdir: str, data_dir: str | None = None):
    """Runs (or resumes; at once when done) the method on `name` in
    `workdir`: a `FineTuned` under a transform, else a `Distilled`."""
    kwargs = dict(self.kwargs, workdir=workdir, data_dir=data_dir)
    if self.transform is not None:
      return self._fn()(name, self.transform, **kwargs)
    return self._fn()(name, **kwargs)

  def _fn(self):
    return {**UNDER_TRANSFORM, **ON_THEIR_OWN}[self.method]


def _call(node, spec: str, allowed: dict) -> tuple[str, tuple]:
  if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and
          node.func.id in allowed):
    raise ValueError(
        f"cannot read {ast.get_source_segment(spec, node)!r} in {spec!r}: "
        f"expected one of {', '.join(f'{m}(...)' for m in allowed)}")
  method = node.func.id
  if node.args:
    raise ValueError(f"{method}() in {spec!r} takes keyword arguments only")
  params = {k: p for k, p in inspect.signature(allowed[method]).parameters
            .items() if k not in _GIVEN}
  kwargs = {}
  for keyword in node.keywords:
    if keyword.arg not in params:
      raise ValueError(f"{method}() in {spec!r} has no argument "
                       f"{keyword.arg!r}; valid: {', '.join(params)}")
    try:
      value = ast.literal_eval(keyword.value)
    except ValueError:
      raise ValueError(
          f"argument {keyword.arg}="
          f"{ast.get_source_segment(spec, keyword.value)} of {method}() in "
          f"{spec!r} is not a literal value") from None
    kwargs[keyword.arg] = (tuple(value) if isinstance(value, list)
                           else value)
  missing = [k for k, p in params.items()
             if p.default is p.empty and k not in kwargs]
  if missing:
    raise ValueError(f"{method}() in {spec!r} needs {', '.join(missing)}, "
                     f"e.g. {method}({missing[0]}=...)")
  order = list(params)  # the method's own order: required ones first
  return method, tuple(sorted(kwargs.items(), key=lambda kv: order.index(
      kv[0])))


def parse_recipe(spec: str) -> Recipe | None:
  """The fine-tuned point a sweep string writes, or None when it is a plain
  transform string (`lsh_gan.compress.parse` reads those).

  Raises:
    ValueError: a malformed recipe, an unknown method or argument, a missing
      one, or a bad transform before `>>` (arguments' values are checked
      by `Recipe.check`).
  """
  if not isinstance(spec, str):
    return None
  try:
    node = ast.parse(spec.strip(), mode="eval").body
  except SyntaxError:
    return None  # compress.parse says what is wrong
  spec = spec.strip()
  if isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift):
    transform = compress.parse(ast.get_source_segment(spec, node.left))
    if not transform.representable():
      raise ValueError(f"{spec!r}: the transform before '>>' needs a string "
                       "form")
    method, kwargs = _call(node.right, spec, UNDER_TRANSFORM)
    return Recipe(method, kwargs, transform)
  if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and
      node.func.id in ON_THEIR_OWN):
    method, kwargs = _call(node, spec, ON_THEIR_OWN)
    return Recipe(method, kwargs)
  return None
