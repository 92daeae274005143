"""The main job: generation -> embedding -> scoring over a compression sweep.

  from lsh_gan import pipeline
  rows = pipeline.run(config, workdir)      # config: configs/sweep_*.py

For one experiment config, `run`
1. checks the config (every field, before any work);
2. loads the reference split and embeds it once; builds one
   `metrics.Reference`, so the real side of every metric (k-NN radii, LSH
   projections and tables, Gaussian statistics) is computed once per run;
3. restores the pre-trained generator, and for each sweep point (the
   uncompressed baseline first, then each transform string): compresses the
   variables, generates `num_samples` samples from the same latents (the
   same key), embeds them and scores them with every metric;
4. writes the row to results.json and results.csv (atomically) before the
   next point, and draws a sample grid for it;
5. draws the plots and prints the summary table.

Started again with the same workdir, it computes only the points that are
not in results.json yet (points may be added to a finished sweep), and
restores any missing output of a finished point (its sample grid) without
recomputing its numbers. A workdir holding results of a different experiment
(any field other than the points) is refused, never mixed; a damaged
results.json is refused with its path and nothing is rewritten. One run at
a time holds a workdir: a second run on it waits for the first, then
computes only what is still missing. Everything is written through a
temporary file and a rename, so a kill at any moment loses at most the
point being computed (see docs/reliability.md).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import re
import time
import warnings
from typing import Any

import contextlib

import jax
import ml_collections
import numpy as np

from lsh_gan import _data_parallel
from lsh_gan import _files
from lsh_gan import compress
from lsh_gan import data
from lsh_gan import finetune
from lsh_gan import metrics
from lsh_gan import pretrained
from lsh_gan import report

BASELINE = "baseline"
# Every metric column, in the order of the tables.
METRICS = ("knn_precision", "knn_recall", "density", "coverage",
           "lsh_precision", "lsh_recall", "lsh_knn_precision",
           "lsh_knn_recall", "p_precision", "p_recall", "top_precision",
           "top_recall", "clipped_density", "clipped_coverage", "fid", "kid")
# The robust peers (`lsh_gan.metrics.robust`), by column prefix: Reference
# method, and whether it takes the sweep's seed.
PEERS = {"p": ("probabilistic_precision_recall", False),
         "top": ("top_precision_recall", True),
         "clipped": ("clipped_density_coverage", False)}
# A conditional generator's rows also score each output against its own
# target and input (`lsh_gan.metrics.paired`); blank for the others.
PAIRED_METRICS = ("l1", "psnr", "ssim", "edge_f1")
COLUMNS = ("point", "transform", "bits", "stored_bytes", "compression_ratio",
           "macs", "params", *METRICS, *PAIRED_METRICS, "finetune_s",
           "compress_s", "generate_s", "generate_1000_s", "embed_s",
           "score_s", "notes")
# Columns added after rows were first saved, or only some rows have: a
# resumed sweep's older rows may lack them (blank in results.csv).
LATER_COLUMNS = ("notes", "macs", "params", "finetune_s", "generate_1000_s",
                 *PAIRED_METRICS, *(m for m in METRICS
                                    if m.split("_")[0] in PEERS))
# Fields that only choose sweep points: changing them keeps the results.
POINT_FIELDS = ("points", "add_points")
# Fields that decide no number: a workdir's results stay valid when they
# change (the Inception weights' path: their content's fingerprint is in
# the experiment instead; the mesh: one device or many give the same
# numbers; the config's kind, which only tells the launcher what it is).
DISPLAY_FIELDS = ("grid_samples", "inception_weights", "mesh", "kind")
EMBED_BATCH = 500

# Progress lines; the launcher prints them plainly, library users see them
# only if they configure logging.
log = logging.getLogger(__name__)


def split_points(text: str) -> list[str]:
  """A ';'-separated list of transform strings (blank parts dropped)."""
  return [p.strip() for p in (text or "").split(";") if p.strip()]


def sweep(config: ml_collections.ConfigDict) -> list[tuple[str, Any]]:
  """[(point name, transform or recipe)]: the baseline, then the config's
  points in canonical string form, without repeats. A point is a transform
  string (post-training) or a fine-tuned one (`lsh_gan.finetune.Recipe`:
  "prune(sparsity=0.8) >> discriminator_supervised(steps=2000)",
  "distill(width=16, steps=3000)")."""
  out = [(BASELINE, compress.identity())]
  seen = {BASELINE}
  for field in POINT_FIELDS:
    for spec in split_points(config.get(field, "")):
      try:
        point = parse_point(spec)
      except ValueError as err:
        raise ValueError(f"config.{field}: {err}") from None
      if not isinstance(point, finetune.Recipe) and (
          not point.representable()):
        # Rows are keyed by the string: it must tell points apart.
        raise ValueError(f"config.{field}: {spec!r} gives {point}, "
                         "which has no string form to name its row by")
      name = str(point)
      if name not in seen:
        seen.add(name)
        out.append((name, point))
  return out


def parse_point(spec: str):
  """A sweep point's string as what it runs: a `finetune.Recipe` for a
  fine-tuned point, else a `compress.Transform` (the baseline's string,
  "identity", included). ValueError for a string that is neither."""
  return finetune.parse_recipe(spec) or compress.parse(spec)


def bits_of(transform, params) -> int:
  """The fewest bits per stored weight code once `transform` (a Transform or
  its string) packs `params`: read from what `pack` stores
  (`compress.report`), not from the transform's string; 32 where no leaf is
  stored quantized."""
  transform = compress.parse(transform)
  return compress.report(params, transform.pack(params)).fewest_bits or 32


def _positive_int(config, field: str, minimum: int = 1) -> int:
  value = config.get(field)
  if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
    raise ValueError(f"config.{field}={value!r} must be an integer >= "
                     f"{minimum}")
  return value


def check(config: ml_collections.ConfigDict, workdir: str | None = None):
  """Rejects a bad config (and an unwritable workdir) before any work.

  Raises:
    ValueError: naming the field and what is wrong with it.
  """
  generators = pretrained.generators()
  if config.get("generator") not in generators:
    raise ValueError(f"config.generator={config.get('generator')!r} is not a "
                     f"pre-trained generator; valid ones: "
                     f"{', '.join(generators)}")
  dataset = pretrained.info(config.generator)["dataset"]
  if config.get("dataset", dataset) != dataset:
    raise ValueError(f"config.dataset={config.dataset!r}: the generator "
                     f"{config.generator!r} was trained on {dataset!r}")
  if config.get("data_dir") is not None:
    try:
      data.checked_data_dir(config.data_dir)
    except ValueError as err:
      raise ValueError(f"config.{err}") from None
  if config.get("split", "train") not in ("train", "test"):
    raise ValueError(f"config.split={config.split!r} must be 'train' or "
                     "'test'")
  k = _positive_int(config, "k")
  density_k = _positive_int(config, "density_k")
  _positive_int(config, "num_samples", max(k, density_k) + 1)
  if config.get("num_reference") is not None:
    _positive_int(config, "num_reference", max(k, density_k) + 1)
  _positive_int(config, "seed", 0)
  _positive_int(config, "grid_samples", 0)
  for field in ("lsh_tables", "lsh_hashes", "lsh_knn_tables"):
    _positive_int(config, field)
  if config.get("embedder") not in (None,) + EMBEDDERS:
    raise ValueError(f"config.embedder={config.embedder!r} must be one of "
                     f"{', '.join(EMBEDDERS)} (or None: 'dataset')")
  if config.get("embedder") == "inception_v3":
    if dataset in data.MIXTURES:
      raise ValueError(f"config.embedder='inception_v3' embeds images; "
                       f"{dataset!r} holds 2-D points")
    try:  # the weights file exists and is the FID Inception's
      pretrained.inception_v3(config.get("inception_weights"))
    except ValueError as err:
      raise ValueError(f"config.inception_weights: {err}") from None
  mesh = _mesh(config)
  conditional = pretrained.is_conditional(config.generator)
  if conditional:  # its samples are the split's conditions: enough of them?
    _pairs(config, dataset)
  if not conditional and mesh is not None and (
      config.num_samples % mesh.devices.size):
    raise ValueError(
        f"config.num_samples={config.num_samples} must be a multiple of the "
        f"{mesh.devices.size} devices of the mesh (config.mesh.devices), so "
        "that every device makes as many samples")
  for name, point in sweep(config):
    if isinstance(point, finetune.Recipe):
      try:
        point.check(config.generator)
      except ValueError as err:
        raise ValueError(f"config.points: {name}: {err}") from None
  if workdir is not None:
    _check_workdir(workdir, config)


def _mesh(config: ml_collections.ConfigDict):
  """The config's mesh (`config.mesh.devices`: -1 all devices, the
  default), or None for one device."""
  section = config.get("mesh")
  devices = None if section is None else section.get("devices", -1)
  return _data_parallel.mesh(devices)


def _check_workdir(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Every folder the run writes to can be written, before any work."""
  if not isinstance(workdir, str) or not workdir:
    raise ValueError(f"workdir={workdir!r} must be a folder path")
  _files.check_writable(workdir, "workdir")
  if config.get("grid_samples"):
    _files.check_writable(os.path.join(workdir, "samples"),
                          "the sample grids' folder")


# The version of the code's numbers: raised whenever a change makes an
# unchanged config give other numbers (2: KID in homogeneous terms, LSH
# widths with a float32 noise floor; 3: LSH-only's occupancy width and
# calibrated coverage, LSH+KNN's queries against the real tables; 4: the
# multilayer embedders and their fingerprints), so
# that a workdir never mixes rows computed by two versions.
NUMBERS_VERSION = 4
EMBEDDERS = ("dataset", "inception_v3")


def embedder(config: ml_collections.ConfigDict, dataset: str):
  """(embed_fn, params, batch) of the config's `embedder`: "dataset" (or
  None: the committed embedder of the generator's dataset) or
  "inception_v3" (the FID Inception-v3, weights from
  `config.inception_weights` or $LSH_GAN_INCEPTION_WEIGHTS)."""
  if config.get("embedder") == "inception_v3":
    return (*pretrained.inception_v3(config.get("inception_weights")),
            pretrained.INCEPTION_BATCH)
  return (*pretrained.embedder(dataset), EMBED_BATCH)


def _embedder_fingerprint(config: ml_collections.ConfigDict) -> str:
  if config.get("embedder") == "inception_v3":
    return "inception_v3:" + pretrained.inception_fingerprint(
        config.get("inception_weights"))
  dataset = pretrained.info(config.generator)["dataset"]
  if dataset in data.MIXTURES:
    return "identity"
  return pretrained.fingerprint(
      f"embedder_{data.SAME_IMAGES.get(dataset, dataset)}")


def experiment(config: ml_collections.ConfigDict) -> dict:
  """What decides the numbers: the config's fields (all but the points and
  the sample grids' size), the code's `NUMBERS_VERSION`, and the
  fingerprints of the generator's and the embedder's parameters (a model
  retrained under the same name gives other numbers)."""
  fields = {k: v for k, v in config.to_dict().items()
            if k not in POINT_FIELDS + DISPLAY_FIELDS}
  fields["numbers_version"] = NUMBERS_VERSION
  fields["generator_fingerprint"] = pretrained.fingerprint(config.generator)
  fields["embedder_fingerprint"] = _embedder_fingerprint(config)
  return dict(sorted(fields.items()))


# What a saved row must hold to be reused.
_ROW_KEYS = tuple(c for c in COLUMNS if c not in LATER_COLUMNS)


def load_results(workdir: str, config: ml_collections.ConfigDict) -> list:
  """Rows already computed in workdir for this experiment ([] if none).

  Raises:
    ValueError: the workdir holds results of a different experiment (the
      message lists the fields that differ).
    lsh_gan._files.DamagedFileError (a ValueError): results.json is empty,
      truncated, not JSON, or lacks what a sweep writes; the message names
      the file and what to do. Nothing is rewritten.
  """
  path = os.path.join(workdir, "results.json")
  if not os.path.exists(path):
    return []
  remedy = (f"nothing in {workdir} was changed. Restore the file from a "
            "copy, or move it away to compute every point again")
  saved = _files.read_json(path, "a sweep's results", remedy)

  def damaged(what):
    return _files.DamagedFileError(f"{path} is damaged: {what}; {remedy}")

  if not isinstance(saved, dict) or not isinstance(
      saved.get("experiment"), dict) or not isinstance(saved.get("rows"),
                                                       list):
    raise damaged("it lacks the 'experiment' object or the 'rows' list")
  for i, row in enumerate(saved["rows"]):
    if not isinstance(row, dict):
      raise damaged(f"row {i} is not an object")
    missing = [k for k in _ROW_KEYS if k not in row]
    if missing:
      raise damaged(f"row {i} ({row.get('point', '?')}) lacks "
                    f"{', '.join(missing)}")
  mine = json.loads(json.dumps(experiment(config)))
  theirs = saved["experiment"]
  if theirs != mine:
    fields = sorted(k for k in set(mine) | set(theirs)
                    if mine.get(k) != theirs.get(k))
    diffs = ", ".join(f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} now"
                      for k in fields)
    why = (" (its rows were computed by a version of lsh_gan whose metrics "
           "give other numbers)" if "numbers_version" in fields else "")
    raise ValueError(
        f"workdir={workdir!r} holds results of a different experiment "
        f"({diffs}){why}; use another --workdir, or delete its results to "
        "start again")
  return saved["rows"]


def save_results(workdir: str, config: ml_collections.ConfigDict,
                 rows: list[dict]) -> None:
  """results.json (experiment, config, rows) and results.csv, atomically."""
  _files.write_json(os.path.join(workdir, "results.json"),
                    {"experiment": experiment(config),
                     "config": config.to_dict(), "rows": rows})
  _files.write_csv(os.path.join(workdir, "results.csv"), rows, COLUMNS)


def _peer_scores(ref, fake, seed: int) -> tuple[dict, list[str]]:
  """The robust peers' columns of a validated fake set, and notes: a peer
  that cannot score the set (a collapsed set without radius or bandwidth,
  or fewer samples than TopP&R's bandwidth needs) reads NaN, and says why
  in the notes rather than stopping the sweep."""
  out, notes = {}, []
  for prefix, (method, seeded) in PEERS.items():
    keys = [m for m in METRICS if m.split("_")[0] == prefix]
    try:
      values = list(getattr(ref, method)(
          fake, **({"seed": seed} if seeded else {})).values())
    except ValueError as err:  # the set was validated: it is degenerate
      values = [math.nan] * len(keys)
      notes.append(f"{prefix}: {err}")
    out.update(zip(keys, values))
  return out, notes


class ConditionalSampler:
  """A conditional generator's translate_fn as a sweep's sample_fn:
  `sample_fn(variables, key, num)` translates the first `num` of the given
  conditions (repeated cyclically past their number; the key is unused: the
  conditions are the samples' inputs). `.jitted(variables, key, num)` is
  the traceable generator on `num` all-zero conditions, for counting MACs
  (which do not depend on the values)."""

  def __init__(self, translate_fn, conditions: np.ndarray):
    self.translate_fn = translate_fn
    self.conditions = conditions

  def __call__(self, variables, key, num: int):
    del key
    return self.translate_fn(variables, np.resize(
        self.conditions, (num,) + self.conditions.shape[1:]))

  def jitted(self, variables, key, num: int):
    del key
    return self.translate_fn.apply(variables, jax.numpy.zeros(
        (num,) + self.conditions.shape[1:], jax.numpy.float32))


class Stages:
  """The stages of one experiment, with everything shared across points:
  the generator, its latents' key (a conditional generator's: its
  conditions and their targets), the embedder and the real reference."""

  def __init__(self, config: ml_collections.ConfigDict,
               finetune_dir: str | None = None):
    self.config = config
    self.finetune_dir = finetune_dir
    self.dataset = pretrained.info(config.generator)["dataset"]
    self.sample_fn, self.variables = pretrained.generator(config.generator)
    self.pairs = None
    if pretrained.is_conditional(config.generator):
      self.pairs = _pairs(config, self.dataset)
      self.sample_fn = ConditionalSampler(self.sample_fn,
                                          self.pairs["condition"])
    self.key = jax.random.key(config.seed)
    self.embed_fn, self.embed_params, self.embed_batch = embedder(
        config, self.dataset)
    # A conditional generator's sweep (about 1,000 pairs) runs on one
    # device.
    self.mesh = None if self.pairs is not None else _mesh(config)

  @functools.cached_property
  def reference(self) -> metrics.Reference:
    """The real side, embedded and built on first use (restoring a missing
    sample grid needs none)."""
    config = self.config
    start = time.perf_counter()
    real = data.images(self.dataset, config.get("split", "train"),
                       data_dir=config.get("data_dir"))
    limit = config.get("num_reference")
    if limit is not None and limit < real.shape[0]:
      # A random subset: the splits are stored in source order (mnist5k's
      # is sorted by digit), so the first examples would be one class.
      real = real[np.sort(np.random.default_rng(config.seed).choice(
          real.shape[0], limit, replace=False))]
    if self.mesh is None:
      reference = metrics.Reference(self.embed(real))
    else:  # embedded on the mesh, kept there for the metrics
      reference = metrics.Reference(_data_parallel.embed_host(
          self.embed_fn, self.embed_params, real, self.embed_batch,
          self.mesh), mesh=self.mesh)
    log.info("reference: %d %s samples of %s embedded in %.1f s",
             real.shape[0], config.get("split", "train"), self.dataset,
             time.perf_counter() - start)
    return reference

  def embed(self, samples):
    """Embeddings: numpy from numpy samples; from samples on the mesh, on
    the mesh (sharded by rows)."""
    if isinstance(samples, jax.Array) and self.mesh is not None:
      return jax.block_until_ready(_data_parallel.embed(
          self.embed_fn, self.embed_params, samples, self.embed_batch,
          self.mesh))
    return pretrained.embed_all(self.embed_fn, self.embed_params, samples,
                                self.embed_batch)

  def generate(self, variables, sample_fn=None):
    """The point's samples (of `sample_fn`, default the generator's):
    numpy, or on a mesh a global array sharded by rows (the same latents,
    so the same samples)."""
    sample_fn = sample_fn or self.sample_fn
    if self.mesh is not None:
      return jax.block_until_ready(_data_parallel.sample(
          sample_fn, variables, self.key, self.config.num_samples,
          self.mesh))
    return np.asarray(jax.block_until_ready(
        sample_fn(variables, self.key, self.config.num_samples)))

  @staticmethod
  def generate_1000_s(sample_fn, variables) -> float:
    """Seconds to generate 1,000 samples on one device, compiled (the
    second of two calls)."""
    key = jax.random.key(0)
    jax.block_until_ready(sample_fn(variables, key, 1000))
    start = time.perf_counter()
    jax.block_until_ready(sample_fn(variables, key, 1000))
    return time.perf_counter() - start

  @functools.cached_property
  def dense_macs(self) -> int:
    return _macs(self.sample_fn, self.variables)

  def paired_scores(self, samples: np.ndarray) -> dict[str, float]:
    """A conditional generator's outputs against their own targets (and,
    for edges2digits, inputs): PAIRED_METRICS; {} for the others."""
    if self.pairs is None:
      return {}
    from lsh_gan.metrics import paired  # pylint: disable=g-import-not-at-top
    samples = np.asarray(samples)
    out = paired.fidelity(samples, self.pairs["image"])
    if self.dataset == "edges2digits":
      out["edge_f1"] = paired.edge_consistency(
          samples, self.pairs["condition"])["edge_f1"]
    return {k: out.get(k, math.nan) for k in PAIRED_METRICS}

  def score(self, fake: np.ndarray) -> dict[str, float]:
    c, ref = self.config, self.reference
    fake = ref.fake_set(fake)  # validated and moved once for every metric
    knn = ref.knn_metrics(fake, k=c.k, density_k=c.density_k)
    family = dict(num_tables=c.lsh_tables, num_hashes=c.lsh_hashes,
                  seed=c.seed)
    notes = ""
    try:
      lsh = ref.lsh_precision_recall(fake, **family)
    except metrics.DegenerateError:
      # A collapsed fake set (mostly identical samples) has no width of its
      # own; both sets are then hashed at the real set's width (a collapsed
      # real set raises again here, saying so).
      lsh = ref.lsh_precision_recall(
          fake, bucket_width=ref.lsh_width(**family), **family)
      notes = "lsh: fake samples mostly identical, real width used"
    # LSH+KNN reports an estimate of its own error against exact KNN; a
    # large one goes to the row's notes rather than to the terminal.
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", metrics.AccuracyWarning)
      lsh_knn = ref.lsh_knn_precision_recall(fake, k=c.k,
                                             num_tables=c.lsh_knn_tables,
                                             seed=c.seed)
    off = [f"{side} {lsh_knn[f'{side}_error']:+.3f}"
           for side in ("precision", "recall")
           if abs(lsh_knn.get(f"{side}_error", 0.0)) > 0.03]
    if off:
      notes = "; ".join(filter(None, [
          notes, "lsh_knn: estimated off exact KNN by " + ", ".join(off)]))
    peers, peer_notes = _peer_scores(ref, fake, c.seed)
    notes = "; ".join(filter(None, [notes, *peer_notes]))
    kid = ref.kernel_distance(fake, seed=c.seed)
    return {**peers,
            "knn_precision": knn["precision"], "knn_recall": knn["recall"],
            "density": knn["density"], "coverage": knn["coverage"],
            "lsh_precision": lsh["precision"], "lsh_recall": lsh["recall"],
            "lsh_knn_precision": lsh_knn["precision"],
            "lsh_knn_recall": lsh_knn["recall"],
            "fid": ref.frechet_distance(fake)["fid"], "kid": kid["kid"],
            "notes": notes}

  def compressed(self, point) -> dict:
    """What a point's generator is: "variables" it runs on, its
    "sample_fn", "stored" (its real storage: the transform's packed tree, or
    a slimmer generator's variables), "macs", "params", "finetune_s" (0
    for post-training) and "slim" (a slimmer generator). A fine-tuned
    point is trained, or read back from its folder in `finetune_dir`."""
    if isinstance(point, finetune.Recipe):
      out = self._fine_tuned(point)
      if isinstance(out, finetune.Distilled):
        sample_fn = out.sample_fn
        if self.pairs is not None:  # a translator: on the sweep's pairs
          sample_fn = ConditionalSampler(sample_fn, self.pairs["condition"])
        return dict(variables=out.variables, stored=out.variables,
                    sample_fn=sample_fn, macs=out.macs,
                    params=out.params, finetune_s=out.seconds, slim=True)
      packed, seconds = out.transform.pack(out.weights), out.seconds
    else:
      packed, seconds = point.pack(self.variables), 0.0
    return dict(variables=compress.unpack(packed), stored=packed,
                sample_fn=self.sample_fn, macs=self.dense_macs,
                params=compress.num_params(self.variables["params"]),
                finetune_s=seconds, slim=False)

  def _fine_tuned(self, point):
    """A fine-tuned point's `FineTuned` or `Distilled`, trained in its
    folder of `finetune_dir` or read back from it."""
    if self.finetune_dir is None:
      raise ValueError(f"{point}: a fine-tuned point needs a finetune_dir")
    folder = finetune_folder(self.finetune_dir, self.config.generator, point)
    return point.run(self.config.generator, folder,
                     data_dir=self.config.get("data_dir"))

  @functools.cached_property
  def dense_bytes(self) -> int:
    """Bytes of the uncompressed generator's variables."""
    return compress.report(self.variables, self.variables).total.original_bytes

  def point(self, name: str, transform) -> tuple[dict, np.ndarray]:
    """One sweep point's row, and its samples."""
    timer = time.perf_counter()
    made = self.compressed(transform)
    variables = made["variables"]
    if made["slim"]:
      # A slimmer generator: its float32 variables are its storage.
      size_report = compress.report(made["stored"], made["stored"])
      stored_bytes = size_report.total.stored_bytes
      ratio = self.dense_bytes / stored_bytes
    else:
      size_report = compress.report(self.variables, made["stored"])
      stored_bytes = size_report.total.stored_bytes
      ratio = size_report.total.compression_ratio
    # Fine-tuned points: the training (or reading back) of this call too.
    compress_s, timer = time.perf_counter() - timer, time.perf_counter()
    samples = self.generate(variables, made["sample_fn"])
    generate_s, timer = time.perf_counter() - timer, time.perf_counter()
    fake = self.embed(samples)
    embed_s, timer = time.perf_counter() - timer, time.perf_counter()
    if not _data_parallel.all_finite(fake):
      # A broken generator.
      scores = {m: math.nan for m in METRICS + (
          PAIRED_METRICS if self.pairs is not None else ())}
      scores["notes"] = "non-finite samples: no metrics"
      log.warning("%s: non-finite samples; its metrics are NaN", name)
    else:
      scores = {**self.score(fake), **self.paired_scores(samples)}
    score_s = time.perf_counter() - timer
    row = {"point": name, "transform": str(transform),
           "bits": size_report.fewest_bits or 32,
           "stored_bytes": int(stored_bytes),
           "compression_ratio": float(ratio),
           "macs": int(made["macs"]), "params": int(made["params"]),
           **{k: v if k == "notes" else float(v) for k, v in scores.items()},
           "finetune_s": float(made["finetune_s"]), "compress_s": compress_s,
           "generate_s": generate_s,
           "generate_1000_s": self.generate_1000_s(made["sample_fn"],
                                                   variables),
           "embed_s": embed_s, "score_s": score_s}
    if isinstance(transform, finetune.Recipe):
      row.update(transform.depends_on(self.config.generator))
    return row, samples


def _pairs(config: ml_collections.ConfigDict, dataset: str) -> dict:
  """A conditional sweep's inputs and targets: `num_samples` pairs of the
  config's split, drawn without repeats by `seed`, in the order drawn (the
  splits are stored by class: a sample grid's first images are then of
  every class) ({"condition", "image"}).

  Raises:
    ValueError: num_samples above the split's number of pairs.
  """
  split = config.get("split", "train")
  pairs = data.load(dataset, split, data_dir=config.get("data_dir"))
  total = pairs["image"].shape[0]
  if config.num_samples > total:
    raise ValueError(
        f"config.num_samples={config.num_samples}: {config.generator!r} "
        f"translates the conditions of {dataset}'s {split} split, which "
        f"has {total}")
  chosen = np.random.default_rng(config.seed).choice(
      total, config.num_samples, replace=False)
  return {k: pairs[k][chosen] for k in ("condition", "image")}


def _macs(sample_fn, variables) -> int:
  """Multiply-accumulates per sample of a generator (`compress.macs`)."""
  return compress.macs(lambda v, k: sample_fn.jitted(v, k, 1), variables,
                       jax.random.key(0))


def finetune_folder(finetune_dir: str, generator: str, point) -> str:
  """The folder of `finetune_dir` where a fine-tuned point (a
  `finetune.Recipe`) of `generator` is trained and read back.

  Readable, and unique: two points whose names differ only in punctuation
  get folders of their own, and so does a point trained against another
  discriminator (the digest covers what the point depends on).
  """
  key = json.dumps([str(point), point.depends_on(generator)])
  digest = hashlib.sha256(key.encode()).hexdigest()[:8]
  return os.path.join(finetune_dir, f"{_slug(str(point))[:80]}-{digest}")


def _slug(name: str) -> str:
  return re.sub(r"[^A-Za-z0-9.=-]+", "_", name).strip("_")


def _grid_path(workdir: str, index: int, name: str) -> str:
  return os.path.join(workdir, "samples", f"{index:02d}_{_slug(name)}.png")


def run(config: ml_collections.ConfigDict, workdir: str,
        finetune_dir: str | None = None) -> list[dict]:
  """Runs (or resumes) an experiment; returns its rows in sweep order.

  Fine-tuned points are trained in `finetune_dir` (default
  workdir/finetune), one folder each, and read back when there.

  Raises:
    ValueError: a bad config field or workdir, a workdir holding another
      experiment's results, or a damaged results.json (nothing is computed
      or rewritten then).
  """
  check(config, workdir)
  with _main_locked(workdir):
    return _run_locked(config, workdir, finetune_dir or os.path.join(
        workdir, "finetune"))


def _main_locked(workdir: str):
  """The workdir's lock, held by process 0 (the one that writes); the other
  processes of a multi-process run follow its decisions (`from_main`)."""
  if _data_parallel.is_main():
    return _files.locked(workdir, on_wait=log.warning)
  return contextlib.nullcontext()


def _write(fn, *args, **kwargs) -> None:
  """fn(...) on process 0 only: one writer per workdir."""
  if _data_parallel.is_main():
    fn(*args, **kwargs)


def _run_locked(config: ml_collections.ConfigDict, workdir: str,
                finetune_dir: str) -> list:
  points = sweep(config)
  # Process 0 (the lock's holder) reads the workdir, for every process.
  done = {row["point"]: row for row in _data_parallel.call_on_main(
      lambda: load_results(workdir, config))}
  _write(_files.write_json, os.path.join(workdir, "config.json"),
         config.to_dict(), sort_keys=True)
  names = [p for p, _ in points]
  grids = {name: _grid_path(workdir, i, name) for i, name in enumerate(names)
           } if config.grid_samples else {}
  # A fine-tuned point's row is stale when what it was trained against
  # changed (a retrained discriminator): computed again.
  for name, point in points:
    if isinstance(point, finetune.Recipe) and name in done and any(
        done[name].get(k) != v
        for k, v in point.depends_on(config.generator).items()):
      log.info("%s: trained against another discriminator; computed again",
               name)
      del done[name]
  # What to compute is process 0's reading of the workdir, for all.
  is_done, has_grid = _data_parallel.from_main(np.array(
      [[p in done for p in names],
       [p not in grids or os.path.exists(grids[p]) for p in names]]))
  todo = [p for p, d in zip(points, is_done) if not d]
  missing_grids = [p for p, d, g in zip(points, is_done, has_grid)
                   if d and not g]
  log.info("%d sweep points: %d done, %d to compute", len(points),
           len(points) - len(todo), len(todo))

  def saved_rows():
    # Sweep order; rows of points since dropped from the config stay too.
    return ([done[p] for p in names if p in done] +
            [r for p, r in done.items() if p not in names])

  if todo or missing_grids:
    stages = Stages(config, finetune_dir)
    modes = (data.mixture_modes(stages.dataset)
             if stages.dataset in data.MIXTURES else None)

    def draw(name, samples):
      # Every process takes part in gathering the rows; process 0 draws.
      shown = _data_parallel.first_rows(
          samples, samples.shape[0] if modes is not None else
          config.grid_samples)
      _write(report.sample_grid, shown, grids[name], title=name,
             modes=modes)

    for name, transform in missing_grids:
      # The row is saved but the run stopped before its grid: redraw it from
      # the same latents, without scoring (or fine-tuning) again.
      made = stages.compressed(transform)
      draw(name, stages.generate(made["variables"], made["sample_fn"]))
      log.info("restored the missing sample grid of %s", name)
    for i, (name, transform) in enumerate(todo):
      row, samples = stages.point(name, transform)
      done[name] = row
      _write(save_results, workdir, config, saved_rows())
      if name in grids:
        draw(name, samples)
      log.info("[%d/%d] %s: KNN P/R %.3f/%.3f, LSH P/R %.3f/%.3f, "
               "FID %.3g (%.1f s)", i + 1, len(todo), name,
               row["knn_precision"], row["knn_recall"], row["lsh_precision"],
               row["lsh_recall"], row["fid"],
               sum(row[k] for k in ("compress_s", "generate_s", "embed_s",
                                    "score_s")))
  _write(save_results, workdir, config, saved_rows())
  rows = [done[p] for p in names if p in done]
  _write(report.sweep_plots, rows, workdir, title=config.generator)
  return rows


def run_seeds(config: ml_collections.ConfigDict, workdir: str,
              num_seeds: int) -> list[dict]:
  """Runs the experiment at seeds config.seed, config.seed + 1, ... (the
  latents, LSH hashes and KID subsets change; the generator does not), each
  in workdir/seed_<s> and each resumable, then writes summary.json and
  summary.csv: per point, the mean and standard deviation (ddof=1) of every
  metric over the seeds, so a difference can be told from noise.

  Returns:
    The summary rows: point, transform, bits, stored_bytes,
    compression_ratio, macs, params, finetune_s, num_seeds,
    and <metric>_mean, <metric>_std for each metric.
  """
  if not isinstance(num_seeds, int) or isinstance(num_seeds, bool) or (
      num_seeds < 2):
    raise ValueError(f"num_seeds={num_seeds!r} must be an integer >= 2")
  check(config)
  _files.check_writable(workdir, "workdir")
  with _main_locked(workdir):
    return _run_seeds_locked(config, workdir, num_seeds)


def _run_seeds_locked(config, workdir, num_seeds):
  runs = []
  for seed in range(config.seed, config.seed + num_seeds):
    seeded = ml_collections.ConfigDict(config.to_dict())
    seeded.seed = seed
    if seed != config.seed:  # grids of other latents show nothing new
      seeded.grid_samples = 0
    log.info("seed %d (%d of %d)", seed, seed - config.seed + 1, num_seeds)
    # The seed moves the latents, not the fine-tuned generators: one
    # folder of them for every seed.
    runs.append(run(seeded, os.path.join(workdir, f"seed_{seed}"),
                    os.path.join(workdir, "finetune")))
  summary = []
  for i, first in enumerate(runs[0]):
    row = {k: first[k] for k in ("point", "transform", "bits",
                                 "stored_bytes", "compression_ratio")}
    row.update({k: first[k] for k in ("macs", "params", "finetune_s")
                if k in first})  # rows saved before these lack them
    row["num_seeds"] = num_seeds
    for metric in METRICS + tuple(m for m in PAIRED_METRICS if m in first):
      # (.get: a resumed run's older rows may lack a later column.)
      values = np.array([r[i].get(metric, math.nan) for r in runs],
                        np.float64)
      row[f"{metric}_mean"] = float(values.mean())
      row[f"{metric}_std"] = float(values.std(ddof=1))
    summary.append(row)
  _write(_files.write_json, os.path.join(workdir, "summary.json"), {
      "config": config.to_dict(),
      "seeds": list(range(config.seed, config.seed + num_seeds)),
      "rows": summary})
  _write(_files.write_csv, os.path.join(workdir, "summary.csv"), summary,
         summary[0])
  return summary

