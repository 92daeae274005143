"""Known-truth sets from real digit embeddings: does a metric read them right?

Run from the repository root (about a minute on 2 cores):

  python benchmarks/known_truth.py
  python benchmarks/known_truth.py --datasets=digits --metrics=knn,lsh

The reference is the train split of a dataset, embedded by the project's
committed embedder; each fake set is built from the held-out test split, so
its true answer is known by construction, relative to the held-out set's own
reading (a metric's reading of a fresh sample of the real distribution):

  heldout   the test split                  precision, recall >= 0.6
  half      its digits of classes 0-4       precision as heldout,
                                            recall half of heldout's
  noise20   20% of it replaced by uniform   precision 0.8 x that of the
            noise images                    other 80% alone, recall as theirs
  noise     uniform noise images only       precision, recall <= 0.1

(`rest80` is the held-out set without the replaced 20%: the baseline of
noise20.) A reading counts as right within 0.1 of a value, and when it
holds a bound (the bounds already leave that room). The tests
(tests/metrics_known_truth_test.py) hold LSH-only and LSH+KNN to every case
at their defaults.
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

CASES = ("heldout", "half", "noise20", "noise")
TOLERANCE = 0.1
TOP_SEED = 42  # TopP&R's default
METRICS = ("knn", "dc", "lsh", "lsh_knn", "p", "top", "clipped")
NAMES = {"knn": "KNN", "dc": "density/coverage", "lsh": "LSH-only",
         "lsh_knn": "LSH+KNN", "p": "P-precision/recall", "top": "TopP&R",
         "clipped": "clipped density/coverage"}


def embedded_cases(dataset: str, data_dir: str, seed: int = 0):
  """(real, {case: fake}) embeddings of `dataset` (see the module doc)."""
  from lsh_gan import data  # pylint: disable=g-import-not-at-top
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  embed_fn, params = pretrained.embedder(dataset)
  embed = lambda images: pretrained.embed_all(embed_fn, params, images)
  train = data.load(dataset, "train", data_dir=data_dir)
  test = data.load(dataset, "test", data_dir=data_dir)
  rng = np.random.default_rng(seed)
  noise = embed(rng.uniform(-1, 1, test["image"].shape).astype(np.float32))
  held = embed(test["image"])
  # The replaced 20%: a random fifth of the held-out set.
  replaced = np.zeros(held.shape[0], bool)
  replaced[rng.choice(held.shape[0], held.shape[0] // 5, replace=False)] = True
  noise20 = np.where(replaced[:, None], noise, held)
  return embed(train["image"]), {
      "heldout": held, "half": held[test["label"] < 5], "noise20": noise20,
      "rest80": held[~replaced], "noise": noise}


def score(metric: str, ref, fake, seed: int = 0) -> dict[str, float]:
  """One metric's {precision, recall} of `fake` against a `Reference`
  (density and coverage as the fidelity and diversity sides of their
  families); `seed` offsets each randomised metric's default seed."""
  if metric in ("dc", "clipped"):
    out = (ref.density_coverage(fake) if metric == "dc" else
           ref.clipped_density_coverage(fake))
    return {"precision": out["density"], "recall": out["coverage"]}
  if metric == "knn":
    out = ref.knn_precision_recall(fake)
  elif metric == "p":
    out = ref.probabilistic_precision_recall(fake)
  elif metric == "top":
    out = ref.top_precision_recall(fake, seed=TOP_SEED + seed)
  else:
    out = getattr(ref, f"{metric}_precision_recall")(fake, seed=seed)
  return {"precision": out["precision"], "recall": out["recall"]}


# The kind of each case's truth: "==" a value (read within TOLERANCE), ">="
# or "<=" a bound (which must hold).
KINDS = {("heldout", "precision"): ">=", ("heldout", "recall"): ">=",
         ("half", "precision"): "==", ("half", "recall"): "==",
         ("noise20", "precision"): "==", ("noise20", "recall"): "==",
         ("noise", "precision"): "<=", ("noise", "recall"): "<="}


def truths(scores: dict) -> dict:
  """{(case, "precision" | "recall"): (reading, kind, target)}, kind from
  KINDS."""
  held, rest = scores["heldout"], scores["rest80"]
  half, noise20, noise = scores["half"], scores["noise20"], scores["noise"]
  targets = {
      ("heldout", "precision"): 0.6, ("heldout", "recall"): 0.6,
      ("half", "precision"): held["precision"],
      ("half", "recall"): held["recall"] / 2,
      ("noise20", "precision"): 0.8 * rest["precision"],
      ("noise20", "recall"): rest["recall"],
      ("noise", "precision"): TOLERANCE, ("noise", "recall"): TOLERANCE}
  cases = {"heldout": held, "half": half, "noise20": noise20, "noise": noise}
  return {(case, side): (cases[case][side], KINDS[case, side], target)
          for (case, side), target in targets.items()}


def error(reading: float, kind: str, target: float) -> float:
  """How far a reading is from its truth (0 when a bound holds; infinite
  for a metric that could not read the case: NaN)."""
  if reading != reading or target != target:
    return float("inf")
  if kind == ">=":
    return max(0.0, target - reading)
  if kind == "<=":
    return max(0.0, reading - target)
  return abs(reading - target)


def slack(kind: str) -> float:
  """How far a right reading may be from its truth: TOLERANCE from a value
  ("=="), none past a bound (the bounds already leave the room)."""
  return TOLERANCE if kind == "==" else 0.0


def within(err: float, kind: str) -> bool:
  """Whether an `error` is small enough for a truth of this kind."""
  return err <= slack(kind) + 1e-12


def is_right(reading: float, kind: str, target: float) -> bool:
  """Within TOLERANCE of a value ("=="), or holding a bound."""
  return within(error(reading, kind, target), kind)


def run(datasets, metrics_to_run, data_dir: str) -> dict:
  """{dataset: {metric: {case: {precision, recall}}}}."""
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  out = {}
  for dataset in datasets:
    real, cases = embedded_cases(dataset, data_dir)
    ref = metrics.Reference(real)
    out[dataset] = {m: {c: score(m, ref, fake) for c, fake in cases.items()}
                    for m in metrics_to_run}
  return out


def table(results: dict) -> str:
  """Markdown: one row per (dataset, case, side), a column per metric."""
  metric_names = list(next(iter(results.values())))
  head = ["dataset", "case", "", "truth"] + [NAMES[m] for m in metric_names]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for dataset, by_metric in results.items():
    checked = {m: truths(by_metric[m]) for m in metric_names}
    right = {m: 0 for m in metric_names}
    for case, side in checked[metric_names[0]]:
      cells = []
      for m in metric_names:
        reading, kind, target = checked[m][case, side]
        ok = is_right(reading, kind, target)
        right[m] += ok
        want = f"{kind} {target:.2f}" if kind != "==" else f"{target:.2f}"
        cells.append(f"{reading:.3f} ({want}){'' if ok else ' **x**'}")
      truth = {"==": "±0.1 of", ">=": ">=", "<=": "<="}[
          checked[metric_names[0]][case, side][1]]
      lines.append(f"| {dataset} | {case} | {side} | {truth} | " +
                   " | ".join(cells) + " |")
    lines.append(f"| {dataset} | **right** | | | " + " | ".join(
        f"{right[m]} of 8" for m in metric_names) + " |")
  return "\n".join(lines)


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  del argv
  with tempfile.TemporaryDirectory() as data_dir:
    results = run(flags.FLAGS.datasets, flags.FLAGS.metrics, data_dir)
  print(table(results))


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_list("datasets", ["mnist5k", "digits"], "datasets")
  flags.DEFINE_list("metrics", list(METRICS),
                    "metrics: " + ", ".join(METRICS))
  app.run(main)
