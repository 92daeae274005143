"""The measured sweep behind the LSH metrics' defaults.

Run from the repository root (resumable: finished cells are kept in the JSON
file, written atomically, and skipped on the next run):

  python benchmarks/lsh_sweep.py              # both sweeps, about 10 min here
  python benchmarks/lsh_sweep.py --only=lsh   # LSH-only
  python benchmarks/lsh_sweep.py --only=lsh_knn

LSH-only is scored against known answers: Gaussian modes (`mixtures.Modes`,
2,000 points a set, d = 2, 64, 512), where the fake set drops 4 of 10 modes
(precision 1, recall 0.6) or puts 30% of its mass on 3 invented modes, far
from the real ones (precision 0.7, recall 1), with the outlier moves (5% far
outliers added to the real set, 1% to the fake set); and the known-truth
cases of real digit embeddings (`known_truth.py`: held-out digits, half the
classes, 20% noise images, noise only; mnist5k and digits). A cell's error
is the worst over all cases; each configuration is scored with three
coverage rules, and the calibrated one at two quantiles.
LSH + KNN is scored against exact KNN (k = 3) on the benchmark data
(`mixtures.latent_pair`, 5,000 points a set at d = 64 and 512, 50,000 at
d = 64) and on dropped modes (3,000 points, d = 2, 64), with K capped at d
as the default is; each cell is the worse of two hash seeds.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import known_truth  # pylint: disable=g-import-not-at-top,wrong-import-position
import mixtures  # pylint: disable=g-import-not-at-top,wrong-import-position

import _cells  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import _files  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import metrics  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan.metrics import _lsh  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan.metrics import _lsh_knn  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan.metrics import lsh  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan.metrics import lsh_knn  # pylint: disable=g-import-not-at-top,wrong-import-position

_OUT = flags.DEFINE_string(
    "out", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                        "lsh_sweep.json"), "results file (resumed)")
_ONLY = flags.DEFINE_enum("only", None, ["lsh", "lsh_knn"], "run one sweep")
_TABLES = flags.DEFINE_boolean("tables_only", False,
                               "print the tables of the results file, run "
                               "nothing")
_ROWS = flags.DEFINE_integer("rows", 12, "best configurations shown per table")

LSH_GRID = dict(num_hashes=(4, 8, 12, 16), num_tables=(16, 32),
                mates=(1, 2, 4, 8))
# (coverage rule, calibration quantile) scored in every LSH-only cell.
LSH_RULES = (("calibrated", 0.1), ("calibrated", 0.2), ("any", None),
             ("majority", None))
LSH_KNN_GRID = dict(num_hashes=(8,), num_tables=(4, 8),
                    max_candidates=(32, 64, 128), mates=(4, 8, 16))
LSH_KNN_SEEDS = (0, 1)  # hash seeds; a cell reports the worse of the two


def _load(path):
  return _cells.load(path)


def _save(path, results):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  _files.write_json(path, results, sort_keys=True)


def _grid(grid):
  names = list(grid)
  for values in itertools.product(*grid.values()):
    yield dict(zip(names, values))


def _with(module, name, value, fn, *args, **kwargs):
  """fn(*args, **kwargs) with the module constant `name` set to `value`."""
  saved = getattr(module, name)
  setattr(module, name, value)
  try:
    return fn(*args, **kwargs)
  finally:
    setattr(module, name, saved)


def lsh_cases(data_dir):
  """name -> (real, fake, truth precision, truth recall), and the known-truth
  embeddings {dataset: (real, {case: fake})}."""
  cases = {}
  for dim in (2, 64, 512):
    mix = mixtures.Modes(dim, 10, seed=dim)
    real = mix.sample(2000, range(10))
    dropped = mix.sample(2000, range(6))
    # The invented modes lie 60 away from the real ones in every coordinate
    # (at d = 2 one would otherwise land 1.3 from a real mode).
    invented = np.concatenate([mix.sample(1400, range(10)), mixtures.Modes(
        dim, 3, seed=dim + 1).sample(600, range(3)) + 60.0])
    cases[f"dropped d={dim}"] = (real, dropped, 1.0, 0.6)
    cases[f"invented d={dim}"] = (real, invented, 0.7, 1.0)
    cases[f"+1% fake outliers d={dim}"] = (
        real, np.concatenate([dropped, mix.far(20)]), None, 0.6)
    cases[f"+5% real outliers d={dim}"] = (
        np.concatenate([real, mix.far(100)]), invented, 0.7, None)
  embedded = {name: known_truth.embedded_cases(name, data_dir)
              for name in ("mnist5k", "digits")}
  return cases, embedded


def lsh_knn_cases():
  cases = {}
  for dim in (64, 512):
    cases[f"latent d={dim}"] = mixtures.latent_pair(5000, dim, seed=dim)
  cases["latent n=50k d=64"] = mixtures.latent_pair(50000, 64, seed=0)
  for dim in (2, 64):
    mix = mixtures.Modes(dim, 10, seed=dim)
    cases[f"dropped d={dim}"] = (mix.sample(3000, range(10)),
                                 mix.sample(3000, range(6)))
  return cases


def _embedders() -> dict:
  """The fingerprints of the embedders the LSH-only cells' digit cases are
  embedded in: cells from other embedders are other numbers."""
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  return {d: pretrained.fingerprint(f"embedder_{d}")
          for d in ("mnist5k", "digits")}


def sweep_lsh(results):
  import tempfile  # pylint: disable=g-import-not-at-top
  embedders = _embedders()
  has_cells = any(k.startswith("lsh {") for k in results)
  if has_cells and results.get("_embedders") != embedders:
    raise app.UsageError(
        f"--out={_OUT.value} holds LSH-only cells scored in other embedders "
        "(the committed ones were retrained since); move it away to compute "
        "them again, or pass another --out")
  results["_embedders"] = embedders
  with tempfile.TemporaryDirectory() as data_dir:
    cases, embedded = lsh_cases(data_dir)
  for config in _grid(LSH_GRID):
    key = "lsh " + json.dumps(config, sort_keys=True)
    if key in results:
      continue
    kwargs = dict(num_tables=config["num_tables"],
                  num_hashes=config["num_hashes"])
    cell = {}
    for coverage, quantile in LSH_RULES:
      def score(real, fake, coverage=coverage, quantile=quantile):
        if quantile is not None:
          return _with(_lsh, "CALIBRATION_QUANTILE", quantile, score, real,
                       fake, coverage, None)
        return _with(_lsh, "BUCKET_MATES", config["mates"],
                     metrics.lsh_precision_recall, real, fake,
                     coverage=coverage, **kwargs)
      rule = coverage if quantile is None else f"{coverage} q={quantile:g}"
      out = {}
      for name, (real, fake, p_true, r_true) in cases.items():
        got = score(real, fake)
        out[name] = {"precision": got["precision"], "recall": got["recall"],
                     "p_true": p_true, "r_true": r_true}
      for dataset, (real, fakes) in embedded.items():
        ref_scores = {c: score(real, fake) for c, fake in fakes.items()}
        for (case, side), (reading, kind, target) in known_truth.truths(
            ref_scores).items():
          out[f"{dataset} {case} {side}"] = {
              "error": known_truth.error(reading, kind, target),
              "reading": reading}
      cell[rule] = out
    results[key] = cell
    print(key, {rule: _lsh_summary(out) for rule, out in cell.items()},
          flush=True)
    _save(_OUT.value, results)


def _lsh_summary(cell, where=lambda name: True):
  """Worst |error| against the truth over a cell's cases."""
  errors = []
  for name, v in cell.items():
    if not where(name):
      continue
    if "error" in v:
      errors.append(v["error"])
      continue
    for value, truth in ((v["precision"], v["p_true"]),
                         (v["recall"], v["r_true"])):
      if truth is not None:
        errors.append(abs(value - truth))
  return round(max(errors), 3)


def sweep_lsh_knn(results):
  cases = lsh_knn_cases()
  exact = {}
  for name, (real, fake) in cases.items():
    key = "exact " + name
    if key not in results:
      results[key] = metrics.knn_precision_recall(real, fake)
      _save(_OUT.value, results)
    exact[name] = results[key]
  for config in _grid(LSH_KNN_GRID):
    key = "lsh_knn " + json.dumps(config, sort_keys=True)
    if key in results:
      continue
    cell = {}
    for name, (real, fake) in cases.items():
      kwargs = {k: v for k, v in config.items() if k != "mates"}
      # K is capped at d, as the default is.
      kwargs["num_hashes"] = min(kwargs["num_hashes"], real.shape[1])
      worst = None
      for seed in LSH_KNN_SEEDS:
        start = time.perf_counter()
        got = _with(lsh_knn, "BUCKET_MATES", config["mates"],
                    metrics.lsh_knn_precision_recall, real, fake, seed=seed,
                    **kwargs)
        one = {"dp": got["precision"] - exact[name]["precision"],
               "dr": got["recall"] - exact[name]["recall"],
               "seconds": time.perf_counter() - start}
        if worst is None or max(abs(one["dp"]), abs(one["dr"])) > max(
            abs(worst["dp"]), abs(worst["dr"])):
          worst = one
      cell[name] = worst
    results[key] = cell
    print(key, max(max(abs(v["dp"]), abs(v["dr"])) for v in cell.values()),
          flush=True)
    _save(_OUT.value, results)


def _label(config):
  return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in sorted(config.items()))


def lsh_table(results, default) -> str:
  """Best LSH-only configurations and rules by worst |error| against the
  truth (all cases; the real embeddings; the Gaussian modes)."""
  rows = []
  for key, cell in results.items():
    if not key.startswith("lsh {"):
      continue
    config = json.loads(key[4:])
    for rule, out in cell.items():
      moves = []
      for dim in (2, 64, 512):
        moves.append(out[f"+5% real outliers d={dim}"]["precision"] -
                     out[f"invented d={dim}"]["precision"])
        moves.append(out[f"+1% fake outliers d={dim}"]["recall"] -
                     out[f"dropped d={dim}"]["recall"])
      embedded = lambda name: "error" in out[name]
      # A case's name is "dataset case side" (its kind: KINDS[case, side]).
      wrong = sum(
          not known_truth.within(
              v["error"], known_truth.KINDS[tuple(name.split(" ")[1:])])
          for name, v in out.items() if "error" in v)
      rows.append((_lsh_summary(out), _lsh_summary(out, embedded),
                   _lsh_summary(out, lambda n: not embedded(n)), wrong,
                   max(moves, key=abs), config, rule))
  rows.sort(key=lambda r: (r[0], r[1]))
  is_default = lambda r: r[5] == default["config"] and r[6] == default["rule"]
  shown = rows[:_ROWS.value] + [r for r in rows[_ROWS.value:]
                                if is_default(r)]
  lines = ["| K, L, bucket-mates, coverage | worst \\|error\\| | on digit "
           "embeddings | on Gaussian modes | digit cases wrong (of 16) | "
           "largest outlier move |", "| --- | --- | --- | --- | --- | --- |"]
  for worst, real, modes, wrong, move, c, rule in shown:
    mark = " **(default)**" if is_default((0, 0, 0, 0, 0, c, rule)) else ""
    lines.append(f"| {c['num_hashes']}, {c['num_tables']}, {c['mates']}, "
                 f"{rule}{mark} | {worst:.3f} | {real:.3f} | {modes:.3f} | "
                 f"{wrong} | {move:+.3f} |")
  return "\n".join(lines)


def lsh_knn_table(results, defaults) -> str:
  """Best LSH + KNN configurations by worst |difference| from exact KNN."""
  rows = []
  for key, cell in results.items():
    if not key.startswith("lsh_knn {"):
      continue
    config = json.loads(key[8:])
    worst = max(max(abs(v["dp"]), abs(v["dr"])) for v in cell.values())
    halo = -(-config["max_candidates"] // 2)
    cost = config["num_tables"] * (max(128, halo) + 2 * halo)
    rows.append((worst, cost, config, cell))
  rows.sort(key=lambda r: r[0])
  names = sorted(rows[0][3]) if rows else []
  shown = rows[:_ROWS.value] + [r for r in rows[_ROWS.value:]
                                if r[2] in defaults]
  lines = ["| K, L, M, median bucket-mates | " + " | ".join(names) +
           " | worst | cost (L·columns) |",
           "| --- | " + " | ".join("---" for _ in names) + " | --- | --- |"]
  for worst, cost, c, cell in shown:
    mark = " **(default)**" if c in defaults else ""
    lines.append(
        f"| {c['num_hashes']}, {c['num_tables']}, {c['max_candidates']}, "
        f"{c['mates']}{mark} | " + " | ".join(
            f"{cell[n]['dp']:+.3f}, {cell[n]['dr']:+.3f}" for n in names) +
        f" | {worst:.3f} | {cost} |")
  return "\n".join(lines)


def main(argv):
  del argv
  results = _load(_OUT.value)
  if not _TABLES.value:
    if _ONLY.value in (None, "lsh"):
      sweep_lsh(results)
    if _ONLY.value in (None, "lsh_knn"):
      sweep_lsh_knn(results)
  print(lsh_table(results, dict(
      config=dict(mates=_lsh.BUCKET_MATES, num_hashes=lsh.NUM_HASHES,
                  num_tables=lsh.NUM_TABLES),
      rule=f"calibrated q={_lsh.CALIBRATION_QUANTILE:g}")))
  print()
  print(lsh_knn_table(results, [
      dict(mates=_lsh_knn.BUCKET_MATES, max_candidates=lsh_knn.MAX_CANDIDATES,
           num_hashes=_lsh_knn.NUM_HASHES, num_tables=lsh_knn.NUM_TABLES)]))


if __name__ == "__main__":
  app.run(main)
