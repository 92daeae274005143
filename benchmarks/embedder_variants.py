"""What each embedder variant gives on the known-truth checks.

Run from the repository root (about 6 minutes on 2 cores; trainings are
kept in --workdir and reused when run again):

  python benchmarks/embedder_variants.py
  python benchmarks/embedder_variants.py --datasets=digits

Each training variant is a classifier trained on the train split only (real
digits; no broken image, noise or generated sample), read out four ways:

  penultimate       the penultimate layer's activations (the embedding
                    before this change)
  penultimate/unit  the same, scaled to unit length
  layers            each convolution's mean activations and the penultimate
                    layer, concatenated as they are
  multilayer        the same blocks, each scaled to unit length (the
                    committed embedders' readout)

and scored with `lsh_gan.embedding_checks` (exact KNN, k = 3, against the
train split): held-out precision and recall, the largest precision of a
broken kind and of an unseen kind, and the largest distance of a 20%-mixed
set from its target. A row passes when every check holds.
"""

from __future__ import annotations

import os
import sys
import tempfile

# (name, features, embed_dim, augment_shift, steps) per dataset; the
# committed config is marked.
VARIANTS = {
    "mnist5k": [
        ("shift 2 (before)", (32, 64, 64), 128, 2, 2000),
        ("shift 1 (committed)", (32, 64, 64), 128, 1, 2000),
        ("shift 0", (32, 64, 64), 128, 0, 2000),
    ],
    "digits": [
        ("32,64 / 64, shift 1 (before)", (32, 64), 64, 1, 3000),
        ("64,128 / 128, shift 1", (64, 128), 128, 1, 3000),
        ("64,128 / 32, shift 1", (64, 128), 32, 1, 3000),
        ("64,128 / 32, shift 0 (committed)", (64, 128), 32, 0, 3000),
    ],
}
READOUTS = ("penultimate", "penultimate/unit", "layers", "multilayer")


def _readout(model, params, readout: str):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top

  def features(p, x):
    pooled, hidden = model.apply(p, x, method=type(model)._layers)
    unit = lambda v: v / jnp.maximum(jnp.linalg.norm(v, axis=-1,
                                                     keepdims=True), 1e-12)
    if readout == "penultimate":
      return hidden
    if readout == "penultimate/unit":
      return unit(hidden)
    if readout == "layers":
      return jnp.concatenate(pooled + [hidden], -1)
    return jnp.concatenate([unit(v) for v in pooled + [hidden]], -1)
  jitted = jax.jit(features)
  return lambda x: pretrained.embed_all(jitted, params, x)


def run(datasets, workdir: str, data_dir: str) -> list[dict]:
  import ml_collections  # pylint: disable=g-import-not-at-top
  from lsh_gan import embedding_checks  # pylint: disable=g-import-not-at-top
  from lsh_gan import models  # pylint: disable=g-import-not-at-top
  from lsh_gan import train  # pylint: disable=g-import-not-at-top
  rows = []
  for dataset in datasets:
    for name, features, embed_dim, shift, steps in VARIANTS[dataset]:
      config = ml_collections.ConfigDict(dict(
          architecture="classifier", dataset=dataset, data_dir=data_dir,
          features=features,
          embed_dim=embed_dim, num_classes=10, batch_size=64, steps=steps,
          augment_shift=shift, learning_rate=1e-3, seed=0, log_every=1000,
          checkpoint_every=steps))
      slug = "".join(c if c.isalnum() else "_" for c in name)
      trained = train.train_classifier(
          config, os.path.join(workdir, f"{dataset}_{slug}"))
      model = models.build(config)
      for readout in READOUTS:
        result = embedding_checks.run(
            dataset, _readout(model, trained["params"], readout),
            data_dir=data_dir)
        rows.append({
            "dataset": dataset, "variant": name, "readout": readout,
            "accuracy": trained["test_accuracy"],
            "precision": result["heldout"]["precision"],
            "recall": result["heldout"]["recall"],
            "broken": max(result["broken"].values()),
            "worst_broken": max(result["broken"], key=result["broken"].get),
            "unseen": max(result["unseen"].values()),
            "worst_unseen": max(result["unseen"], key=result["unseen"].get),
            "mixed": max(abs(v - result["mixed_target"])
                         for v in result["mixed"].values()),
            "fails": len(embedding_checks.failures(result, dataset))})
        print(rows[-1], flush=True)
  return rows


def table(rows) -> str:
  lines = ["| dataset | training | readout | test acc. | held-out P | "
           "held-out R | max P, broken | max P, unseen | max mixed error | "
           "checks failed |", "|" + "---|" * 10]
  for r in rows:
    lines.append(
        f"| {r['dataset']} | {r['variant']} | {r['readout']} | "
        f"{r['accuracy']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | "
        f"{r['broken']:.3f} ({r['worst_broken']}) | {r['unseen']:.3f} "
        f"({r['worst_unseen']}) | {r['mixed']:.3f} | {r['fails']} |")
  return "\n".join(lines)


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  del argv
  with tempfile.TemporaryDirectory() as data_dir:
    rows = run(flags.FLAGS.datasets, flags.FLAGS.workdir, data_dir)
  print(table(rows))


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_list("datasets", ["mnist5k", "digits"], "datasets")
  flags.DEFINE_string("workdir", os.path.join(tempfile.gettempdir(),
                                              "lsh_gan_embedder_variants"),
                      "trainings are kept (and resumed) here")
  app.run(main)
