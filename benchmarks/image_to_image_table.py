"""The table and sample figure of docs/image_to_image.md, from the saved run.

Run from the repository root, after the sweep it reads (resumable; about
3 minutes on 2 CPU cores):

  python launch.py --config=configs/sweep_pix2pix_edges2digits.py \
      --seeds=3 --workdir=runs/image_to_image/post_training
  python benchmarks/image_to_image_table.py

It copies the summary (mean and std over the seeds of every metric at every
point) to docs/results/image_to_image_post_training.csv, prints the
markdown table of docs/image_to_image.md, and draws
docs/figures/image_to_image_samples.png: one column per digit class (the
first test pair of each), rows input, target, the committed generator's
output and each compressed one's (made afresh: post-training compression
is a pure function of the committed variables).

The seeds move the LSH hashes (KID's subsets of 1,000 from 1,000 outputs
are the whole set); the 1,000 test pairs and the generator are the same at
every seed, so only the LSH metrics spread. A cell is marked
* where the point differs from the baseline beyond noise (the rule of
docs/results.md: max(0.05, 3 standard errors); FID more than 1.5 times the
baseline's; L1 more than 1.5 times, SSIM or edge F1 lower by more than
0.05, PSNR lower by more than 1 dB).
"""

from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags
import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path.insert(0, _ROOT)
from lsh_gan import _files  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import compress  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import data  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import report  # pylint: disable=g-import-not-at-top,wrong-import-position

# Named apart from the other table scripts' flags (one process may import
# several).
_RUN = flags.DEFINE_string("i2i_run", "runs/image_to_image/post_training",
                           "the sweep's workdir (run with --seeds)")
_DOCS = flags.DEFINE_string("i2i_docs", os.path.join(_ROOT, "docs"),
                            "where results/ and figures/ go")

GENERATOR = "pix2pix_edges2digits"
QUALITY = (("KNN P", "knn_precision"), ("KNN R", "knn_recall"),
           ("LSH P", "lsh_precision"), ("LSH R", "lsh_recall"),
           ("FID", "fid"))
PAIRED = (("L1", "l1"), ("PSNR", "psnr"), ("SSIM", "ssim"),
          ("edge F1", "edge_f1"))
# The rows of the sample figure besides input, target and baseline.
SHOWN = ("quantize(bits=4)", "quantize(bits=3)", "quantize(bits=2)",
         "quantize(bits=2,grid='kmeans')", "prune(sparsity=0.8)",
         "prune(sparsity=0.9)+quantize(bits=4)")


def paired_worse(row: dict, base: dict, metric: str) -> bool:
  """A paired metric's change beyond the module docstring's margins."""
  value, ref = row[f"{metric}_mean"], base[f"{metric}_mean"]
  if metric == "l1":
    return value > 1.5 * ref
  if metric == "psnr":
    return value < ref - 1.0
  return value < ref - 0.05


def table(rows: list[dict], timing: dict[str, float]) -> str:
  base = rows[0]
  digits = report.fid_digits(rows)
  lines = []
  for r in rows:
    cells = [r["point"]]
    for _, metric in QUALITY:
      places = digits if metric == "fid" else 3
      # ± only where it shows (identical runs' std is rounding, ~1e-16).
      cell = (report.mean_std_cell(r, metric, places)
              if r[f"{metric}_std"] >= 0.5 * 10 ** -places else
              f"{r[f'{metric}_mean']:.{places}f}")
      if r is not base and report.beyond_noise(r, base, metric):
        cell += " *"
      cells.append(cell)
    for _, metric in PAIRED:
      cell = f"{r[f'{metric}_mean']:.{1 if metric == 'psnr' else 3}f}"
      if r is not base and paired_worse(r, base, metric):
        cell += " *"
      cells.append(cell)
    cells += [str(r["bits"]), f"{r['compression_ratio']:.1f}×",
              f"{r['stored_bytes'] / 1024:,.0f}", f"{r['macs']:,}",
              f"{1000 * timing[r['point']]:.0f}"]
    lines.append(cells)
  return (f"mean over {base['num_seeds']} seeds (± std where the seeds "
          "move the metric: only the LSH hashes move); * "
          "beyond noise from the baseline\n\n" +
          report.markdown_table(
              ["point", *(c for c, _ in QUALITY), *(c for c, _ in PAIRED),
               "bits", "ratio", "KiB", "MACs", "ms / 1k"], lines))


def first_rows():
  """The conditions of the sample figures (the first test pair of each
  class), and their first rows: input, target, the committed generator's
  output."""
  pairs = data.load("edges2digits", "test")
  first = [int(np.flatnonzero(pairs["label"] == d)[0]) for d in range(10)]
  conditions, targets = pairs["condition"][first], pairs["image"][first]
  translate_fn, variables = pretrained.generator(GENERATOR)
  return conditions, [
      ("input (outline)", conditions), ("target", targets),
      ("baseline", np.asarray(translate_fn(variables, conditions)))]


def draw(rows, path: str) -> str:
  """A figure of titled rows of 10 images each, saved to `path`."""
  fig, axes = report.subplots(len(rows), 1, figsize=(6, 0.95 * len(rows)))
  for ax, (title, images) in zip(axes, rows):
    ax.imshow(report.tile(images, cols=10)[..., 0], cmap="gray", vmin=0,
              vmax=1)
    ax.set_axis_off()
    ax.set_title(title, fontsize=7, loc="left")
  return report.save_figure(fig, path)


def sample_figure(path: str) -> str:
  conditions, rows = first_rows()
  translate_fn, variables = pretrained.generator(GENERATOR)
  for point in SHOWN:
    rows.append((point, np.asarray(translate_fn(
        compress.parse(point)(variables), conditions))))
  return draw(rows, path)


def main(argv):
  del argv
  with open(os.path.join(_RUN.value, "summary.json")) as f:
    summary = json.load(f)
  rows = summary["rows"]
  timing = {}
  for seed in summary["seeds"]:
    with open(os.path.join(_RUN.value, f"seed_{seed}", "results.json")) as f:
      for r in json.load(f)["rows"]:
        timing.setdefault(r["point"], []).append(r["generate_1000_s"])
  timing = {k: float(np.median(v)) for k, v in timing.items()}
  _files.write_csv(os.path.join(_DOCS.value, "results",
                                "image_to_image_post_training.csv"),
                   rows, rows[0])
  print(table(rows, timing))
  print(sample_figure(os.path.join(_DOCS.value, "figures",
                                   "image_to_image_samples.png")),
        file=sys.stderr)


if __name__ == "__main__":
  app.run(main)
