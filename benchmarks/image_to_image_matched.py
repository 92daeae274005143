"""The matched-MACs table and sample figure of docs/image_to_image.md, from
the saved run of configs/image_to_image.py.

Run from the repository root, after the sweep it reads (resumable):

  python launch.py --config=configs/image_to_image.py \
      --workdir=runs/image_to_image/matched_macs
  python benchmarks/image_to_image_matched.py

It copies the rows (every metric at every point and training seed; with
--seeds, mean and std over the evaluation seeds) to
docs/results/image_to_image_matched_macs.csv, prints the markdown table, one
row per point grouped by MACs budget (the MACs, the reduction against the
committed U-Net, the stored size, the training time and every metric; for a
point trained at several seeds, the mean and sample std over them), and
draws docs/figures/image_to_image_matched.png: one column per digit class
(the first test pair of each), rows input, target, the committed
generator's output and each slimmer generator's (seed 0's), read back
from the sweep's fine-tuning folders (nothing is trained here).
"""

from __future__ import annotations

import dataclasses
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
from lsh_gan.finetune import _collaborative  # pylint: disable=g-import-not-at-top,wrong-import-position
from lsh_gan.finetune import _distill  # pylint: disable=g-import-not-at-top,wrong-import-position
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


def unseeded(transform: str) -> tuple[str, int]:
  """A fine-tuned point's string without its training seed, and the seed."""
  recipe = finetune.parse_recipe(transform)
  if recipe is None:
    return transform, 0
  kwargs = dict(recipe.kwargs)
  seed = kwargs.pop("seed", 0)
  return str(dataclasses.replace(recipe, kwargs=tuple(kwargs.items()))), seed


def by_training_seed(rows: list[dict]) -> list[dict]:
  """One row per point trained at several seeds (`seed=` in its recipe), in
  the order of its first seed's row: each metric's mean over the training
  seeds, its sample std (ddof 1) beside it, the MACs' and the training
  time's means, and `training_seeds`, the seeds it has. A point with one
  training seed keeps its row (and any spread over evaluation seeds)."""
  groups: dict[str, list[dict]] = {}
  for r in rows:
    name, seed = unseeded(r["transform"])
    groups.setdefault(name, []).append({**r, "training_seed": seed})
  out = []
  for name, group in groups.items():
    group.sort(key=lambda r: r["training_seed"])
    row = {**group[0], "transform": name,
           "training_seeds": [r["training_seed"] for r in group]}
    if len(group) > 1:
      for key in ("macs", "stored_bytes", "finetune_s", "generate_1000_s",
                  *(m for _, m, _ in METRICS)):
        if key not in group[0]:  # a seeded run's summary has no times
          continue
        values = np.array([r[key] for r in group], np.float64)
        row[key] = float(values.mean())
        row[f"{key}_std"] = float(values.std(ddof=1))
    out.append(row)
  return out


def label(transform: str) -> str:
  """A point's short name: the argument its method is set by."""
  recipe = finetune.parse_recipe(transform)
  kwargs = dict(recipe.kwargs)
  if recipe.method == "distill":
    return f"width {kwargs['width']}"
  if recipe.method == "search":
    return f"≤ {kwargs['budget_macs']:,} MACs"
  if recipe.method == "collaborative_prune":
    return f"MACs ratio {kwargs['macs_ratio']:.3g}"
  return transform


def title(transform: str) -> str:
  """A point's method and short name."""
  return f"{finetune.parse_recipe(transform).method}, {label(transform)}"


def cell(row: dict, metric: str, places: int) -> str:
  std = row.get(f"{metric}_std", 0.0)
  value = f"{row[metric]:.{places}f}"
  return value if std < 0.5 * 10 ** -places else f"{value} ± {std:.{places}f}"


def table(rows: list[dict], seeds: int) -> str:
  """The markdown table of `by_training_seed`'s rows (the committed
  generator's first) over `seeds` evaluation seeds."""
  base = rows[0]
  lines = []
  for r in rows:
    method = r["transform"].split("(")[0] if r is not base else "committed"
    trained = r.get("training_seeds", [0])
    macs = f"{r['macs']:,.0f}"
    if r.get("macs_std", 0.0) >= 0.5:
      macs += f" ± {r['macs_std']:,.0f}"
    lines.append([
        method, label(r["transform"]) if r is not base else
        "pix2pix_edges2digits",
        "–" if r is base else ", ".join(map(str, trained)), macs,
        f"{base['macs'] / r['macs']:.1f}×",
        f"{r['stored_bytes'] / 1024:,.0f}",
        *(cell(r, m, p) for _, m, p in METRICS),
        f"{r['finetune_s']:.0f}",
        f"{1000 * r['generate_1000_s']:.0f}" if "generate_1000_s" in r
        else "–"])
  return (f"{seeds} evaluation seed{'s' if seeds > 1 else ''}; ± the sample "
          "std over the training seeds listed where there are several, "
          "else over the evaluation seeds\n\n" +
          report.markdown_table(
              ["method", "point", "training seeds", "MACs", "fewer", "KiB",
               *(c for c, _, _ in METRICS), "train s", "ms / 1k"], lines))


def trained(rows: list[dict], run: str) -> dict:
  """Each fine-tuned row's generator (`finetune.Distilled`), read back from
  the sweep's fine-tuning folders (nothing is trained here), by its
  transform string."""
  out = {}
  for r in rows[1:]:
    recipe = finetune.parse_recipe(r["transform"])
    out[r["transform"]] = recipe.run(GENERATOR, pipeline.finetune_folder(
        os.path.join(run, "finetune"), GENERATOR, recipe))
  return out


def architectures(rows: list[dict], slim: dict) -> str:
  """The channels each point kept, per training seed: the generator's per
  U-Net level and, for the collaborative pruning, the PatchGAN's."""
  # pylint: disable=protected-access
  patch = _collaborative._discriminator_config(_distill._config(GENERATOR))
  # pylint: enable=protected-access
  lines = [["committed", "–", str(tuple(finetune.teacher_channels(GENERATOR))),
            str(tuple(patch["channels"])), f"{rows[0]['macs']:,}"]]
  for r in rows[1:]:
    g = slim[r["transform"]]
    d = g.discriminator_channels
    lines.append([title(r["transform"]), str(unseeded(r["transform"])[1]),
                  str(tuple(g.channels)), str(tuple(d)) if d else "–",
                  f"{r['macs']:,}"])
  return report.markdown_table(
      ["point", "seed", "generator channels", "discriminator channels",
       "MACs"], lines)


def sample_figure(rows: list[dict], slim: dict, path: str) -> str:
  conditions, shown = image_to_image_table.first_rows()
  first = {}  # one generator per point: its lowest training seed's
  for r in rows[1:]:
    name, seed = unseeded(r["transform"])
    if name not in first or seed < first[name][0]:
      first[name] = (seed, r)
  for _, r in first.values():
    g = slim[r["transform"]]
    shown.append((f"{title(r['transform'])} "
                  f"({rows[0]['macs'] / r['macs']:.1f}× fewer MACs)",
                  np.asarray(g.sample_fn(g.variables, conditions))))
  return image_to_image_table.draw(shown, path)


def main(argv):
  del argv
  rows, seeds = rows_of(_RUN.value)
  _files.write_csv(os.path.join(_DOCS.value, "results",
                                "image_to_image_matched_macs.csv"),
                   rows, rows[0])
  print(table(by_training_seed(rows), seeds))
  slim = trained(rows, _RUN.value)
  print("\n" + architectures(rows, slim))
  print(sample_figure(rows, slim, os.path.join(
      _DOCS.value, "figures", "image_to_image_matched.png")),
        file=sys.stderr)


if __name__ == "__main__":
  app.run(main)
