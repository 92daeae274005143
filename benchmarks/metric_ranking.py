"""Which precision/recall metric reads known truths right? Every family on
the same cases of real embeddings, at 3 seeds.

Run from the repository root (about 15 minutes on 2 cores; resumable):

  python benchmarks/metric_ranking.py
  python benchmarks/metric_ranking.py --datasets=digits --seeds=0 \
      --out=/tmp/ranking.json                       # a quick look

The reference is the train split of a dataset in its committed embedding
(mnist5k: 4,000 digits; digits: 1,438; shapes: 10,000 images of 96 known
modes), the fake sets come from the held-out split, so each answer is known
by construction, relative to the metric's own reading of a clean case (a
fresh sample of the real distribution reads what that metric reads for
"as good as real"). The cases of `known_truth.py`, and four more:

  heldout         the test split                     P, R >= 0.6
  half            its images of half the classes     P as heldout, R half
                  (shapes: 48 of its 96 modes)       of heldout's
  noise20         20% of it replaced by noise        P 0.8 x rest80's,
                  images                             R as rest80's
  noise           noise images only                  P, R <= 0.1
  real_noise20    heldout, against a reference with  P as heldout,
                  20% of it replaced by noise        R 0.8 x heldout's
  half_outliers   half, 2% of it replaced by far     P 0.98 x half's,
                  outliers                           R as half's
  real_outliers   noise images, against a reference  P, R <= 0.1
                  with 2% far outliers
  real_outliers_  heldout, against that reference    P as heldout,
  heldout                                            R 0.98 x heldout's

A far outlier is a point x of the set moved to m + 10 (x - m), m the set's
mean: isolated (its distance to any other point is 10 times theirs), as a
broken sample or a mislabelled reference image sits. A seed draws the noise
images, the replaced rows and the metrics' own randomness (LSH hashes,
TopP&R's projection and resamples). A reading is right when at every seed
it holds its bound, or lies within 0.1 of its value; cells show mean ± std
over the seeds.

The realism score is read as a ranking: the AUC with which it ranks the
noise images of noise20 (and the far outliers of half_outliers) below the
real images among them.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile

from absl import app
from absl import flags
import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_HERE))
sys.path.insert(0, _HERE)
import known_truth  # pylint: disable=g-import-not-at-top,wrong-import-position

_DATASETS = flags.DEFINE_list("datasets", ["mnist5k", "digits", "shapes"],
                              "datasets")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "seeds")
_OUT = flags.DEFINE_string("out", os.path.join(_HERE, "results",
                                               "metric_ranking.json"),
                           "results file (resumed per dataset and seed)")
_DATA_DIR = flags.DEFINE_string("data_dir", None,
                                "TFDS folder (default: a temporary one)")

METRICS = known_truth.METRICS
NAMES = known_truth.NAMES
TOLERANCE = known_truth.TOLERANCE
OUTLIER_FRACTION = 0.02
OUTLIER_FACTOR = 10.0
# (case, reference): the fake set of a case, scored against a reference.
CASES = {"heldout": "train", "half": "train", "noise20": "train",
         "rest80": "train", "noise": "train", "half_outliers": "train",
         "real_noise20": "train_noise20", "real_outliers": "train_outliers",
         "real_outliers_heldout": "train_outliers"}


@functools.lru_cache(maxsize=None)
def _embedded(dataset: str, data_dir: str):
  """(embed function, train embeddings, test embeddings, test labels, number
  of classes, test images' shape)."""
  from lsh_gan import data  # pylint: disable=g-import-not-at-top
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  embed_fn, params = pretrained.embedder(dataset)
  embed = lambda images: pretrained.embed_all(embed_fn, params, images)
  train = data.load(dataset, "train", data_dir=data_dir)
  test = data.load(dataset, "test", data_dir=data_dir)
  classes = int(test["label"].max()) + 1
  return (embed, embed(train["image"]), embed(test["image"]), test["label"],
          classes, test["image"].shape)


def far_outliers(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
  """x with x[rows] moved to m + OUTLIER_FACTOR (x[rows] - m)."""
  centre = x.mean(axis=0)
  out = x.copy()
  out[rows] = centre + OUTLIER_FACTOR * (x[rows] - centre)
  return out


def sets(dataset: str, data_dir: str, seed: int):
  """({reference name: real}, {case: fake}, {case: bool mask of the
  injected rows}) for one seed (see the module doc)."""
  embed, train, held, labels, classes, shape = _embedded(dataset, data_dir)
  rng = np.random.default_rng(seed)
  noise = embed(rng.uniform(-1, 1, shape).astype(np.float32))

  def some(n, fraction):
    mask = np.zeros(n, bool)
    mask[rng.choice(n, int(round(n * fraction)), replace=False)] = True
    return mask

  replaced = some(len(held), 0.2)
  half = held[labels < classes // 2]
  half_out = some(len(half), OUTLIER_FRACTION)
  real_noise = some(len(train), 0.2)
  real_out = some(len(train), OUTLIER_FRACTION)
  noise_rows = embed(rng.uniform(-1, 1, (int(real_noise.sum()), *shape[1:]))
                     .astype(np.float32))
  train_noise = train.copy()
  train_noise[real_noise] = noise_rows
  references = {"train": train, "train_noise20": train_noise,
                "train_outliers": far_outliers(train, np.flatnonzero(real_out))}
  fakes = {"heldout": held, "half": half,
           "noise20": np.where(replaced[:, None], noise, held),
           "rest80": held[~replaced], "noise": noise,
           "half_outliers": far_outliers(half, np.flatnonzero(half_out)),
           "real_noise20": held, "real_outliers": noise,
           "real_outliers_heldout": held}
  injected = {"noise20": replaced, "half_outliers": half_out}
  return references, fakes, injected


def truths(scores: dict) -> dict:
  """{(case, side): (reading, kind, target)} (kind as `known_truth`)."""
  out = known_truth.truths(scores)
  held, half = scores["heldout"], scores["half"]
  keep = 1.0 - OUTLIER_FRACTION
  out.update({
      ("real_noise20", "precision"): (scores["real_noise20"]["precision"],
                                      "==", held["precision"]),
      ("real_noise20", "recall"): (scores["real_noise20"]["recall"], "==",
                                   0.8 * held["recall"]),
      ("half_outliers", "precision"): (scores["half_outliers"]["precision"],
                                       "==", keep * half["precision"]),
      ("half_outliers", "recall"): (scores["half_outliers"]["recall"], "==",
                                    half["recall"]),
      ("real_outliers", "precision"): (scores["real_outliers"]["precision"],
                                       "<=", TOLERANCE),
      ("real_outliers", "recall"): (scores["real_outliers"]["recall"], "<=",
                                    TOLERANCE),
      ("real_outliers_heldout", "precision"): (
          scores["real_outliers_heldout"]["precision"], "==",
          held["precision"]),
      ("real_outliers_heldout", "recall"): (
          scores["real_outliers_heldout"]["recall"], "==",
          keep * held["recall"]),
  })
  return out


def _auc(low: np.ndarray, high: np.ndarray) -> float:
  """P(a score of `high` > one of `low`), ties counted half."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  u = stats.mannwhitneyu(high, low, alternative="greater").statistic
  return float(u / (len(low) * len(high)))


def run_seed(dataset: str, data_dir: str, seed: int) -> dict:
  """{metric: {case: {precision, recall}}, "realism": {case: AUC}}."""
  import warnings  # pylint: disable=g-import-not-at-top
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  references, fakes, injected = sets(dataset, data_dir, seed)
  refs = {name: metrics.Reference(real) for name, real in references.items()}
  out = {m: {} for m in METRICS}
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", metrics.AccuracyWarning)
    for case, ref_name in CASES.items():
      for m in METRICS:
        try:
          out[m][case] = known_truth.score(m, refs[ref_name], fakes[case],
                                           seed=seed)
        except ValueError as err:  # a degenerate case: NaN reads as wrong
          print(f"{dataset} {seed} {m} {case}: {err}", flush=True)
          out[m][case] = {"precision": float("nan"),
                          "recall": float("nan")}
  out["realism"] = {}
  for case, mask in injected.items():
    scores = refs["train"].realism_scores(fakes[case])
    out["realism"][case] = _auc(scores[mask], scores[~mask])
  return out


def summary(results: dict, dataset: str):
  """{metric: {(case, side): (mean, std, target mean, kind, right)}}."""
  seeds = [s for s in results.get(dataset, {})]
  out = {}
  for m in METRICS:
    per_seed = [truths(results[dataset][s][m]) for s in seeds]
    out[m] = {}
    for key in per_seed[0]:
      readings = np.array([p[key][0] for p in per_seed])
      targets = np.array([p[key][2] for p in per_seed])
      kind = per_seed[0][key][1]
      right = all(known_truth.is_right(*p[key]) for p in per_seed)
      out[m][key] = (readings.mean(), readings.std(ddof=1) if len(seeds) > 1
                     else 0.0, targets.mean(), kind, right)
  return out


def table(results: dict) -> str:
  """Markdown: a row per (dataset, case, side), a column per metric, and
  each metric's count of right readings."""
  head = ["dataset", "case", "", "truth"] + [NAMES[m] for m in METRICS]
  lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
  totals = {m: [0, 0] for m in METRICS}
  for dataset in results:
    stats = summary(results, dataset)
    right = {m: 0 for m in METRICS}
    keys = list(stats[METRICS[0]])
    for case, side in keys:
      kind = stats[METRICS[0]][case, side][3]
      cells = []
      for m in METRICS:
        mean, std, target, _, ok = stats[m][case, side]
        right[m] += ok
        want = f"{target:.2f}" if kind == "==" else f"{kind} {target:.2f}"
        cells.append(f"{mean:.2f} ± {std:.2f} ({want})"
                     f"{'' if ok else ' **x**'}")
      truth = {"==": "±0.1 of", ">=": ">=", "<=": "<="}[kind]
      lines.append(f"| {dataset} | {case} | {side} | {truth} | " +
                   " | ".join(cells) + " |")
    for m in METRICS:
      totals[m][0] += right[m]
      totals[m][1] += len(keys)
    lines.append(f"| {dataset} | **right** | | | " + " | ".join(
        f"{right[m]} of {len(keys)}" for m in METRICS) + " |")
  lines.append("| all | **right** | | | " + " | ".join(
      f"**{totals[m][0]} of {totals[m][1]}**" for m in METRICS) + " |")
  return "\n".join(lines)


def realism_table(results: dict) -> str:
  lines = ["| dataset | noise images among held-out (noise20) | far outliers "
           "among half the classes (half_outliers) |", "| --- | --- | --- |"]
  for dataset, by_seed in results.items():
    aucs = {case: np.array([s["realism"][case] for s in by_seed.values()])
            for case in ("noise20", "half_outliers")}
    lines.append(f"| {dataset} | " + " | ".join(
        f"{a.mean():.3f} ± {a.std(ddof=1) if len(a) > 1 else 0.0:.3f}"
        for a in aucs.values()) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  from lsh_gan import _files  # pylint: disable=g-import-not-at-top
  results = {}
  if os.path.exists(_OUT.value):
    with open(_OUT.value) as f:
      results = json.load(f)
  with tempfile.TemporaryDirectory() as tmp:
    data_dir = _DATA_DIR.value or tmp
    for dataset in _DATASETS.value:
      for seed in _SEEDS.value:
        if seed in results.get(dataset, {}):
          continue
        results.setdefault(dataset, {})[seed] = run_seed(dataset, data_dir,
                                                         int(seed))
        print(dataset, seed, "done", flush=True)
        os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)),
                    exist_ok=True)
        _files.write_json(_OUT.value, results, sort_keys=True)
  shown = {d: {s: results[d][s] for s in _SEEDS.value if s in results[d]}
           for d in _DATASETS.value if d in results}
  print(table(shown))
  print()
  print(realism_table(shown))


if __name__ == "__main__":
  app.run(main)
