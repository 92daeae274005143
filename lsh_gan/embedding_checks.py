"""Known-truth checks of an embedding: does it tell digits from non-digits?

Every metric is a distance in an embedding, so the embedding must put
images that are not digits far from the digits. With exact KNN precision
and recall (k = 3) against the dataset's train split:

  heldout        the test split: real digits never trained on. Precision
                 and recall >= HELDOUT_MIN[dataset] (0.8 mnist5k, 0.7
                 digits).
  broken kinds   images that are not digits, one set of the test split's
                 size each: precision <= BROKEN_MAX (0.2).
                   noise   uniform noise in [-1, 1]
                   blank   every pixel -1 (the background)
                   <generator>@2bit, <generator>@1bit
                           samples of each committed generator of the
                           dataset, quantized to 2 and 1 bits per tensor
                           (the checkerboard and blank images a broken
                           compression makes)
  mixed          the held-out set with a random 20% replaced by one broken
                 kind: precision within MIXED_TOLERANCE (0.05) of 0.8 x the
                 held-out precision, for every kind.

`UNSEEN` kinds (inverted, pixel-shuffled, smooth noise, a checkerboard,
stripes, white, sparse dots, blurred and half-erased digits) are scored the
same way: none of them, nor any broken kind, is in an embedder's training
data (real digits only), so they measure how the embedding generalises.

  result = embedding_checks.run("mnist5k")        # the committed embedder
  embedding_checks.failures(result, "mnist5k")    # [] when every check holds
  print(embedding_checks.table({"mnist5k": ("mnist5k", result)}))
"""

from __future__ import annotations

import numpy as np

HELDOUT_MIN = {"mnist5k": 0.8, "digits": 0.7}
BROKEN_MAX = 0.2
MIXED_FRACTION = 0.2
MIXED_TOLERANCE = 0.05
K = 3
UNSEEN = ("inverted", "shuffled", "smooth_noise", "checkerboard", "stripes",
          "white", "sparse_dots", "blurred", "half_erased")


def broken_images(dataset: str, like: np.ndarray, seed: int = 0
                  ) -> dict[str, np.ndarray]:
  """{kind: images} of the broken kinds, each shaped like `like`."""
  import jax  # pylint: disable=g-import-not-at-top
  from lsh_gan import compress  # pylint: disable=g-import-not-at-top
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  out = {"noise": rng.uniform(-1, 1, like.shape).astype(np.float32),
         "blank": np.full(like.shape, -1.0, np.float32)}
  for name in pretrained.generators():
    if pretrained.info(name)["dataset"] != dataset:
      continue
    sample_fn, variables = pretrained.generator(name)
    for bits in (2, 1):
      out[f"{name}@{bits}bit"] = np.asarray(sample_fn(
          compress.quantize(bits)(variables), jax.random.key(seed),
          like.shape[0]))
  return out


def unseen_images(images: np.ndarray, seed: int = 0
                  ) -> dict[str, np.ndarray]:
  """{kind: images} of the UNSEEN kinds, made from (or shaped like) the
  real `images`."""
  import jax  # pylint: disable=g-import-not-at-top
  n, h, w, c = images.shape
  rng = np.random.default_rng(seed + 1)
  rows, cols = np.mgrid[:h, :w]
  coarse = rng.uniform(-1, 1, (n, max(h // 7, 2), max(w // 7, 2), c))
  frequency = rng.uniform(0.2, 1.5, (n, 1, 1, 1))
  phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 1))
  small = jax.image.resize(images, (n, max(h // 4, 1), max(w // 4, 1), c),
                           "linear")
  out = {
      "inverted": -images,
      "shuffled": rng.permuted(images.reshape(n, -1), axis=1).reshape(
          images.shape),
      "smooth_noise": np.asarray(jax.image.resize(coarse, images.shape,
                                                  "linear")),
      "checkerboard": np.broadcast_to(
          np.where((rows + cols) % 2, 1.0, -1.0)[None, :, :, None],
          images.shape),
      "stripes": np.broadcast_to(
          np.sin(frequency * cols[None, :, :, None] + phase), images.shape),
      "white": np.ones(images.shape),
      "sparse_dots": np.where(rng.uniform(size=images.shape) < 0.05, 1.0,
                              -1.0),
      "blurred": np.asarray(jax.image.resize(small, images.shape, "linear")),
      "half_erased": np.where(cols[None, :, :, None] < w // 2, images, -1.0),
  }
  return {k: np.asarray(v, np.float32) for k, v in out.items()}


def run(dataset: str, embed=None, *, data_dir: str | None = None,
        seed: int = 0) -> dict:
  """The checks of `embed` (images -> (n, d) features; None: the committed
  embedder of `dataset`).

  Returns:
    {"heldout": {"precision", "recall"}, "broken": {kind: precision},
     "unseen": {kind: precision}, "mixed": {kind: precision},
     "mixed_target": 0.8 x held-out precision}.

  Raises:
    ValueError: a dataset without held-out digits to check against (the
      valid ones are listed).
  """
  from lsh_gan import data  # pylint: disable=g-import-not-at-top
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  if dataset not in HELDOUT_MIN:
    raise ValueError(f"dataset={dataset!r} has no known-truth checks; they "
                     f"exist for {', '.join(HELDOUT_MIN)}")
  if embed is None:
    embed_fn, params = pretrained.embedder(dataset)
    embed = lambda x: pretrained.embed_all(embed_fn, params, x)
  train = data.images(dataset, "train", data_dir=data_dir)
  test = data.images(dataset, "test", data_dir=data_dir)
  ref = metrics.Reference(embed(train))
  held = embed(test)
  heldout = ref.knn_precision_recall(held, k=K)
  rng = np.random.default_rng(seed + 2)
  replaced = np.zeros(held.shape[0], bool)
  replaced[rng.choice(held.shape[0], round(MIXED_FRACTION * held.shape[0]),
                      replace=False)] = True
  out = {"heldout": {k: float(v) for k, v in heldout.items()},
         "broken": {}, "unseen": {}, "mixed": {},
         "mixed_target": (1 - MIXED_FRACTION) * float(heldout["precision"])}
  for group, kinds in (("broken", broken_images(dataset, test, seed)),
                       ("unseen", unseen_images(test, seed))):
    for kind, images in kinds.items():
      fake = embed(images)
      out[group][kind] = float(ref.knn_precision_recall(fake, k=K)[
          "precision"])
      if group == "broken":
        mixed = np.where(replaced[:, None], fake, held)
        out["mixed"][kind] = float(ref.knn_precision_recall(mixed, k=K)[
            "precision"])
  return out


def failures(result: dict, dataset: str) -> list[str]:
  """The checks `result` (of `run`) fails, in words; [] if none."""
  bad = []
  floor = HELDOUT_MIN[dataset]
  for side, value in result["heldout"].items():
    if value < floor:
      bad.append(f"held-out {side} {value:.3f} < {floor}")
  for group in ("broken", "unseen"):
    for kind, value in result[group].items():
      if value > BROKEN_MAX:
        bad.append(f"{kind} precision {value:.3f} > {BROKEN_MAX}")
  for kind, value in result["mixed"].items():
    if abs(value - result["mixed_target"]) > MIXED_TOLERANCE:
      bad.append(f"20% {kind}: precision {value:.3f}, not within "
                 f"{MIXED_TOLERANCE} of {result['mixed_target']:.3f}")
  return bad


def table(results: dict) -> str:
  """Markdown, one row per (embedder, check): {label: (dataset, result)}."""
  lines = ["| embedder | check | precision | recall | bound |",
           "|---|---|---|---|---|"]
  for label, (dataset, result) in results.items():
    h = result["heldout"]
    lines.append(f"| {label} | held-out | {h['precision']:.3f} | "
                 f"{h['recall']:.3f} | >= {HELDOUT_MIN[dataset]} |")
    for group in ("broken", "unseen"):
      for kind, value in result[group].items():
        lines.append(f"| {label} | {kind}{' (unseen)' * (group == 'unseen')}"
                     f" | {value:.3f} | | <= {BROKEN_MAX} |")
    for kind, value in result["mixed"].items():
      lines.append(f"| {label} | held-out, 20% {kind} | {value:.3f} | | "
                   f"{result['mixed_target']:.3f} ± {MIXED_TOLERANCE} |")
    lines.append(f"| {label} | **fails** | "
                 f"{len(failures(result, dataset))} | | |")
  return "\n".join(lines)
