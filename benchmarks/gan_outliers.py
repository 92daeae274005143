"""Outliers in a GAN's evaluation: how far each metric moves with ε.

Run from the repository root:

  python benchmarks/gan_outliers.py               # about 4 min on 2 cores

The paper's claim: high compression adds outliers to the generated set,
which bias KNN precision and recall; the LSH metrics are more robust. Here
the committed DCGAN on mnist5k (--generator) gives 5,000 samples and the
4,000 training images are the reference, both in the mnist5k embedding, and
a fraction ε ∈ {0, 1, 2, 5, 10}% of one set is replaced by outliers:

  side fake   ε of the generated samples are replaced;
  side real   ε of the reference images are replaced (the reference is
              rebuilt; this is the case where KNN balls grow around outliers);

from two sources:

  2-bit       samples of the same generator quantized to 2 bits (what a
              badly compressed generator adds: checkerboard noise);
  noise       images of uniform noise in [-1, 1].

Every metric of the launcher's sweep is computed (KNN k = 3, density and
coverage k = 5, LSH-only and LSH + KNN at the sweep's settings, and the
robust peers: P-precision/recall, TopP&R, clipped density/coverage) at 3
seeds (the generator's latents, the outlier draws and which rows they
replace, the LSH hashes, TopP&R's projection and resamples); the table shows mean ± std. The column "alone" scores the whole
outlier pool as the fake set: how the embedding sees the outliers.

A second table runs LSH-only at bucket widths of 0.25 to 4 times the real
set's default width (1: `Reference.lsh_width`), both sets hashed at it: how
its reading depends on the width.

Cells are kept in --out (written atomically after each); a rerun resumes.
The outlier draws come from one generator per seed, in cell order, so the
cells a resumed run computes draw other (equally random) rows than an
uninterrupted run would.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path.insert(0, _ROOT)
sys.path.insert(0, _HERE)
import _cells  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import _files  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import report  # pylint: disable=g-import-not-at-top,wrong-import-position

_GENERATOR = flags.DEFINE_string("generator", "dcgan_mnist5k",
                                 "a pre-trained generator")
_SEEDS = flags.DEFINE_integer("seeds", 3, "seeds 0, 1, ...")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 5000, "generated samples")
_OUT = flags.DEFINE_string(
    "out", None, "results file, resumed (default: "
    "benchmarks/results/gan_outliers_<generator>.json)")
_FIGURE = flags.DEFINE_string(
    "figure", os.path.join(_ROOT, "docs", "figures", "outliers_gan.png"),
    "the figure ('' for none)")

EPSILONS = (0.0, 0.01, 0.02, 0.05, 0.1)
WIDTH_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)  # times the default width
SIDES = ("fake", "real")
SOURCES = ("2-bit", "noise")
SHOWN = (("knn_precision", "KNN precision"), ("knn_recall", "KNN recall"),
         ("density", "density"), ("coverage", "coverage"),
         ("lsh_precision", "LSH-only precision"),
         ("lsh_recall", "LSH-only recall"),
         ("lsh_knn_precision", "LSH+KNN precision"),
         ("lsh_knn_recall", "LSH+KNN recall"),
         ("p_precision", "P-precision"), ("p_recall", "P-recall"),
         ("top_precision", "TopP&R precision"),
         ("top_recall", "TopP&R recall"),
         ("clipped_density", "clipped density"),
         ("clipped_coverage", "clipped coverage"))


def _config(seed: int):
  from configs import sweep_dcgan_mnist5k  # pylint: disable=g-import-not-at-top
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = _GENERATOR.value
  config.num_samples = _NUM_SAMPLES.value
  config.seed = seed
  return config


def _replace(rows: np.ndarray, pool: np.ndarray, eps: float,
             rng: np.random.Generator) -> np.ndarray:
  """rows with round(eps * n) of them, at random, replaced by pool rows
  (distinct ones while the pool is large enough, else drawn with
  replacement: a small --num_samples gives a small 2-bit pool)."""
  count = int(round(eps * rows.shape[0]))
  out = rows.copy()
  where = rng.choice(rows.shape[0], count, replace=False)
  out[where] = pool[rng.choice(pool.shape[0], count,
                              replace=count > pool.shape[0])]
  return out


def run_seed(seed: int, results: dict, out: str) -> None:
  """Computes the seed's missing cells, saving after each."""
  from lsh_gan import compress  # pylint: disable=g-import-not-at-top
  from lsh_gan import data  # pylint: disable=g-import-not-at-top
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  from lsh_gan import pipeline  # pylint: disable=g-import-not-at-top
  keys = ([f"{seed},alone,{s},1.0" for s in SOURCES] +
          [f"{seed},{side},{s},{e}" for side in SIDES for s in SOURCES
           for e in EPSILONS] +
          [f"{seed},width,{f}" for f in WIDTH_FACTORS])
  # A cell saved before a metric was added is computed again.
  done = lambda key: key in results and (key.split(",")[1] == "width" or all(
      m in results[key] for m, _ in SHOWN))
  if all(done(k) for k in keys):
    return
  stages = pipeline.Stages(_config(seed))
  rng = np.random.default_rng(seed)
  fake = stages.embed(stages.generate(stages.variables))
  reference = stages.reference
  real = np.asarray(reference.real)
  two_bit = compress.parse("quantize(bits=2)")
  pools = {
      "2-bit": stages.embed(stages.generate(
          compress.unpack(two_bit.pack(stages.variables)))),
      "noise": stages.embed(rng.uniform(
          -1, 1, (2000,) + tuple(data.sample_shape(stages.dataset))).astype(np.float32)),
  }
  for key in keys:
    if done(key):
      continue
    _, side, source, *eps = key.split(",")
    start = time.perf_counter()
    stages.reference = reference
    if side == "width":
      results[key] = _width_cell(stages, float(source), fake, real, pools,
                                 rng)
      _files.write_json(out, results, sort_keys=True)
      continue
    pool = pools[source]
    if side == "alone":
      row = stages.score(pool)
    elif side == "fake":
      row = stages.score(_replace(fake, pool, float(eps[0]), rng))
    else:
      stages.reference = metrics.Reference(_replace(real, pool, float(eps[0]),
                                                    rng))
      row = stages.score(fake)
    row.pop("notes", None)
    results[key] = {**row, "seconds": time.perf_counter() - start}
    logging.info("%s: knn P/R %.3f/%.3f, lsh P/R %.3f/%.3f (%.1f s)", key,
                 row["knn_precision"], row["knn_recall"], row["lsh_precision"],
                 row["lsh_recall"], results[key]["seconds"])
    _files.write_json(out, results, sort_keys=True)


def _width_cell(stages, factor: float, fake, real, pools, rng) -> dict:
  """LSH-only at bucket width factor x the real set's default width
  (`Reference.lsh_width`: 2 bucket-mates per table), both sets hashed at
  it: how the reading depends on the width."""
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  c, ref = stages.config, stages.reference
  family = dict(num_tables=c.lsh_tables, num_hashes=c.lsh_hashes,
                seed=c.seed)
  width = factor * ref.lsh_width(**family)
  lsh = lambda r, f: r.lsh_precision_recall(f, bucket_width=width, **family)
  base = lsh(ref, fake)
  noisy_real = metrics.Reference(_replace(real, pools["noise"], 0.1, rng))
  noisy_fake = _replace(fake, pools["noise"], 0.1, rng)
  noisy = lsh(noisy_real, fake)
  return {
      "width": width, "precision": base["precision"],
      "recall": base["recall"],
      "precision_2bit": lsh(ref, pools["2-bit"])["precision"],
      "precision_noise": lsh(ref, pools["noise"])["precision"],
      "precision_noise_in_fake_10": lsh(ref, noisy_fake)["precision"],
      "precision_noise_in_real_10": noisy["precision"],
      "recall_noise_in_real_10": noisy["recall"],
  }


def width_table(results) -> str:
  columns = (("precision", "precision"), ("recall", "recall"),
             ("precision_2bit", "precision of 2-bit samples"),
             ("precision_noise", "precision of noise images"),
             ("precision_noise_in_fake_10", "precision, 10% noise in fake"),
             ("precision_noise_in_real_10", "precision, 10% noise in real"),
             ("recall_noise_in_real_10", "recall, 10% noise in real"))
  head = ["width / default width"] + [name for _, name in columns]
  lines = []
  for factor in WIDTH_FACTORS:
    cells = [c for k, c in results.items()
             if k.split(",")[1:] == ["width", str(factor)] and
             int(k.split(",")[0]) < _SEEDS.value]
    row = [f"{factor:g}" + (" (default)" if factor == 1.0 else "")]
    for key, _ in columns:
      row.append("{:.3f} ± {:.3f}".format(*_mean_std([c[key] for c in cells])))
    lines.append(row)
  return report.markdown_table(head, lines)


def _stats(results, side, source, eps, metric):
  values = [c[metric] for k, c in results.items()
            if k.split(",")[1:] == [side, source, str(eps)] and
            int(k.split(",")[0]) < _SEEDS.value]
  return _mean_std(values)


def _mean_std(values):
  """Mean and standard deviation (ddof 1; 0 for a single value)."""
  return np.mean(values), (np.std(values, ddof=1) if len(values) > 1 else 0.0)


def table(results) -> str:
  head = ["outliers in", "source", "metric", "alone"] + [
      f"ε = {e:.0%}" for e in EPSILONS]
  lines = []
  for side in SIDES:
    for source in SOURCES:
      for metric, name in SHOWN:
        alone = _stats(results, "alone", source, 1.0, metric)[0]
        cells = [f"{m:.3f} ± {s:.3f}" for m, s in
                 (_stats(results, side, source, e, metric)
                  for e in EPSILONS)]
        lines.append([side, source, name, f"{alone:.3f}", *cells])
  return report.markdown_table(head, lines)


def figure(results, path: str) -> None:
  fig, axes = report.subplots(2, 2, figsize=(11, 8), sharex=True, sharey=True)
  for i, side in enumerate(SIDES):
    for j, source in enumerate(SOURCES):
      ax = axes[i, j]
      for n, (metric, name) in enumerate(SHOWN):
        stats = np.array([_stats(results, side, source, e, metric)
                          for e in EPSILONS])
        # A colour per family; precision (density) solid, recall
        # (coverage) dashed.
        ax.errorbar(np.array(EPSILONS) * 100, stats[:, 0] - stats[0, 0],
                    yerr=stats[:, 1], label=name, color=f"C{n // 2}",
                    marker="os^v>"[n // 2 % 5], markersize=4, capsize=2,
                    linestyle="-" if n % 2 == 0 else "--")
      ax.set_title(f"{source} outliers in the {side} set")
      ax.axhline(0.0, color="black", linewidth=0.8)
      ax.grid(alpha=0.3)
      if j == 0:
        ax.set_ylabel("change from ε = 0")
      if i == 1:
        ax.set_xlabel("ε (% of the set replaced)")
  axes[0, 0].legend(fontsize=7, loc="lower left", ncol=2)
  fig.suptitle(f"{_GENERATOR.value}: each metric's change with the outlier "
               f"fraction (mean ± std over {_SEEDS.value} seeds)")
  report.save_figure(fig, path)


def main(argv):
  del argv
  out = _OUT.value or os.path.join(
      _HERE, "results", f"gan_outliers_{_GENERATOR.value}.json")
  results = _cells.load(out)
  # Keyed on everything that decides the cells' numbers: the pipeline's
  # experiment (code version, generator's and embedder's fingerprints,
  # metric settings) but its seed, which each cell names.
  from lsh_gan import pipeline  # pylint: disable=g-import-not-at-top
  meta = {"generator": _GENERATOR.value, "num_samples": _NUM_SAMPLES.value,
          "experiment": {k: v for k, v in pipeline.experiment(
              _config(0)).items() if k != "seed"}}
  meta = json.loads(json.dumps(meta))
  if results.setdefault("_experiment", meta) != meta:
    raise app.UsageError(
        f"--out={out} holds cells of another experiment (a retrained "
        "generator or embedder, or other code or settings); move it away to "
        "compute them again, or pass another --out")
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  for seed in range(_SEEDS.value):
    run_seed(seed, results, out)
  results.pop("_experiment")
  print(table(results))
  print("\nLSH-only against its bucket width (both sets hashed at it):\n")
  print(width_table(results))
  if _FIGURE.value:
    figure(results, _FIGURE.value)
    print(f"\nFigure: {_FIGURE.value}")


if __name__ == "__main__":
  app.run(main)
