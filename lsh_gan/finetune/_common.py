"""What every fine-tuning method shares: argument checks, the run's folder
(its identity recorded, resumable, locked) and the optimiser."""

from __future__ import annotations

import contextlib
import numbers
import os
import shutil
import tempfile

import numpy as np
import optax

from lsh_gan import _files
from lsh_gan import _logging
from lsh_gan import pretrained


# Raised whenever a change makes the same settings train another generator
# (a workdir of an older version is then refused, not resumed).
VERSION = 1


def identity(method: str, name: str, uses_discriminator: bool,
             **settings) -> dict:
  """What a run's result depends on: the method, the code's VERSION, the
  generator's fingerprint (and its discriminator's, for a method trained
  against it) and the settings (numpy numbers as Python ones)."""
  out = {"method": method, "version": VERSION, "generator": name,
         "fingerprint": pretrained.fingerprint(name)}
  if uses_discriminator:
    out["discriminator"] = pretrained.fingerprint(name, "discriminator")
  for key, value in settings.items():
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
      value = int(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
      value = float(value)
    elif isinstance(value, (list, tuple)):
      value = [float(v) for v in value]
    out[key] = value
  return out


def check_generator(name, conditional: bool = False) -> None:
  """ValueError for a name that is not a committed generator (of latents,
  unless `conditional`: distillation and the width search also take
  conditional ones)."""
  if name not in pretrained.generators():
    raise ValueError(f"name={name!r} is not a pre-trained generator; valid "
                     f"names: {', '.join(pretrained.generators())}")
  if not conditional and pretrained.is_conditional(name):
    raise ValueError(f"name={name!r} is a conditional generator; "
                     "quantization_aware and discriminator_supervised take "
                     "generators of latents (distill and search take both)")


def check_run(name, steps, seed, batch_size, learning_rate,
              conditional: bool = False) -> None:
  """ValueError naming the argument for a generator that is not committed
  (`check_generator`), or bad steps / seed / batch_size / learning_rate."""
  check_generator(name, conditional)
  for arg, value, low in (("steps", steps, 0), ("batch_size", batch_size, 1)):
    check_int(arg, value, low)
  if isinstance(seed, bool) or not isinstance(seed, (int, numbers.Integral)):
    raise ValueError(f"seed={seed!r} must be an integer")
  if learning_rate is not None and (
      isinstance(learning_rate, bool) or
      not isinstance(learning_rate, numbers.Real) or
      not 0 < learning_rate < float("inf")):
    raise ValueError(f"learning_rate={learning_rate!r} must be > 0")


def check_int(arg: str, value, low: int) -> None:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
      value < low):
    raise ValueError(f"{arg}={value!r} must be an integer >= {low}")


def _folder(workdir, identity):
  """The run's folder, holding its identity (a folder of another run is
  refused, not resumed); a temporary one (removed after) when None."""
  if workdir is None:
    return tempfile.mkdtemp(prefix="lsh_gan-finetune-"), True
  workdir = os.path.abspath(os.fspath(workdir))
  os.makedirs(workdir, exist_ok=True)
  _files.claim(workdir, "finetune.json", identity, "fine-tuning run")
  return workdir, False


@contextlib.contextmanager
def run_folder(workdir, identity):
  """The run's folder (`workdir`, or a temporary one removed after), locked
  against a second run, with Orbax quiet."""
  folder, temporary = _folder(workdir, identity)
  try:
    with _files.locked(folder), _logging.quiet_orbax():
      yield folder
  finally:
    if temporary:
      shutil.rmtree(folder, ignore_errors=True)


def saved_once(path: str, what: str, compute):
  """The JSON result a run's stage left at `path`, or compute()'s, written
  there atomically (a rerun reads it back instead of computing again)."""
  if os.path.exists(path):
    return _files.read_json(path, what, "remove it to compute it again")
  result = compute()
  _files.write_json(path, result)
  return result


def run_stage(folder, steps, state, step_fn, batch, log_line, stop_after):
  """A training stage in `folder` (Orbax checkpoints): resumed from its
  last checkpoint, stepped to `steps` (`lsh_gan.train`'s loop: `batch(step)`
  gives step_fn's arguments after the state). Returns (state, seconds
  summed over every call, steps taken by this call)."""
  from lsh_gan import train  # pylint: disable=g-import-not-at-top
  manager = train._checkpoint_manager(folder)  # pylint: disable=protected-access
  state = train._restore(manager, state)  # pylint: disable=protected-access
  begin = int(state["step"])
  state, seconds = train._run(  # pylint: disable=protected-access
      run_config(steps), manager, state, step_fn, batch, log_line,
      stop_after)
  return state, seconds, int(state["step"]) - begin


def adam(config, rate: float):
  """Adam at `rate` with the GAN's own betas."""
  return optax.adam(rate, b1=config.get("b1", 0.5), b2=config.get("b2", 0.999))


def run_config(steps: int):
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict(dict(
      steps=steps, log_every=max(1, min(100, steps)),
      checkpoint_every=max(1, min(500, steps))))


def quadratic_costs(cost, full) -> tuple[float, np.ndarray, np.ndarray]:
  """(c, a, Q) with cost(k) = c + a.k + k.Q.k for channel counts k, fitted
  exactly from cost's values at all-ones, each count raised by 1 and 2, and
  each pair raised by 1: a convolutional network's MACs are bilinear in
  adjacent layers' channels. Checked at `full` and at a point between, to
  the unit once rounded (RuntimeError if cost is not such a quadratic)."""
  n = len(full)
  base = np.ones(n, np.int64)
  points = [base]
  for i in range(n):
    for s in (1, 2):
      points.append(base + s * np.eye(n, dtype=np.int64)[i])
  for i in range(n):
    for j in range(i + 1, n):
      points.append(base + np.eye(n, dtype=np.int64)[i] +
                    np.eye(n, dtype=np.int64)[j])
  pairs = [(i, j) for i in range(n) for j in range(i, n)]

  def features(k):
    k = np.asarray(k, np.float64)
    return np.concatenate([[1.0], k, [k[i] * k[j] for i, j in pairs]])
  coef = np.linalg.solve(np.stack([features(k) for k in points]),
                         np.asarray([cost(tuple(k)) for k in points],
                                    np.float64))
  quad = np.zeros((n, n))
  for (i, j), q in zip(pairs, coef[1 + n:]):
    quad[i, j] = q
  out = (float(coef[0]), coef[1:1 + n], quad)
  for k in (tuple(full), tuple(max(1, (f + 1) // 2) for f in full)):
    got = evaluate(out, np.asarray(k, np.float64))
    if round(got) != cost(k):  # exact to the unit: budgets compare integers
      raise RuntimeError(f"costs are not quadratic in channels: {got} "
                         f"fitted at {k}, {cost(k)} counted")
  return out


def evaluate(costs, counts):
  """A `quadratic_costs` polynomial at (possibly traced) counts."""
  c, a, quad = costs
  return c + counts @ a + counts @ quad @ counts
