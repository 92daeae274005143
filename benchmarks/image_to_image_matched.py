"""The matched-MACs table and sample figure of docs/image_to_image.md, from
the saved run of configs/image_to_image.py.

Run from the repository root, after the sweep it reads (resumable):

  python launch.py --config=configs/image_to_image.py \
      --workdir=runs/image_to_image/matched_macs
  python benchmarks/image_to_image_matched.py

It copies the rows (every metric at every point; with --seeds, mean and std
over the seeds) to docs/results/image_to_image_matched_macs.csv, prints the
markdown table, one row per point grouped by MACs budget (the MACs, the
reduction against the committed U-Net, the stored size, the training time
and every metric), and draws docs/figures/image_to_image_matched.png: one
column per digit class (the first test pair of each), rows input, target,
the committed generator's output and each slimmer generator's, read back
from the sweep's fine-tuning folders (nothing is trained here).
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
sys.path.insert(0, _HERE)
import image_to_image_table  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import _files  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import finetune  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan import report  # pylint: disable=g-import-not-at-top,wrong-import-position

_RUN = flags.DEFINE_string("matched_run", "runs/image_to_image/matched_macs",
                           "the sweep's workdir")
_DOCS = flags.DEFINE_string("matched_docs", os.path.join(_ROOT, "docs"),
                            "where results/ and figures/ go")

GENERATOR = image_to_image_table.GENERATOR
METRICS = (("KNN P", "knn_precision", 3), ("KNN R", "knn_recall", 3),
           ("LSH P", "lsh_precision", 3), ("LSH R", "lsh_recall", 3),
           ("FID", "fid", 5), ("L1", "l1", 3), ("PSNR", "psnr", 1),
           ("SSIM", "ssim", 3), ("edge F1", "edge_f1", 3))


def rows_of(run: str) -> tuple[list[dict], int]:
  """The run's rows (a seeded run's means as the values) and its seeds."""
  summary = os.path.join(run, "summary.json")
  if os.path.exists(summary):
    with open(summary) as f:
      saved = json.load(f)
    rows = [{**r, **{k[:-5]: v for k, v in r.items() if k.endswith("_mean")}}
            for r in saved["rows"]]
    return rows, len(saved["seeds"])
  with open(os.path.join(run, "results.json")) as f:
    return json.load(f)["rows"], 1


def cell(row: dict, metric: str, places: int) -> str:
  std = row.get(f"{metric}_std", 0.0)
  value = f"{row[metric]:.{places}f}"
  return value if std < 0.5 * 10 ** -places else f"{value} ± {std:.{places}f}"


def table(rows: list[dict], seeds: int) -> str:
  base = rows[0]
  lines = []
  for r in rows:
    method = r["transform"].split("(")[0] if r is not base else "committed"
    lines.append([
        method, r["transform"] if r is not base else "pix2pix_edges2digits",
        f"{r['macs']:,}", f"{base['macs'] / r['macs']:.1f}×",
        f"{r['stored_bytes'] / 1024:,.0f}",
        *(cell(r, m, p) for _, m, p in METRICS),
        f"{r['finetune_s']:.0f}", f"{1000 * r['generate_1000_s']:.0f}"])
  return (f"{seeds} seed{'s' if seeds > 1 else ''} of the metrics' "
          "randomness (each slimmer generator trained once, seed 0)\n\n" +
          report.markdown_table(
              ["method", "point", "MACs", "fewer", "KiB",
               *(c for c, _, _ in METRICS), "train s", "ms / 1k"], lines))


def sample_figure(rows: list[dict], run: str, path: str) -> str:
  conditions, shown = image_to_image_table.first_rows()
  for r in rows[1:]:
    recipe = finetune.parse_recipe(r["transform"])
    slim = recipe.run(GENERATOR, pipeline.finetune_folder(
        os.path.join(run, "finetune"), GENERATOR, recipe))
    shown.append((f"{r['transform']} ({rows[0]['macs'] / r['macs']:.1f}× "
                  "fewer MACs)",
                  np.asarray(slim.sample_fn(slim.variables, conditions))))
  return image_to_image_table.draw(shown, path)


def main(argv):
  del argv
  rows, seeds = rows_of(_RUN.value)
  _files.write_csv(os.path.join(_DOCS.value, "results",
                                "image_to_image_matched_macs.csv"),
                   rows, rows[0])
  print(table(rows, seeds))
  print(sample_figure(rows, _RUN.value, os.path.join(
      _DOCS.value, "figures", "image_to_image_matched.png")),
        file=sys.stderr)


if __name__ == "__main__":
  app.run(main)
