"""The tables and sample figure of docs/finetune.md, from the saved runs.

Run from the repository root, after the comparison runs it reads (each
resumable; about 25 minutes per generator on 2 CPU cores):

  for g in dcgan_digits dcgan_mnist5k wgan_gp_mnist5k dcgan_shapes; do
    python launch.py --config=configs/finetune.py:$g --seeds=3 \
        --workdir=runs/finetune/$g
  done
  python benchmarks/finetune_table.py

It copies each generator's summary (mean and std over the seeds of every
metric at every point) to docs/results/finetune_<generator>.csv, prints the
markdown tables of docs/finetune.md, and draws
docs/figures/finetune_samples.png (the first seed's samples of every point,
one row per generator; QAT: quantization-aware, DS:
discriminator-supervised).

Quality: mean ± std over the seeds (the seeds move the latents and the
reference draw; each fine-tuned generator is trained once and shared by
the seeds). A cell is marked * where the point's mean differs from the
uncompressed baseline's beyond noise (the rule of docs/results.md:
max(0.05, 3 standard errors), FID: more than 1.5 times the baseline's).

Cost: the stored size and ratio (measured: `compress.report` of the packed
variables), MACs and parameters per sample, generation time per 1,000
samples (the median over the seeds: one timed call each) and the
fine-tuning time. Where a training stage logged three or more checkpoint
intervals (distillation and the search's supernet: every 500 steps), its
time is the median seconds per step times the steps, so that a pause or
another job on the machine during one interval does not count; shorter
stages (the 300-600 fine-tuning steps under a transform) count as logged,
compilation included. The raw sums are in results.csv (`finetune_s`).
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys

from absl import app
from absl import flags
import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path.insert(0, _ROOT)
from lsh_gan import _files  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import report  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import finetune as finetune_config  # pylint: disable=g-import-not-at-top,wrong-import-position

# Named apart from results_figures.py's --runs and --docs (one process may
# import both).
_RUNS = flags.DEFINE_string("finetune_runs", "runs/finetune",
                            "the comparison runs' directory")
_DOCS = flags.DEFINE_string("finetune_docs", os.path.join(_ROOT, "docs"),
                            "where results/ and figures/ go")

GENERATORS = ("dcgan_digits", "dcgan_mnist5k", "wgan_gp_mnist5k",
              "dcgan_shapes")
QUALITY = (("KNN P", "knn_precision"), ("KNN R", "knn_recall"),
           ("density", "density"), ("coverage", "coverage"),
           ("LSH+KNN P", "lsh_knn_precision"),
           ("LSH+KNN R", "lsh_knn_recall"),
           ("LSH P", "lsh_precision"), ("LSH R", "lsh_recall"),
           ("FID", "fid"))


def short(point: str) -> str:
  """A point's name for a table cell."""
  point = point.replace("quantize(bits=2,grid='kmeans')", "2-bit k-means")
  point = point.replace("prune(sparsity=0.9)+quantize(bits=4)",
                        "90% pruned + 4-bit")
  point = re.sub(r" >> quantization_aware\(steps=(\d+)\)",
                 r", quantization-aware (\1 steps)", point)
  point = re.sub(r" >> discriminator_supervised\(steps=(\d+)\)",
                 r", discriminator-supervised (\1 steps)", point)
  point = re.sub(r"distill\(width=(\d+),steps=(\d+)\)",
                 r"distilled, width \1 (\2 steps)", point)
  point = re.sub(r"search\(budget_macs=(\d+),supernet_steps=(\d+),"
                 r"steps=(\d+),choices=.*\)",
                 r"searched, ≤ \1 MACs (\2 + \3 steps)", point)
  return point


def training_seconds(folder: str) -> float:
  """A fine-tuning run's seconds from its logs: per training stage (a
  search's supernet and fine-tuning; seconds.json, written at every
  checkpoint) the median seconds per step over the checkpoint intervals
  times the steps, or the logged total where a stage has fewer than three
  intervals; plus a search's scoring time (search.json)."""
  logs = glob.glob(os.path.join(folder, "**", "seconds.json"),
                   recursive=True)
  if not logs:
    raise FileNotFoundError(f"no seconds.json under {folder}: is it the "
                            "point's fine-tuning folder?")
  total = 0.0
  for path in logs:
    with open(path) as f:
      logged = json.load(f)
    steps = np.array(sorted(int(s) for s in logged), np.float64)
    times = np.array([logged[str(int(s))] for s in steps])
    if len(steps) < 3:  # too few to tell a pause from the run
      total += times[-1]
    else:
      per_step = np.diff(np.concatenate([[0.0], times])) / np.diff(
          np.concatenate([[0.0], steps]))
      total += float(np.median(per_step)) * steps[-1]
  search = os.path.join(folder, "search.json")
  if os.path.exists(search):
    with open(search) as f:
      total += json.load(f)["seconds"]
  return total


def load(runs: str, name: str):
  """(summary rows, per-seed rows, training seconds by point) of one
  generator's runs, or None where its summary is not there yet."""
  path = os.path.join(runs, name, "summary.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    summary = json.load(f)
  seeds = []
  for seed in summary["seeds"]:
    with open(os.path.join(runs, name, f"seed_{seed}", "results.json")) as f:
      seeds.append(json.load(f)["rows"])
  seconds = {}
  for row in summary["rows"]:
    if row.get("finetune_s"):
      seconds[row["point"]] = training_seconds(pipeline.finetune_folder(
          os.path.join(runs, name, "finetune"), name,
          pipeline.parse_point(row["transform"])))
  return summary["rows"], seeds, seconds


def quality_table(name: str, rows: list[dict]) -> str:
  digits = report.fid_digits(rows)
  base = next(r for r in rows if r["point"] == "baseline")
  lines = []
  for r in rows:
    cells = [short(r["point"])]
    for _, metric in QUALITY:
      cell = report.mean_std_cell(r, metric, digits if metric == "fid" else 3)
      if r is not base and report.beyond_noise(r, base, metric):
        cell += " *"
      cells.append(cell)
    lines.append(cells)
  return (f"**{name}**: quality (mean ± std over {base['num_seeds']} seeds; "
          "* beyond noise from the baseline)\n\n" +
          report.markdown_table(["point", *(c for c, _ in QUALITY)], lines))


def cost_table(name: str, rows: list[dict], seeds: list[list[dict]],
               seconds: dict[str, float]) -> str:
  lines = []
  for i, r in enumerate(rows):
    # One timed call per seed, on a shared machine: the median.
    generate = np.median([s[i]["generate_1000_s"] for s in seeds])
    trained = seconds.get(r["point"], 0)
    lines.append([
        short(r["point"]), f"{r['compression_ratio']:.1f}×",
        f"{r['stored_bytes'] / 1024:,.1f}", f"{r['macs']:,}",
        f"{r['params']:,}", f"{generate * 1000:.0f}",
        "–" if not trained else f"{trained:,.0f}"])
  return (f"**{name}**: cost\n\n" + report.markdown_table(
      ["point", "ratio", "KiB stored", "MACs / sample", "params",
       "ms / 1,000 samples", "fine-tuning s"], lines))


def label(point: str) -> str:
  """A point's name under its samples (QAT: quantization-aware, DS:
  discriminator-supervised)."""
  out = short(point).split(" (")[0]
  out = out.replace("90% pruned + 4-bit", "90%+4-bit").replace(
      "2-bit k-means", "2-bit")
  out = out.replace(", quantization-aware", " QAT").replace(
      ", discriminator-supervised", " DS")
  return out.split(",")[0]


def sample_figure(runs: str, summaries: dict[str, tuple], path: str,
                  num: int = 16) -> None:
  """`num` samples of every summarised point of every generator
  ({name: (its configs/finetune.py config, summary rows)}), drawn
  afresh from the same latents, one row per generator. The fine-tuned
  generators are read back from their folders: a summarised row's training
  has finished, so nothing is trained here."""
  import jax  # pylint: disable=g-import-not-at-top
  drawn_rows = []
  for name, (config, rows) in summaries.items():
    stages = pipeline.Stages(config, os.path.join(runs, name, "finetune"))
    drawn = []
    for row in rows:
      made = stages.compressed(pipeline.parse_point(row["transform"]))
      drawn.append(np.asarray(made["sample_fn"](
          made["variables"], jax.random.key(0), num)))
    drawn_rows.append((name, drawn, [r["point"] for r in rows]))
  cols = max(len(d) for _, d, _ in drawn_rows)
  fig, axes = report.subplots(len(drawn_rows), cols,
                              figsize=(1.5 * cols, 1.7 * len(drawn_rows)),
                              squeeze=False)
  for r, (name, drawn, points) in enumerate(drawn_rows):
    for c in range(cols):
      ax = axes[r][c]
      ax.axis("off")
      if c < len(drawn):
        report.draw_samples(ax, drawn[c], cols=4)
        title = label(points[c])
        ax.set_title(f"{name}\n{title}" if c == 0 else title, fontsize=7)
  report.save_figure(fig, path)


def main(argv):
  del argv
  for sub in ("results", "figures"):
    os.makedirs(os.path.join(_DOCS.value, sub), exist_ok=True)
  done = {}
  for name in GENERATORS:
    loaded = load(_RUNS.value, name)
    if loaded is None:
      print(f"{name}: no summary.json yet under {_RUNS.value}")
      continue
    rows, seeds, seconds = loaded
    # Only the current config's points (a summary keeps the rows of points
    # since dropped from it; a new point has no row until it has run).
    config = finetune_config.get_config(name)
    current = {p for p, _ in pipeline.sweep(config)}
    keep = [i for i, r in enumerate(rows) if r["point"] in current]
    for r in rows:
      if r["point"] not in current:
        print(f"{name}: left out {r['point']} (no longer in the config)")
    for point in sorted(current - {r["point"] for r in rows}):
      print(f"{name}: not run yet: {point}")
    rows = [rows[i] for i in keep]
    seeds = [[s[i] for i in keep] for s in seeds]
    _files.write_csv(os.path.join(_DOCS.value, "results",
                                  f"finetune_{name}.csv"), rows, rows[0])
    print(quality_table(name, rows), end="\n\n")
    print(cost_table(name, rows, seeds, seconds), end="\n\n")
    done[name] = (config, rows)
  if done:
    sample_figure(_RUNS.value, done, os.path.join(
        _DOCS.value, "figures", "finetune_samples.png"))


if __name__ == "__main__":
  app.run(main)
