"""The figures and tables of docs/results.md, from the saved runs.

Run from the repository root, after the runs it reads:

  bash benchmarks/results_sweeps.sh        # the sweeps (runs/results)
  python benchmarks/cost_per_sample.py     # benchmarks/results/cost_per_sample.json
  python benchmarks/metrics_bench.py       # benchmarks/results/metrics_bench.json
  python benchmarks/gan_outliers.py        # its own figure and table
  python benchmarks/results_figures.py     # about 1 min

It copies each generator's summary (mean and std over the seeds of every
metric at every sweep point) to docs/results/<generator>.csv, prints the
tables of docs/results.md, and draws under docs/figures/:

  sweep_bits.png        every metric against the bits, per tensor and per
                        channel, for every generator (mean ± std);
  sweep_clip_prune.png  the same against the clipping percentile and the
                        pruning sparsity;
  tradeoff.png          each generator's path in the precision-recall plane
                        as the bits fall, for the three families;
  samples_bits.png      samples of every generator at 32, 8, 4, 2 and 1 bits
                        (drawn afresh: the generators are committed; the
                        pix2pix's translations of 16 test outlines);
  finetune_beside.png   the fine-tuned points of docs/finetune.md (read from
                        docs/results/finetune_<generator>.csv, written by
                        benchmarks/finetune_table.py) beside the sweep's
                        post-training points, against the measured ratio;
  cost_per_sample.png   µs per evaluated sample against n, with a built
                        reference and in one call, and peak memory.

"Breaks at" is the highest bit-width whose mean moves from the baseline's
by more than max(0.05, 3 standard errors of the difference) for precision
and recall (FID: by more than 50%).
"""

from __future__ import annotations

import json
import math
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
from lsh_gan import report  # pylint: disable=g-import-not-at-top,wrong-import-position

_RUNS = flags.DEFINE_string("runs", "runs/results", "the sweeps' directory")
_DOCS = flags.DEFINE_string("docs", os.path.join(_ROOT, "docs"),
                            "where results/ and figures/ go")
_COST = flags.DEFINE_string(
    "cost", os.path.join(_HERE, "results", "cost_per_sample.json"),
    "cost_per_sample.py's results")
_BENCH = flags.DEFINE_string(
    "bench", os.path.join(_HERE, "results", "metrics_bench.json"),
    "metrics_bench.py's results")
_SAMPLES = flags.DEFINE_bool("samples", True, "draw samples_bits.png")

GENERATORS = ("dcgan_mnist5k", "wgan_gp_mnist5k", "dcgan_digits",
              "dcgan_shapes", "pix2pix_edges2digits", "mlp_gan_ring8",
              "mlp_gan_grid25")
PRECISIONS = (("knn_precision", "KNN"), ("lsh_knn_precision", "LSH+KNN"),
              ("lsh_precision", "LSH-only"), ("density", "density"),
              ("p_precision", "P-precision"), ("top_precision", "TopP&R"),
              ("clipped_density", "clipped density"))
RECALLS = (("knn_recall", "KNN"), ("lsh_knn_recall", "LSH+KNN"),
           ("lsh_recall", "LSH-only"), ("coverage", "coverage"),
           ("p_recall", "P-recall"), ("top_recall", "TopP&R"),
           ("clipped_coverage", "clipped coverage"))
BREAK_METRICS = ("knn_precision", "knn_recall", "lsh_knn_precision",
                 "lsh_knn_recall", "lsh_precision", "lsh_recall",
                 "density", "coverage", "p_precision", "p_recall",
                 "top_precision", "top_recall", "clipped_density",
                 "clipped_coverage", "fid")
# (precision, recall, name) of every family, for the trade-off table.
FAMILIES = (("knn_precision", "knn_recall", "KNN"),
            ("lsh_knn_precision", "lsh_knn_recall", "LSH+KNN"),
            ("lsh_precision", "lsh_recall", "LSH-only"),
            ("density", "coverage", "D/C"),
            ("p_precision", "p_recall", "P-P/R"),
            ("top_precision", "top_recall", "TopP&R"),
            ("clipped_density", "clipped_coverage", "clipped D/C"))
SAMPLE_BITS = (None, 8, 4, 2, 1)
TOLERANCE = report.NOISE_TOLERANCE


def load_summaries(runs: str) -> dict[str, list[dict]]:
  out = {}
  for name in GENERATORS:
    path = os.path.join(runs, name, "summary.json")
    if os.path.exists(path):
      with open(path) as f:
        out[name] = json.load(f)["rows"]
  return out


def family(rows, kind: str) -> list[dict]:
  """The baseline and the quantization rows of one grid, by bits (desc)."""
  pattern = {"per tensor": r"quantize\(bits=\d+\)",
             "per channel": r"quantize\(bits=\d+,axis=-1\)"}[kind]
  fam = [r for r in rows if re.fullmatch(pattern, r["transform"])]
  return [r for r in rows if r["point"] == "baseline"] + sorted(
      fam, key=lambda r: -r["bits"])


def breaks_at(rows, kind: str, metric: str):
  """The first bit-width (from the top) whose mean moved beyond noise from
  the baseline's; "n/a" when the baseline's is undefined (NaN)."""
  fam = family(rows, kind)
  if math.isnan(fam[0][metric + "_mean"]):
    return "n/a"
  for r in fam[1:]:
    if report.beyond_noise(r, fam[0], metric):
      return r["bits"]
  return None


def sweep_table(name, rows) -> str:
  cols = (("KNN P", "knn_precision"), ("KNN R", "knn_recall"),
          ("density", "density"), ("coverage", "coverage"),
          ("LSH+KNN P", "lsh_knn_precision"), ("LSH+KNN R", "lsh_knn_recall"),
          ("LSH P", "lsh_precision"), ("LSH R", "lsh_recall"),
          ("P-P", "p_precision"), ("P-R", "p_recall"),
          ("TopP", "top_precision"), ("TopR", "top_recall"),
          ("clipped D", "clipped_density"), ("clipped C", "clipped_coverage"),
          ("FID", "fid"))
  fid_digits = report.fid_digits(rows)
  head = ["point", "ratio", "KiB"] + [c for c, _ in cols]
  lines = []
  for r in rows:
    cells = [r["point"], f"{r['compression_ratio']:.1f}×",
             f"{r['stored_bytes'] / 1024:,.0f}"]
    cells += [report.mean_std_cell(r, m, fid_digits if m == "fid" else 3)
              for _, m in cols]
    lines.append(cells)
  return f"**{name}**\n\n" + report.markdown_table(head, lines)


KEY_POINTS = ("baseline", "quantize(bits=8)", "quantize(bits=5)",
              "quantize(bits=4)", "quantize(bits=3)", "quantize(bits=2)",
              "quantize(bits=1)", "quantize(bits=3,axis=-1)",
              "clip(percentile=99)", "prune(sparsity=0.5)")


def key_points_table(summaries) -> str:
  """The points docs/results.md shows, every generator in one table."""
  cols = (("KNN P", "knn_precision"), ("KNN R", "knn_recall"),
          ("LSH+KNN P", "lsh_knn_precision"), ("LSH+KNN R", "lsh_knn_recall"),
          ("LSH P", "lsh_precision"), ("LSH R", "lsh_recall"), ("FID", "fid"))
  head = ["generator", "point", "ratio"] + [c for c, _ in cols]
  lines = []
  for name, rows in summaries.items():
    by_point = {r["point"]: r for r in rows}
    for point in KEY_POINTS:
      r = by_point[point]
      fid_digits = report.fid_digits(rows)
      cells = [name, point, f"{r['compression_ratio']:.1f}×"]
      cells += [report.mean_std_cell(r, m, fid_digits if m == "fid" else 2)
                for _, m in cols]
      lines.append(cells)
  return report.markdown_table(head, lines)


def peers_table(summaries) -> str:
  """The robust peers at the key points, beside exact KNN."""
  cols = (("KNN P", "knn_precision"), ("KNN R", "knn_recall"),
          ("P-precision", "p_precision"), ("P-recall", "p_recall"),
          ("TopP", "top_precision"), ("TopR", "top_recall"),
          ("clipped D", "clipped_density"), ("clipped C", "clipped_coverage"))
  head = ["generator", "point"] + [c for c, _ in cols]
  lines = []
  for name, rows in summaries.items():
    by_point = {r["point"]: r for r in rows}
    for point in KEY_POINTS:
      lines.append([name, point] + [report.mean_std_cell(by_point[point], m, 2)
                                    for _, m in cols])
  return report.markdown_table(head, lines)


def breaks_table(summaries) -> str:
  head = ["generator", "grid"] + list(BREAK_METRICS)
  lines = []
  for name, rows in summaries.items():
    for kind in ("per tensor", "per channel"):
      cells = [name, kind]
      for metric in BREAK_METRICS:
        b = breaks_at(rows, kind, metric)
        cells.append("—" if b is None else str(b))
      lines.append(cells)
  return report.markdown_table(head, lines)


def tradeoff_table(summaries) -> str:
  """At every bit-width where KNN precision or recall moved: which way each
  family moved, and FID as a multiple of the baseline's."""
  head = (["generator", "bits"] + [f"{name} ΔP / ΔR" for *_, name in FAMILIES]
          + ["FID ×", "reading"])
  lines = []
  for name, rows in summaries.items():
    fam = family(rows, "per tensor")
    base = fam[0]
    for r in fam[1:]:
      if not any(report.beyond_noise(r, base, m)
                 for m in ("knn_precision", "knn_recall")):
        continue
      delta = lambda m: r[m + "_mean"] - base[m + "_mean"]
      cells = [name, str(r["bits"])]
      for precision, recall, _ in FAMILIES:
        cells.append(f"{delta(precision):+.2f} / {delta(recall):+.2f}")
      cells.append(f"{r['fid_mean'] / base['fid_mean']:.1f}")
      p_kept = delta("knn_precision") > -TOLERANCE
      r_lost = delta("knn_recall") < -TOLERANCE
      reading = ("undefined (non-finite samples)" if math.isnan(
                     delta("knn_precision") + delta("knn_recall")) else
                 "precision kept, recall lost" if p_kept and r_lost else
                 "both lost" if r_lost else
                 "precision lost, recall kept" if not p_kept else "mixed")
      cells.append(reading)
      lines.append(cells)
  return report.markdown_table(head, lines)


def _errorbar(ax, xs, rows, metric, **kwargs):
  ax.errorbar(xs, [r[metric + "_mean"] for r in rows],
              yerr=[r[metric + "_std"] for r in rows], capsize=2, ms=3,
              marker="o", **kwargs)


def sweep_bits_figure(summaries, path):
  names = list(summaries)
  fig, axes = report.subplots(len(names), 3, figsize=(15, 3.2 * len(names)),
                           squeeze=False)
  for i, name in enumerate(names):
    for kind, style in (("per tensor", "-"), ("per channel", "--")):
      fam = family(summaries[name], kind)
      xs = [r["bits"] for r in fam]
      for ax, metrics in ((axes[i, 0], PRECISIONS), (axes[i, 1], RECALLS)):
        for j, (metric, label) in enumerate(metrics):
          _errorbar(ax, xs, fam, metric, linestyle=style, color=f"C{j}",
                    label=f"{label} ({kind})")
      _errorbar(axes[i, 2], xs, fam, "fid", linestyle=style, color="C4",
                label=f"FID ({kind})")
    for j, ax in enumerate(axes[i]):
      ax.set_xscale("log", base=2)
      ax.set_xticks([1, 2, 3, 4, 5, 6, 8, 16, 32])
      ax.set_xticklabels(["1", "2", "3", "4", "5", "6", "8", "16", "32"])
      ax.grid(alpha=0.3)
      ax.set_title(f"{name}: " + ("precision", "recall", "FID")[j],
                   fontsize=9)
      if j < 2:
        ax.set_ylim(-0.02, 1.05)
      else:
        ax.set_yscale("log")
      if i == len(names) - 1:
        ax.set_xlabel("bits (32: baseline)")
    if i == 0:
      for ax in axes[0]:
        ax.legend(fontsize=6, loc="lower right")
  fig.suptitle("Quantization sweeps: mean ± std over 3 seeds (solid: per "
               "tensor, dashed: per channel)", fontsize=11)
  fig.tight_layout(rect=(0, 0, 1, 0.98))
  return report.save_figure(fig, path)


def sweep_clip_prune_figure(summaries, path):
  names = list(summaries)
  fig, axes = report.subplots(len(names), 2, figsize=(11, 3.2 * len(names)),
                           squeeze=False)
  shown = (("knn_precision", "KNN P", "C0", "-"),
           ("knn_recall", "KNN R", "C0", "--"),
           ("lsh_knn_precision", "LSH+KNN P", "C1", "-"),
           ("lsh_knn_recall", "LSH+KNN R", "C1", "--"),
           ("lsh_precision", "LSH-only P", "C2", "-"),
           ("lsh_recall", "LSH-only R", "C2", "--"))
  for i, name in enumerate(names):
    rows = summaries[name]
    base = [r for r in rows if r["point"] == "baseline"]
    for ax, prefix, xlabel, value in (
        (axes[i, 0], "clip", "clipped at percentile of |w| (100: baseline)",
         lambda r: 100.0 if r["point"] == "baseline" else float(
             re.search(r"percentile=([\d.]+)", r["transform"]).group(1))),
        (axes[i, 1], "prune", "sparsity (0: baseline)",
         lambda r: 0.0 if r["point"] == "baseline" else float(
             re.search(r"sparsity=([\d.]+)", r["transform"]).group(1)))):
      fam = sorted(base + [r for r in rows if r["transform"].startswith(
          prefix)], key=value)
      for metric, label, color, style in shown:
        _errorbar(ax, [value(r) for r in fam], fam, metric, color=color,
                  linestyle=style, label=label)
      ax.set_title(f"{name}: {prefix}", fontsize=9)
      ax.set_ylim(-0.02, 1.05)
      ax.grid(alpha=0.3)
      ax.set_xlabel(xlabel, fontsize=8)
  axes[0, 0].legend(fontsize=6, loc="lower left")
  fig.suptitle("Clipping and pruning: mean ± std over 3 seeds", fontsize=11)
  fig.tight_layout(rect=(0, 0, 1, 0.98))
  return report.save_figure(fig, path)


def tradeoff_figure(summaries, path):
  names = list(summaries)
  fig, axes = report.subplots(1, len(names), figsize=(4 * len(names), 4.2),
                           squeeze=False)
  for ax, name in zip(axes[0], names):
    fam = family(summaries[name], "per tensor")
    for j, (prefix, label) in enumerate((("knn", "KNN"),
                                         ("lsh_knn", "LSH+KNN"),
                                         ("lsh", "LSH-only"))):
      xs = [r[prefix + "_recall_mean"] for r in fam]
      ys = [r[prefix + "_precision_mean"] for r in fam]
      ax.plot(xs, ys, "-o", ms=3, color=f"C{j}", label=label)
      for r, x, y in zip(fam, xs, ys):
        if r["bits"] in (32, 4, 3, 2, 1):
          ax.annotate(str(r["bits"]), (x, y), fontsize=7, color=f"C{j}",
                      xytext=(3, 3), textcoords="offset points")
    ax.set_xlim(-0.02, 1.05)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("recall")
    ax.set_title(name, fontsize=9)
    ax.grid(alpha=0.3)
  axes[0, 0].set_ylabel("precision")
  axes[0, 0].legend(fontsize=7, loc="lower left")
  fig.suptitle("Precision against recall as the bits fall (per tensor; "
               "labels: bits)", fontsize=11)
  fig.tight_layout(rect=(0, 0, 1, 0.95))
  return report.save_figure(fig, path)


def samples_figure(path):
  import jax  # pylint: disable=g-import-not-at-top
  from lsh_gan import compress  # pylint: disable=g-import-not-at-top
  from lsh_gan import data  # pylint: disable=g-import-not-at-top
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  fig, axes = report.subplots(len(GENERATORS), len(SAMPLE_BITS),
                           figsize=(2.6 * len(SAMPLE_BITS),
                                    2.7 * len(GENERATORS)), squeeze=False)
  for i, name in enumerate(GENERATORS):
    sample_fn, variables = pretrained.generator(name)
    dataset = pretrained.info(name)["dataset"]
    modes = (data.mixture_modes(dataset) if dataset in data.MIXTURES
             else None)
    if pretrained.is_conditional(name):  # 16 outlines evenly through its
      # test split (stored by class: every class)
      conditions = data.load(dataset, "test")["condition"]
      conditions = conditions[np.linspace(0, len(conditions) - 1, 16)
                              .astype(int)]
      translate_fn = sample_fn
      sample_fn = lambda v, key, num, c=conditions, t=translate_fn: t(v, c)
    for j, bits in enumerate(SAMPLE_BITS):
      v = variables if bits is None else compress.unpack(
          compress.parse(f"quantize(bits={bits})").pack(variables))
      num = 1000 if modes is not None else 16
      samples = np.asarray(sample_fn(v, jax.random.key(0), num))
      ax = axes[i, j]
      report.draw_samples(ax, samples, modes=modes, cols=4)
      if modes is not None and ax.get_legend():
        ax.get_legend().remove()
      ax.set_title(f"{name}\n{'baseline (32 bits)' if bits is None else f'{bits} bits'}",
                   fontsize=8)
  fig.suptitle("The same latents (pix2pix: the same outlines) through each "
               "generator, quantized per tensor", fontsize=11)
  fig.tight_layout(rect=(0, 0, 1, 0.98))
  return report.save_figure(fig, path)


FINETUNED = ("dcgan_mnist5k", "wgan_gp_mnist5k", "dcgan_digits",
             "dcgan_shapes")  # the generators of docs/finetune.md


def load_finetuned(docs: str) -> dict[str, list[dict]]:
  """docs/results/finetune_<generator>.csv (benchmarks/finetune_table.py):
  the fine-tuned points' summaries, numbers as floats."""
  import csv  # pylint: disable=g-import-not-at-top
  out = {}
  for name in FINETUNED:
    path = os.path.join(docs, "results", f"finetune_{name}.csv")
    if not os.path.exists(path):
      continue
    with open(path, newline="") as f:
      rows = list(csv.DictReader(f))
    for r in rows:
      for k, v in r.items():
        if k not in ("point", "transform"):
          r[k] = float(v) if v not in ("", None) else float("nan")
    out[name] = rows
  return out


def _post_training(rows):
  """A sweep's compressed points (not the baseline)."""
  return [r for r in rows if r["point"] != "baseline"]


def finetune_beside_table(summaries, finetuned) -> str:
  """Each fine-tuned point beside the best post-training point of the
  sweep at least as small (the highest KNN precision + recall among the
  points whose measured ratio is at least the fine-tuned one's)."""
  head = ["generator", "point of finetune.md (* no training)", "ratio", "KNN P", "KNN R",
          "LSH+KNN P / R", "LSH P / R", "FID", "best post-training point at "
          "least as small", "its ratio", "its KNN P", "its KNN R", "its FID"]
  lines = []
  for name, rows in finetuned.items():
    sweep = _post_training(summaries.get(name, []))
    for r in rows:
      if r["point"] == "baseline":
        continue
      small = [q for q in sweep
               if q["compression_ratio"] >= r["compression_ratio"]]
      best = max(small, key=lambda q: q["knn_precision_mean"] +
                 q["knn_recall_mean"], default=None)
      untrained = "*" if not r["finetune_s"] > 0 else ""
      cells = [name, r["point"] + untrained, f"{r['compression_ratio']:.1f}×",
               report.mean_std_cell(r, "knn_precision", 2),
               report.mean_std_cell(r, "knn_recall", 2),
               f"{r['lsh_knn_precision_mean']:.2f} / "
               f"{r['lsh_knn_recall_mean']:.2f}",
               f"{r['lsh_precision_mean']:.2f} / {r['lsh_recall_mean']:.2f}",
               f"{r['fid_mean']:.3g}"]
      if best is None:
        cells += ["none as small", "", "", "", ""]
      else:
        cells += [best["point"], f"{best['compression_ratio']:.1f}×",
                  report.mean_std_cell(best, "knn_precision", 2),
                  report.mean_std_cell(best, "knn_recall", 2),
                  f"{best['fid_mean']:.3g}"]
      lines.append(cells)
  return report.markdown_table(head, lines)


def finetune_beside_figure(summaries, finetuned, path):
  """KNN precision and recall against the measured compression ratio: the
  post-training sweep points (grey, by kind) and the fine-tuned points
  (coloured), per generator."""
  names = [n for n in finetuned if n in summaries]
  fig, axes = report.subplots(len(names), 2, figsize=(12, 3.4 * len(names)),
                              squeeze=False)
  kinds = ((r"quantize\(bits=\d+\)", "quantized per tensor", "o"),
           (r"quantize\(bits=\d+,axis=-1\)", "per channel", "s"),
           (r"clip\(.*", "clipped", "^"), (r"prune\(.*", "pruned", "v"))
  for i, name in enumerate(names):
    sweep = summaries[name]
    tuned = [r for r in finetuned[name] if r["point"] != "baseline"]
    for ax, metric in zip(axes[i], ("knn_precision", "knn_recall")):
      for pattern, label, marker in kinds:
        rows = [r for r in sweep if re.fullmatch(pattern, r["transform"])]
        ax.errorbar([r["compression_ratio"] for r in rows],
                    [r[metric + "_mean"] for r in rows],
                    yerr=[r[metric + "_std"] for r in rows], fmt=marker,
                    color="0.6", ms=4, capsize=2,
                    label=f"post-training: {label}")
      base = next(r for r in sweep if r["point"] == "baseline")
      ax.axhline(base[metric + "_mean"], color="0.3", lw=0.8, ls=":",
                 label="uncompressed")
      for j, r in enumerate(tuned):
        trained = r["finetune_s"] > 0  # else the start point, untrained
        ax.errorbar([r["compression_ratio"]], [r[metric + "_mean"]],
                    yerr=[r[metric + "_std"]], fmt="*" if trained else "D",
                    ms=9 if trained else 5, capsize=2, color=f"C{j % 10}",
                    label=r["point"] + ("" if trained else " (no training)"))
      ax.set_xscale("log")
      ax.set_ylim(-0.02, 1.02)
      ax.grid(alpha=0.3)
      ax.set_xlabel("compression ratio (measured, packed)")
      ax.set_title(f"{name}: {metric.replace('_', ' ')}", fontsize=9)
    axes[i, 1].legend(fontsize=5, loc="center left", bbox_to_anchor=(1, 0.5))
  fig.suptitle("Fine-tuned generators (stars; diamonds: their untrained "
               "start points) beside post-training compression (grey): mean "
               "± std over 3 seeds", fontsize=11)
  fig.tight_layout(rect=(0, 0, 1, 0.98))
  return report.save_figure(fig, path)


def cost_figure(fixed_m, equal_m, path):
  """Three rows per d: µs per sample scoring m = 1,000 samples against a
  built reference of n (cost_per_sample.py); µs per sample of a one-shot
  call on n real and n fake (metrics_bench.py); that call's peak memory."""
  dims = sorted({int(k.split(",")[2]) for k in fixed_m})
  fig, axes = report.subplots(3, len(dims), figsize=(6 * len(dims), 12),
                           squeeze=False)
  styles = {"exact": ("exact KNN", "C0"), "lsh_knn": ("LSH+KNN", "C1"),
            "lsh": ("LSH-only", "C2"), "prdc": ("prdc", "C3")}

  def series(results, method, dim, value):
    cells = sorted((int(k.split(",")[1]), c) for k, c in results.items()
                   if k.split(",")[0] == method and
                   int(k.split(",")[2]) == dim and "error" not in c)
    return [n for n, _ in cells], [value(n, c) for n, c in cells]

  for j, dim in enumerate(dims):
    for method, (label, color) in styles.items():
      ns, ys = series(fixed_m, method, dim,
                      lambda n, c: c["query_us_per_sample"])
      if ns:
        axes[0, j].plot(ns, ys, "-o", ms=3, color=color, label=label)
      if method == "lsh":
        ns, ys = series(fixed_m, method, dim,
                        lambda n, c: c["precision_us_per_sample"])
        axes[0, j].plot(ns, ys, ":o", ms=3, color=color,
                        label="LSH-only, precision alone")
      ns, ys = series(equal_m, method, dim,
                      lambda n, c: c["seconds"] / n * 1e6)
      if ns:
        axes[1, j].plot(ns, ys, "-o", ms=3, color=color, label=label)
        _, gb = series(equal_m, method, dim, lambda n, c: c["peak_gb"])
        axes[2, j].plot(ns, gb, "-o", ms=3, color=color, label=label)
    titles = (f"d = {dim}: scoring 1,000 samples against a built reference "
              "of n", f"d = {dim}: one call on n real and n fake samples",
              f"d = {dim}: peak memory of that call")
    ylabels = ("µs per evaluated sample", "µs per evaluated sample",
               "GB beyond the inputs")
    for i in range(3):
      ax = axes[i, j]
      ax.set_xscale("log")
      ax.set_yscale("log")
      ax.grid(alpha=0.3, which="both")
      ax.set_xlabel("reference samples n")
      ax.set_ylabel(ylabels[i])
      ax.set_title(titles[i], fontsize=9)
      ax.legend(fontsize=7)
  fig.suptitle("Cost per evaluated sample on the 2-core CPU", fontsize=11)
  fig.tight_layout(rect=(0, 0, 1, 0.98))
  return report.save_figure(fig, path)


def per_sample_table(equal_m) -> str:
  """Markdown: µs per evaluated sample of one call on n real and n fake
  (metrics_bench.py)."""
  methods = (("exact", "exact KNN"), ("lsh_knn", "LSH+KNN"),
             ("lsh", "LSH-only"), ("prdc", "prdc"))
  keys = {tuple(int(v) for v in k.split(",")[1:]) for k in equal_m}
  head = ["n", "d"] + [name for _, name in methods]
  lines = []
  for n, dim in sorted(keys, key=lambda nd: (nd[1], nd[0])):
    cells = []
    for method, _ in methods:
      c = equal_m.get(f"{method},{n},{dim}", {})
      cells.append(f"{c['seconds'] / n * 1e6:,.0f}" if "seconds" in c
                   else "—")
    lines.append([f"{n:,}", str(dim), *cells])
  return report.markdown_table(head, lines)


def main(argv):
  del argv
  figures = os.path.join(_DOCS.value, "figures")
  summaries = load_summaries(_RUNS.value)
  if summaries:
    os.makedirs(os.path.join(_DOCS.value, "results"), exist_ok=True)
    for name, rows in summaries.items():
      keys = [k for k in rows[0] if k != "transform"]
      _files.write_csv(os.path.join(_DOCS.value, "results", f"{name}.csv"),
                       rows, ["transform"] + keys)
      print(sweep_table(name, rows), "\n")
    print("Key points:\n")
    print(key_points_table(summaries), "\n")
    print("The robust peers at the key points:\n")
    print(peers_table(summaries), "\n")
    print("Breaks at (bits):\n")
    print(breaks_table(summaries), "\n")
    print("Which way the metrics move where KNN moved (per tensor):\n")
    print(tradeoff_table(summaries), "\n")
    print(sweep_bits_figure(summaries, os.path.join(figures,
                                                    "sweep_bits.png")))
    print(sweep_clip_prune_figure(summaries, os.path.join(
        figures, "sweep_clip_prune.png")))
    print(tradeoff_figure(summaries, os.path.join(figures, "tradeoff.png")))
    finetuned = load_finetuned(_DOCS.value)
    if finetuned:
      print("Fine-tuned points beside post-training ones:\n")
      print(finetune_beside_table(summaries, finetuned), "\n")
      print(finetune_beside_figure(summaries, finetuned, os.path.join(
          figures, "finetune_beside.png")))
  else:
    print(f"No sweep summaries under {_RUNS.value}/<generator>/summary.json: "
          "run `bash benchmarks/results_sweeps.sh` first (the sweep tables "
          "and figures are skipped).", file=sys.stderr)
  missing = [p for p in (_COST.value, _BENCH.value) if not os.path.exists(p)]
  if missing:
    print(f"Not found: {', '.join(missing)} (cost_per_sample.py and "
          "metrics_bench.py write them); the cost figure is skipped.",
          file=sys.stderr)
  else:
    with open(_COST.value) as f, open(_BENCH.value) as g:
      fixed_m, equal_m = json.load(f), json.load(g)
    print("One call on n real and n fake, µs per evaluated sample:\n")
    print(per_sample_table(equal_m), "\n")
    print(cost_figure(fixed_m, equal_m,
                      os.path.join(figures, "cost_per_sample.png")))
  if _SAMPLES.value:
    print(samples_figure(os.path.join(figures, "samples_bits.png")))


if __name__ == "__main__":
  app.run(main)
