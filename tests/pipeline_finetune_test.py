"""Fine-tuned points in a sweep: written as one string, trained once in the
workdir, read back on a rerun, sized and costed like the others.

On a small ring8 GAN trained for the tests (conftest's `tiny_gan`).
"""

import json
import os

import numpy as np
import pytest

from lsh_gan import compress
from lsh_gan import finetune
from lsh_gan import pipeline
from lsh_gan import pretrained

import conftest

from configs import sweep_dcgan_mnist5k  # pylint: disable=g-import-not-at-top


POINTS = "quantize(bits=2) >> quantization_aware(steps=30); distill(width=8, steps=30)"


def _config(data_dir, points=POINTS):
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = conftest.TINY_GAN
  config.data_dir = data_dir
  config.num_samples = 200
  config.num_reference = 400
  config.grid_samples = 0
  config.points = points
  return config


def _mtimes(folder):
  return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
          for d, _, files in os.walk(folder) for f in files
          if not f.startswith(".lsh_gan.lock")}


def test_fine_tuned_points_are_trained_once_and_read_back(
    data_dir, with_tiny_gan, tmp_path, monkeypatch):
  del with_tiny_gan
  workdir = str(tmp_path / "sweep")
  rows = pipeline.run(_config(data_dir), workdir)
  base, qat, slim = rows
  assert [r["point"] for r in rows] == [
      "baseline", "quantize(bits=2) >> quantization_aware(steps=30)",
      "distill(width=8,steps=30)"]
  # The fine-tuned 2-bit generator takes the post-training one's storage;
  # the slim one stores float32 weights of 4x8 + 8 + 8x8 + 8 + 8x2 + 2
  # entries against the teacher's 4x32 + 32 + 32x32 + 32 + 32x2 + 2.
  _, dense = pretrained.generator(conftest.TINY_GAN)
  post = compress.report(dense, compress.quantize(2).pack(dense)).total
  assert qat["stored_bytes"] == post.stored_bytes < base["stored_bytes"]
  assert slim["params"] == 130 and base["params"] == 1282
  assert slim["stored_bytes"] == 4 * 130 and base["stored_bytes"] == 4 * 1282
  assert slim["compression_ratio"] == pytest.approx(1282 / 130)
  assert slim["macs"] == 4 * 8 + 8 * 8 + 8 * 2 < base["macs"] == 1216
  assert qat["macs"] == base["macs"]
  assert base["finetune_s"] == 0
  assert qat["finetune_s"] > 0 and slim["finetune_s"] > 0
  assert all(r["generate_1000_s"] > 0 for r in rows)
  # The row's generator is the method's own, run directly.
  direct = finetune.quantization_aware(conftest.TINY_GAN, "quantize(bits=2)",
                                       steps=30)
  stages = pipeline.Stages(_config(data_dir),
                           os.path.join(workdir, "finetune"))
  made = stages.compressed(finetune.parse_recipe(qat["point"]))
  np.testing.assert_array_equal(stages.generate(made["variables"]),
                                stages.generate(direct.variables))
  # A sweep stopped after the fine-tuning but before its rows were saved
  # trains nothing again: the runs' files are left as they were, and the
  # numbers are the same.
  before = _mtimes(os.path.join(workdir, "finetune"))
  path = os.path.join(workdir, "results.json")
  with open(path) as f:
    saved = json.load(f)
  saved["rows"] = saved["rows"][:1]
  with open(path, "w") as f:
    json.dump(saved, f)
  again = pipeline.run(_config(data_dir), workdir)
  assert _mtimes(os.path.join(workdir, "finetune")) == before
  numbers = lambda r: {k: r[k] for k in pipeline.METRICS + (
      "stored_bytes", "macs", "params", "finetune_s")}
  assert [numbers(r) for r in again] == [numbers(r) for r in rows]
  # A retrained discriminator makes the distilled row stale (trained
  # against it): it is trained again, in a folder of its own; the
  # quantization-aware one (no discriminator) is kept.
  fingerprint = pretrained.fingerprint
  monkeypatch.setattr(pretrained, "fingerprint", lambda name, part="params": (
      "retrained" if part == "discriminator" else fingerprint(name, part)))
  pipeline.run(_config(data_dir), workdir)
  assert len(os.listdir(os.path.join(workdir, "finetune"))) == 3
  assert _mtimes(os.path.join(workdir, "finetune")).items() >= before.items()


def test_seeds_share_the_fine_tuned_generators_and_old_rows_are_kept(
    data_dir, with_tiny_gan, tmp_path):
  del with_tiny_gan
  workdir = tmp_path / "sweep"
  config = _config(data_dir, points="distill(width=8, steps=10)")
  summary = pipeline.run_seeds(config, str(workdir), 2)
  # Trained once, beside the seeds' folders, and used by both.
  [folder] = os.listdir(workdir / "finetune")
  assert folder.startswith("distill_width=8_steps=10-")
  assert not os.path.exists(workdir / "seed_1" / "finetune")
  rows = [json.load(open(workdir / f"seed_{s}" / "results.json"))["rows"]
          for s in (0, 1)]
  assert rows[0][1]["finetune_s"] == rows[1][1]["finetune_s"] > 0
  assert summary[1]["macs"] == 4 * 8 + 8 * 8 + 8 * 2
  # Rows saved by a version without the cost columns are kept as they are
  # when points are added.
  path = workdir / "seed_0" / "results.json"
  saved = json.load(open(path))
  for row in saved["rows"]:
    for column in ("macs", "params", "finetune_s", "generate_1000_s"):
      del row[column]
  with open(path, "w") as f:
    json.dump(saved, f)
  config.add_points = "quantize(bits=3)"
  again = pipeline.run(config, str(workdir / "seed_0"),
                       str(workdir / "finetune"))
  assert [r["point"] for r in again] == [r["point"] for r in rows[0]] + [
      "quantize(bits=3)"]
  assert "macs" not in again[0] and again[2]["macs"] == 1216


@pytest.mark.parametrize("points,message", [
    ("quantize(bits=2) >> distill(width=8, steps=3)",
     r"expected one of quantization_aware\(...\), discriminator_supervised"),
    ("distill(width=8)", r"distill\(\) in .* needs steps"),
    ("distill(width=99, steps=3)", "width=99 must be at most the teacher's 32"),
    ("distill(width=8, steps=3, workdir='x')", "has no argument 'workdir'"),
    ("quantize(bits=2) >> quantization_aware(steps=-2)", "steps=-2"),
    ("search(budget_macs=5, supernet_steps=1, steps=1)", "smallest takes"),
])
def test_bad_fine_tuned_points_are_refused_before_any_work(
    data_dir, with_tiny_gan, tmp_path, monkeypatch, points, message):
  del with_tiny_gan
  monkeypatch.setattr(pipeline, "Stages", None)
  with pytest.raises(ValueError, match=message):
    pipeline.run(_config(data_dir, points=points), str(tmp_path / "w"))
  assert not os.path.exists(tmp_path / "w" / "results.json")


def test_recipes_read_back_from_their_canonical_string():
  for spec in ("prune(0.8)+quantize(4) >> discriminator_supervised("
               "steps=20, seed=1)", "distill(steps=3, width=4)",
               "search(budget_macs=1_000, supernet_steps=2, steps=1, "
               "choices=[0.5, 1.0])"):
    recipe = finetune.parse_recipe(spec)
    assert finetune.parse_recipe(str(recipe)) == recipe
  assert str(finetune.parse_recipe(
      "prune(0.8)+quantize(4) >> discriminator_supervised(seed=1, steps=20)")
             ) == ("prune(sparsity=0.8)+quantize(bits=4) >> "
                   "discriminator_supervised(steps=20,seed=1)")
  assert finetune.parse_recipe("quantize(bits=4)") is None
  assert isinstance(compress.parse("quantize(bits=4)"), compress.Transform)
