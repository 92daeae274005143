"""Exact mode coverage and KNN precision/recall of the shapes DCGAN under
compression (the table of docs/embedders.md, section 4).

Run from the repository root (about 2 minutes on 2 cores):

  python benchmarks/shapes_coverage.py

For the held-out real images and for each compression point, 5,000 samples
(key 0) of the committed `dcgan_shapes`: KNN precision and recall (k = 3)
against 5,000 training images in the shapes embedding, and
`train.mode_coverage` (clear instances, modes covered of 96, the mode
histogram's total variation from uniform, factor values covered).
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

POINTS = ("baseline", "quantize(bits=8)", "quantize(bits=6)",
          "quantize(bits=4)", "quantize(bits=3)", "quantize(bits=2)",
          "quantize(bits=1)", "clip(percentile=99)", "prune(sparsity=0.5)",
          "prune(sparsity=0.8)")


def rows(data_dir: str, num: int = 5000):
  import jax  # pylint: disable=g-import-not-at-top
  from lsh_gan import compress  # pylint: disable=g-import-not-at-top
  from lsh_gan import data  # pylint: disable=g-import-not-at-top
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  from lsh_gan import train  # pylint: disable=g-import-not-at-top
  sample_fn, variables = pretrained.generator("dcgan_shapes")
  embed_fn, params = pretrained.embedder("shapes")
  embed = lambda x: pretrained.embed_all(embed_fn, params, x)
  real = data.images("shapes", "train", data_dir=data_dir)
  ref = metrics.Reference(embed(real[np.random.default_rng(0).choice(
      real.shape[0], num, replace=False)]))
  test = data.images("shapes", "test", data_dir=data_dir)
  out = [(f"held-out real ({test.shape[0]:,})", train.mode_coverage(test),
          ref.knn_precision_recall(embed(test)))]
  for point in POINTS:
    v = variables if point == "baseline" else compress.parse(point)(variables)
    samples = np.asarray(sample_fn(v, jax.random.key(0), num))
    out.append((point, train.mode_coverage(samples),
                ref.knn_precision_recall(embed(samples))))
  return out


def table(results) -> str:
  lines = ["| samples | KNN precision | KNN recall | clear instances | modes "
           "covered (of 96) | mode TV | shapes / colours / sizes / positions "
           "covered |", "|---|---|---|---|---|---|---|"]
  for name, c, p in results:
    lines.append(
        f"| {name} | {p['precision']:.3f} | {p['recall']:.3f} | "
        f"{c['high_quality']:.3f} | {c['modes_covered']} | "
        f"{c['mode_tv']:.3f} | {c['shape_covered']} / {c['colour_covered']}"
        f" / {c['size_covered']} / {c['position_covered']} |")
  return "\n".join(lines)


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  with tempfile.TemporaryDirectory() as folder:
    print(table(rows(folder)))
