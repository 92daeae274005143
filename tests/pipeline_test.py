"""lsh_gan.pipeline: the sweep end to end, resume, and config checks."""

import csv
import json
import os

import jax
import numpy as np
import pytest

from lsh_gan import metrics
from lsh_gan import pipeline
from lsh_gan import pretrained

from configs import sweep_dcgan_mnist5k  # pylint: disable=g-import-not-at-top


def tiny(data_dir, **fields):
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = "dcgan_digits"
  config.data_dir = data_dir
  config.num_samples = 300
  config.grid_samples = 16
  config.points = "quantize(bits=4);prune(sparsity=0.5)"
  for name, value in fields.items():
    setattr(config, name, value)
  return config


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("sweep"))
  rows = pipeline.run(tiny(data_dir), workdir)
  return workdir, rows


def test_a_sweep_writes_every_output(finished):
  workdir, rows = finished
  assert [r["point"] for r in rows] == [
      "baseline", "quantize(bits=4)", "prune(sparsity=0.5)"]
  with open(os.path.join(workdir, "results.csv")) as f:
    table = list(csv.DictReader(f))
  assert tuple(table[0]) == pipeline.COLUMNS
  assert [r["point"] for r in table] == [r["point"] for r in rows]
  with open(os.path.join(workdir, "results.json")) as f:
    assert json.load(f)["rows"] == rows
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["generator"] == "dcgan_digits"
  for name in ("metrics_vs_bits.png", "precision_recall.png",
               "samples/00_baseline.png", "samples/01_quantize_bits=4.png",
               "samples/02_prune_sparsity=0.5.png"):
    assert os.path.getsize(os.path.join(workdir, name)) > 1000, name
  base, quant, pruned = rows
  assert (base["transform"], base["bits"], base["compression_ratio"]) == (
      "identity", 32, 1.0)
  assert quant["bits"] == 4 and 5 < quant["compression_ratio"] < 8
  assert quant["stored_bytes"] < base["stored_bytes"] / 5
  assert pruned["bits"] == 32
  for row in rows:
    for metric in pipeline.METRICS[:-2]:  # all but FID and KID
      assert 0.0 <= row[metric] <= (10.0 if metric == "density" else 1.0)
    assert row["fid"] >= 0 and all(row[k] >= 0 for k in pipeline.COLUMNS
                                   if k.endswith("_s"))


def test_the_baseline_row_equals_a_direct_computation(finished, data_dir):
  # The same samples (seed 0's key), the same embedder, the module-level
  # metric functions: an independent path to the baseline's numbers.
  _, rows = finished
  sample_fn, variables = pretrained.generator("dcgan_digits")
  embed_fn, params = pretrained.embedder("digits")
  from lsh_gan import data  # pylint: disable=g-import-not-at-top
  real = np.asarray(embed_fn(params, data.images("digits",
                                                 data_dir=data_dir)))
  fake = np.asarray(embed_fn(params, sample_fn(variables, jax.random.key(0),
                                               300)))
  knn = metrics.knn_precision_recall(real, fake, k=3)
  dc = metrics.density_coverage(real, fake, k=5)
  lsh = metrics.lsh_precision_recall(real, fake, seed=0)
  fid = metrics.frechet_distance(real, fake)
  peers = (metrics.probabilistic_precision_recall(real, fake),
           metrics.top_precision_recall(real, fake, seed=0),
           metrics.clipped_density_coverage(real, fake))
  base = rows[0]
  # The pipeline embeds in padded batches of 500, this path all at once: the
  # embeddings may differ in their last bits, which can flip a point that
  # sits on a ball's edge. Allow two such points of the set counted.
  per_fake, per_real = 2 / fake.shape[0], 2 / real.shape[0]
  assert base["knn_precision"] == pytest.approx(knn["precision"], abs=per_fake)
  assert base["knn_recall"] == pytest.approx(knn["recall"], abs=per_real)
  assert base["density"] == pytest.approx(dc["density"], abs=per_fake)
  assert base["coverage"] == pytest.approx(dc["coverage"], abs=per_real)
  assert base["lsh_precision"] == pytest.approx(lsh["precision"], abs=per_fake)
  assert base["lsh_recall"] == pytest.approx(lsh["recall"], abs=per_real)
  assert base["fid"] == pytest.approx(fid["fid"], rel=1e-4)
  for prefix, out in zip(("p", "top", "clipped"), peers):
    for (side, value), column in zip(out.items(), (
        m for m in pipeline.METRICS if m.startswith(prefix + "_"))):
      # TopP&R counts against the bands by fake and by real point; its
      # P-values are smooth (a product of distances).
      allowed = per_fake if side in ("precision", "density") else per_real
      assert base[column] == pytest.approx(value, abs=allowed), column


def test_a_finished_sweep_reruns_without_computing(finished, data_dir,
                                                   monkeypatch):
  workdir, rows = finished
  monkeypatch.setattr(pipeline, "Stages", None)  # any use would fail
  assert pipeline.run(tiny(data_dir), workdir) == rows


def test_an_interrupted_sweep_computes_only_the_missing_points(
    finished, data_dir, tmp_path, monkeypatch):
  calls = []
  original = pipeline.Stages.point

  def interrupted(self, name, transform):
    calls.append(name)
    if len(calls) == 2:
      raise KeyboardInterrupt
    return original(self, name, transform)

  monkeypatch.setattr(pipeline.Stages, "point", interrupted)
  with pytest.raises(KeyboardInterrupt):
    pipeline.run(tiny(data_dir), str(tmp_path))
  with open(tmp_path / "results.json") as f:
    assert [r["point"] for r in json.load(f)["rows"]] == ["baseline"]
  calls.clear()
  monkeypatch.setattr(pipeline.Stages, "point", lambda self, n, t: (
      calls.append(n), original(self, n, t))[1])
  config = tiny(data_dir, add_points="quantize(bits=2)")
  rows = pipeline.run(config, str(tmp_path))
  assert calls == ["quantize(bits=4)", "prune(sparsity=0.5)",
                   "quantize(bits=2)"]
  assert [r["point"] for r in rows][-1] == "quantize(bits=2)"
  # Determinism by seed: the resumed sweep's numbers are the uninterrupted
  # one's (same machine, same seed).
  numbers = lambda row: {k: row[k] for k in pipeline.METRICS +
                         ("stored_bytes", "compression_ratio")}
  assert [numbers(r) for r in rows[:3]] == [numbers(r) for r in finished[1]]


def test_another_experiment_in_the_same_workdir_is_refused(finished,
                                                            data_dir):
  workdir, _ = finished
  with pytest.raises(ValueError, match=r"holds results of a different "
                     r"experiment \(num_samples: 300 there, 400 now\)"):
    pipeline.run(tiny(data_dir, num_samples=400), workdir)


@pytest.mark.parametrize("field,value,message", [
    ("generator", "biggan_mnist5k", r"config.generator='biggan_mnist5k' is "
     r"not a pre-trained generator; valid ones: .*dcgan_mnist5k"),
    ("points", "quantise(4)", r"config.points: .*unknown transform "
     r"'quantise'"),
    ("add_points", "quantize(bits=17)", r"config.add_points: bits=17 must "
     r"be an integer in 1..16"),
    ("num_samples", 3, r"config.num_samples=3 must be an integer >= 6"),
    ("k", 0, r"config.k=0 must be an integer >= 1"),
    ("dataset", "mnist5k", r"config.dataset='mnist5k': the generator "
     r"'dcgan_digits' was trained on 'digits'"),
    ("split", "validation", r"config.split='validation'"),
    ("embedder", "clip", r"config.embedder='clip' must be one of dataset, "
     r"inception_v3"),
])
def test_bad_configs_are_refused_before_any_work(
    data_dir, tmp_path, monkeypatch, field, value, message):
  monkeypatch.setattr(pipeline, "Stages", None)
  with pytest.raises(ValueError, match=message):
    pipeline.run(tiny(data_dir, **{field: value}), str(tmp_path / "w"))
  assert not os.path.exists(tmp_path / "w" / "results.json")


def test_inception_weights_are_needed_only_for_the_inception_embedder(
    data_dir, tmp_path, monkeypatch):
  monkeypatch.setattr(pipeline, "Stages", None)
  monkeypatch.delenv("LSH_GAN_INCEPTION_WEIGHTS", raising=False)
  with pytest.raises(ValueError, match=r"config.inception_weights: weights="
                     r"None and \$LSH_GAN_INCEPTION_WEIGHTS is not set"):
    pipeline.run(tiny(data_dir, embedder="inception_v3"), str(tmp_path))
  missing = str(tmp_path / "pt_inception.pth")
  with pytest.raises(ValueError, match=(
      r"config.inception_weights: weights='.*pt_inception\.pth': no such "
      r"file\. The FID Inception-v3 weights are the pytorch-fid release file "
      r"pt_inception-2015-12-05-6726825d\.pth: download it from https://")):
    pipeline.run(tiny(data_dir, embedder="inception_v3",
                      inception_weights=missing), str(tmp_path))
  # The dataset's embedder needs no weights, whatever the field says.
  pipeline.check(tiny(data_dir, inception_weights=missing))
  assert not os.path.exists(tmp_path / "results.json")


def test_a_retrained_model_of_the_same_name_is_not_mixed_in(
    finished, data_dir, tmp_path, monkeypatch):
  workdir, _ = finished
  copy = _copy(workdir, tmp_path)
  monkeypatch.setattr(pipeline, "Stages", None)
  real = pipeline.pretrained.fingerprint
  monkeypatch.setattr(pipeline.pretrained, "fingerprint",
                      lambda name: "0" * 16 if name == "dcgan_digits"
                      else real(name))
  with pytest.raises(ValueError, match=r"\(generator_fingerprint: '[0-9a-f]"
                     r"{16}' there, '0{16}' now\)"):
    pipeline.run(tiny(data_dir), str(copy))


def test_an_unwritable_workdir_is_refused(data_dir, tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(ValueError, match="workdir=.*file/out.* cannot be "
                     "written"):
    pipeline.check(tiny(data_dir), str(tmp_path / "file" / "out"))


def test_sweep_points_are_canonical_and_unique():
  config = sweep_dcgan_mnist5k.get_config()
  config.points = " quantize(4) ; quantize(bits=4);; prune(0.5)"
  config.add_points = "prune(sparsity=0.5);clip(percentile=99)+quantize(2,axis=-1)"
  assert [n for n, _ in pipeline.sweep(config)] == [
      "baseline", "quantize(bits=4)", "prune(sparsity=0.5)",
      "clip(percentile=99)+quantize(bits=2,axis=-1)"]
  probe = {"w": np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)}
  assert pipeline.bits_of("clip(percentile=99)+quantize(bits=2,axis=-1)",
                          probe) == 2
  assert pipeline.bits_of("prune(sparsity=0.5)", probe) == 32
  assert len(pipeline.sweep(sweep_dcgan_mnist5k.get_config())) == 16


def test_a_collapsed_generator_still_gets_lsh_scores(data_dir):
  stages = pipeline.Stages(tiny(data_dir))
  fake = np.repeat(stages.reference.real[:1], 300, axis=0)
  scores = stages.score(np.asarray(fake))
  assert "real width used" in scores["notes"]
  assert 0 <= scores["lsh_precision"] <= 1 and scores["lsh_recall"] < 0.2


def test_seeds_are_summarised_by_mean_and_spread(finished, data_dir,
                                                 tmp_path):
  workdir, rows = finished
  # Seed 0's run is the finished sweep: copy it in, so only seed 1 runs.
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.copytree(workdir, tmp_path / "seed_0")
  summary = pipeline.run_seeds(tiny(data_dir), str(tmp_path), 2)
  with open(tmp_path / "seed_1" / "results.json") as f:
    other = json.load(f)["rows"]
  assert [r["point"] for r in summary] == [r["point"] for r in rows]
  for row, a, b in zip(summary, rows, other):
    for metric in ("knn_precision", "lsh_recall", "fid"):
      assert row[f"{metric}_mean"] == pytest.approx((a[metric] + b[metric]) / 2)
      assert row[f"{metric}_std"] == pytest.approx(
          abs(a[metric] - b[metric]) / np.sqrt(2))
  assert other[0]["knn_precision"] != rows[0]["knn_precision"]  # new latents
  assert [r["stored_bytes"] for r in summary] == [
      r["stored_bytes"] for r in rows]
  # Grids are drawn at the first seed only; grid_samples decides no number,
  # so seed 1's workdir still matches when it is rerun with grids on.
  assert os.listdir(tmp_path / "seed_0" / "samples")
  assert not os.path.exists(tmp_path / "seed_1" / "samples")
  assert pipeline.load_results(str(tmp_path / "seed_1"),
                               tiny(data_dir, seed=1)) == other
  with open(tmp_path / "summary.csv") as f:
    assert len(list(csv.DictReader(f))) == len(rows)
  from lsh_gan import report  # pylint: disable=g-import-not-at-top
  assert " ± " in report.seeds_table(summary).splitlines()[2]
  with pytest.raises(ValueError, match="num_seeds=1 must be an integer >= 2"):
    pipeline.run_seeds(tiny(data_dir), str(tmp_path), 1)


def _copy(workdir, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  copy = tmp_path / "copy"
  shutil.copytree(workdir, copy)
  return copy


def test_a_rerun_restores_a_missing_grid_without_scoring_again(
    finished, data_dir, tmp_path, monkeypatch):
  # A kill after a row is saved but before its grid is drawn.
  workdir, rows = finished
  copy = _copy(workdir, tmp_path)
  grid = copy / "samples" / "01_quantize_bits=4.png"
  kept = grid.read_bytes()
  grid.unlink()
  with open(copy / "results.json") as f:
    saved = f.read()

  def no_scoring(*args):
    raise AssertionError("a finished point was computed again")

  monkeypatch.setattr(pipeline.Stages, "point", no_scoring)
  monkeypatch.setattr(pipeline.Stages, "reference", property(no_scoring))
  assert pipeline.run(tiny(data_dir), str(copy)) == rows
  # The same picture: the point's own samples from the run's latents.
  from matplotlib import image  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  np.testing.assert_array_equal(image.imread(io.BytesIO(grid.read_bytes())),
                                image.imread(io.BytesIO(kept)))
  with open(copy / "results.json") as f:
    assert json.load(f)["rows"] == json.loads(saved)["rows"]


@pytest.mark.parametrize("damage,message", [
    ("", r"is damaged: it should hold a sweep's results but is not readable "
     r"JSON"),
    ("truncate", r"is damaged: .*not readable JSON"),
    ("no rows", r"is damaged: it lacks the 'experiment' object or the 'rows' "
     r"list"),
    ("no fid", r"is damaged: row 1 \(quantize\(bits=4\)\) lacks fid"),
])
def test_a_damaged_results_file_is_named_and_nothing_is_rewritten(
    finished, data_dir, tmp_path, monkeypatch, damage, message):
  workdir, _ = finished
  copy = _copy(workdir, tmp_path)
  results = copy / "results.json"
  text = results.read_text()
  if damage == "truncate":
    text = text[:len(text) // 2]
  elif damage == "no rows":
    text = json.dumps({"experiment": json.loads(text)["experiment"]})
  elif damage == "no fid":
    saved = json.loads(text)
    del saved["rows"][1]["fid"]
    text = json.dumps(saved)
  else:
    text = damage
  results.write_text(text)
  def outputs():  # the lock file says who holds the folder: not an output
    return {p.name: p.read_bytes() for p in copy.iterdir()
            if p.is_file() and p.name != ".lsh_gan.lock"}

  before = outputs()
  monkeypatch.setattr(pipeline, "Stages", None)
  with pytest.raises(ValueError, match=str(results).replace(".", r"\.") +
                     " " + message + r".*move it away"):
    pipeline.run(tiny(data_dir), str(copy))
  assert outputs() == before


def test_an_unwritable_samples_folder_is_refused_before_any_work(
    data_dir, tmp_path, monkeypatch):
  # A file where the folder should be: unwritable even for root, who
  # ignores permission bits.
  (tmp_path / "samples").write_text("")
  monkeypatch.setattr(pipeline, "Stages", None)
  with pytest.raises(ValueError, match="the sample grids' folder=.*samples.* "
                     "cannot be written"):
    pipeline.run(tiny(data_dir), str(tmp_path))
  assert not os.path.exists(tmp_path / "results.json")
  # Without grids the samples folder is not needed.
  pipeline.check(tiny(data_dir, grid_samples=0), str(tmp_path))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes to read-only folders")
def test_a_read_only_samples_folder_is_refused_before_any_work(
    data_dir, tmp_path):
  (tmp_path / "samples").mkdir()
  os.chmod(tmp_path / "samples", 0o555)
  try:
    with pytest.raises(ValueError, match="cannot be written"):
      pipeline.check(tiny(data_dir), str(tmp_path))
  finally:
    os.chmod(tmp_path / "samples", 0o755)


@pytest.mark.slow
def test_two_runs_on_one_workdir_keep_every_row(data_dir, tmp_path):
  # The second run waits for the first, then computes only what is still
  # missing: no point twice, no row lost.
  import threading  # pylint: disable=g-import-not-at-top
  calls, errors = [], []
  original = pipeline.Stages.point

  def counted(self, name, transform):
    calls.append(name)
    return original(self, name, transform)

  configs = (tiny(data_dir, points="quantize(bits=4)", grid_samples=0),
             tiny(data_dir, points="quantize(bits=4);quantize(bits=2)",
                  grid_samples=0))

  def run(config):
    try:
      pipeline.run(config, str(tmp_path))
    except Exception as err:  # pylint: disable=broad-except
      errors.append(err)

  pipeline.Stages.point = counted
  try:
    threads = [threading.Thread(target=run, args=(c,)) for c in configs]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
  finally:
    pipeline.Stages.point = original
  assert not errors
  assert sorted(calls) == ["baseline", "quantize(bits=2)", "quantize(bits=4)"]
  with open(tmp_path / "results.json") as f:
    assert sorted(r["point"] for r in json.load(f)["rows"]) == [
        "baseline", "quantize(bits=2)", "quantize(bits=4)"]


def test_a_data_dir_that_is_a_file_is_refused(data_dir, tmp_path,
                                              monkeypatch):
  (tmp_path / "file").write_text("")
  monkeypatch.setattr(pipeline, "Stages", None)
  with pytest.raises(ValueError, match=r"config.data_dir '.*file' is a file, "
                     "not a folder"):
    pipeline.run(tiny(str(tmp_path / "file")), str(tmp_path / "w"))


def test_a_point_without_a_string_form_is_refused(monkeypatch):
  # Rows are keyed by the transform's string: one that prints a placeholder
  # (a callable mask) could not be told from another.
  from lsh_gan import compress  # pylint: disable=g-import-not-at-top
  from lsh_gan.compress import _base  # pylint: disable=g-import-not-at-top
  monkeypatch.setitem(_base._REGISTRY, "kernels_only", lambda: compress.masked(  # pylint: disable=protected-access
      compress.quantize(4), lambda path, leaf: path.endswith("kernel")))
  config = sweep_dcgan_mnist5k.get_config()
  config.points = "kernels_only"
  with pytest.raises(ValueError, match=r"config.points: 'kernels_only' gives "
                     r"masked\(quantize\(bits=4\),mask=<callable <lambda>>\), "
                     "which has no string form"):
    pipeline.sweep(config)


def test_rows_of_another_version_of_the_numbers_are_not_mixed_in(
    finished, data_dir, tmp_path, monkeypatch):
  workdir, _ = finished
  copy = _copy(workdir, tmp_path)
  saved = json.loads((copy / "results.json").read_text())
  del saved["experiment"]["numbers_version"]  # as written before version 2
  (copy / "results.json").write_text(json.dumps(saved))
  monkeypatch.setattr(pipeline, "Stages", None)
  with pytest.raises(ValueError, match=r"\(numbers_version: None there, 4 "
                     r"now\) \(its rows were computed by a version of lsh_gan "
                     r"whose metrics give other numbers\)"):
    pipeline.run(tiny(data_dir), str(copy))
