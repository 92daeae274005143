"""The benchmark helpers behind docs/results.md and docs/finetune.md:
resumable cells, how a sweep's summary is read (where a metric breaks,
which way it moves) and how a fine-tuning run's time is read."""

import json
import os
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCHMARKS)
import _cells  # pylint: disable=g-import-not-at-top,wrong-import-position
import results_figures  # pylint: disable=g-import-not-at-top,wrong-import-position

_SCRIPT = """
import json, os, sys
key = sys.argv[1].split("=", 1)[1]
with open(os.environ["CALLS"], "a") as f:
  f.write(key + "\\n")
if key == "bad" and not os.path.exists(os.environ["FIXED"]):
  sys.exit(3)
print("noise")
print(json.dumps({"key": key, "extra": sys.argv[2:]}))
"""


def test_cells_run_once_resume_skip_and_retry_failures(tmp_path, monkeypatch):
  script = tmp_path / "cell.py"
  script.write_text(_SCRIPT)
  calls, out = tmp_path / "calls.txt", str(tmp_path / "r" / "out.json")
  monkeypatch.setenv("CALLS", str(calls))
  monkeypatch.setenv("FIXED", str(tmp_path / "fixed"))
  skip = lambda key: "too big" if key == "huge" else None
  results = _cells.run(str(script), ["a", "bad", "huge"], out, skip=skip,
                       args=["--x=1"])
  assert results == {"a": {"key": "a", "extra": ["--x=1"]},
                     "bad": {"error": "failed (3)"},
                     "huge": {"error": "too big"}}
  with open(out) as f:
    assert json.load(f) == results
  # A rerun runs only the failed cell (now fixed) and the new one.
  (tmp_path / "fixed").write_text("")
  results = _cells.run(str(script), ["a", "bad", "huge", "b"], out, skip=skip)
  assert results["bad"] == {"key": "bad", "extra": []}
  assert calls.read_text().split() == ["a", "bad", "bad", "b"]


def _row(point, bits, p, p_std, r, fid, seeds=3):
  return {"point": point, "transform": point, "bits": bits,
          "num_seeds": seeds, "knn_precision_mean": p,
          "knn_precision_std": p_std, "knn_recall_mean": r,
          "knn_recall_std": 0.01, "fid_mean": fid, "fid_std": 1.0,
          **{f"{m}_{s}": 0.0 for m in ("lsh_knn_precision", "lsh_knn_recall",
                                        "lsh_precision", "lsh_recall",
                                        "density", "coverage", "p_precision",
                                        "p_recall", "top_precision",
                                        "top_recall", "clipped_density",
                                        "clipped_coverage")
             for s in ("mean", "std")}}


def test_a_metric_breaks_where_it_moves_beyond_tolerance_and_noise():
  rows = [_row("baseline", 32, 0.50, 0.01, 0.80, 100.0),
          _row("quantize(bits=8)", 8, 0.54, 0.01, 0.80, 140.0),
          # Moves 0.06 but with a spread of 0.1: 3 standard errors of the
          # difference are 3 * sqrt((0.01^2 + 0.1^2) / 3) = 0.174.
          _row("quantize(bits=4)", 4, 0.56, 0.10, 0.79, 160.0),
          _row("quantize(bits=2)", 2, 0.90, 0.01, 0.10, 900.0),
          _row("quantize(bits=4,axis=-1)", 4, 0.40, 0.01, 0.80, 100.0)]
  assert [r["bits"] for r in results_figures.family(rows, "per tensor")] == [
      32, 8, 4, 2]
  assert results_figures.breaks_at(rows, "per tensor", "knn_precision") == 2
  assert results_figures.breaks_at(rows, "per tensor", "knn_recall") == 2
  assert results_figures.breaks_at(rows, "per tensor", "fid") == 4  # > 1.5x
  assert results_figures.breaks_at(rows, "per channel",
                                   "knn_precision") == 4
  assert results_figures.breaks_at(rows, "per channel", "knn_recall") is None
  table = results_figures.tradeoff_table({"g": rows}).splitlines()
  # Only the 2-bit point moved KNN beyond noise: precision up, recall down.
  assert len(table) == 3
  assert table[2].startswith("| g | 2 | +0.40 / -0.70 | +0.00 / +0.00 |")
  assert table[2].endswith("| 9.0 | precision kept, recall lost |")


def test_undefined_readings_break_and_are_said_to_be_undefined():
  nan = float("nan")
  rows = [_row("baseline", 32, 0.50, 0.01, 0.80, 100.0),
          _row("quantize(bits=8)", 8, 0.50, 0.01, 0.80, 100.0),
          _row("quantize(bits=1)", 1, nan, nan, nan, nan)]
  rows[1]["top_precision_mean"] = nan  # undefined at a seed
  assert results_figures.breaks_at(rows, "per tensor", "knn_precision") == 1
  assert results_figures.breaks_at(rows, "per tensor", "top_precision") == 8
  rows[0]["top_precision_mean"] = nan
  assert results_figures.breaks_at(rows, "per tensor", "top_precision") == (
      "n/a")
  assert results_figures.tradeoff_table({"g": rows}).endswith(
      "| undefined (non-finite samples) |")


@pytest.mark.parametrize("dp, dr, reading", [
    (+0.10, -0.30, "precision kept, recall lost"),
    (-0.20, -0.30, "both lost"),
    (-0.20, +0.00, "precision lost, recall kept")])
def test_the_tradeoff_reading(dp, dr, reading):
  rows = [_row("baseline", 32, 0.5, 0.0, 0.5, 10.0),
          _row("quantize(bits=3)", 3, 0.5 + dp, 0.0, 0.5 + dr, 10.0)]
  assert results_figures.tradeoff_table({"g": rows}).endswith(
      f"| {reading} |")


def test_the_faiss_baseline_gives_our_four_numbers():
  # faiss-cpu is a benchmark extra (pip install -e .[bench]); without it
  # the benchmarks leave its column out, and this test is skipped.
  pytest.importorskip("faiss", reason="faiss-cpu not installed: the "
                      "benchmarks' faiss column is left out")
  import _faiss_knn  # pylint: disable=g-import-not-at-top
  import mixtures  # pylint: disable=g-import-not-at-top
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  real, fake = mixtures.latent_pair(400, 24, seed=3, num_fake=300)
  ours = metrics.Reference(real).knn_metrics(fake, k=3, density_k=5)
  ref = _faiss_knn.FaissReference(real)
  assert ref.score(fake, k=3, density_k=5) == ours  # range searches (d < 512)
  blocks = _faiss_knn.RANGE_MAX_DIM
  try:
    _faiss_knn.RANGE_MAX_DIM = 0  # distance blocks
    assert ref.score(fake, k=3, density_k=5) == ours
  finally:
    _faiss_knn.RANGE_MAX_DIM = blocks
  assert _faiss_knn.gemm_rate(8, repeats=1) > 0


def test_the_gaussian_cells_compare_each_lsh_metric_with_exact_knn():
  import gaussians  # pylint: disable=g-import-not-at-top
  real, fake = gaussians.gaussians(8, 300, 200)
  assert real.shape == (300, 8) and fake.shape == (200, 8)
  assert abs(float(fake.mean()) - 0.1) < 0.05  # the fake set's shift
  cell = gaussians.run_cell(8, 300, 200)
  for name in ("exact", "lsh_knn", "lsh"):
    assert 0 <= cell[name]["precision"] <= 1 and 0 <= cell[name]["recall"] <= 1
  row = gaussians.table({"8x300x200": cell}, ["8x300x200"]).splitlines()[-1]
  gap = cell["lsh_knn"]["precision"] - cell["exact"]["precision"]
  assert row.startswith("| 8 | 300 | 200 |") and f"{gap:+.3f}" in row


def test_training_seconds_take_the_median_rate_and_add_the_search(tmp_path):
  import finetune_table  # pylint: disable=g-import-not-at-top
  run = tmp_path / "search"
  (run / "supernet").mkdir(parents=True)
  (run / "finetune").mkdir()
  # Per step: 0.1, 0.1, 2.0 (a paused interval), 0.1, then a short last
  # interval of 250 steps at 0.1: median 0.1 s x 2,250 steps = 225 s.
  with open(run / "supernet" / "seconds.json", "w") as f:
    json.dump({"500": 50.0, "1000": 100.0, "1500": 1100.0, "2000": 1150.0,
               "2250": 1175.0}, f)
  with open(run / "finetune" / "seconds.json", "w") as f:
    json.dump({"300": 40.0}, f)  # one interval: counted as logged
  with open(run / "search.json", "w") as f:
    json.dump({"seconds": 5.0, "candidates": []}, f)
  assert finetune_table.training_seconds(str(run)) == pytest.approx(270.0)
  with pytest.raises(FileNotFoundError, match="no seconds.json"):
    finetune_table.training_seconds(str(tmp_path / "elsewhere"))
  assert finetune_table.label(
      "prune(sparsity=0.9)+quantize(bits=4) >> "
      "discriminator_supervised(steps=500)") == "90%+4-bit DS"


def test_the_image_to_image_table_marks_changes_beyond_its_margins():
  import image_to_image_table as i2i  # pylint: disable=g-import-not-at-top

  def row(point, **means):
    out = {"point": point, "num_seeds": 3, "bits": 32,
           "compression_ratio": 1.0, "stored_bytes": 4096, "macs": 10}
    for metric in ("knn_precision", "knn_recall", "lsh_precision",
                   "lsh_recall", "fid", "l1", "psnr", "ssim", "edge_f1"):
      out[f"{metric}_mean"] = means.get(metric, 0.5)
      out[f"{metric}_std"] = 1e-17  # identical seeds: rounding only
    return out
  base = row("baseline", fid=0.01, l1=0.05, psnr=20.0, ssim=0.8)
  # Within every margin: L1 1.4x, PSNR -0.9 dB, SSIM -0.04, KNN P -0.04.
  near = row("near", fid=0.014, l1=0.07, psnr=19.1, ssim=0.76,
             knn_precision=0.46)
  # Beyond: L1 1.6x, PSNR -1.1 dB, SSIM -0.06, FID 1.6x, KNN P -0.06.
  far = row("far", fid=0.016, l1=0.08, psnr=18.9, ssim=0.74,
            knn_precision=0.44)
  lines = i2i.table([base, near, far], {"baseline": 0.5, "near": 0.5,
                                        "far": 0.5}).splitlines()
  near_cells = lines[-2].split(" | ")
  far_cells = lines[-1].split(" | ")
  assert not any(c.endswith("*") for c in near_cells)
  # KNN P, FID, L1, PSNR, SSIM marked; no "± 0.000" for rounding spreads.
  assert sum(c.endswith("*") for c in far_cells) == 5
  assert "±" not in lines[-1] and far_cells[1] == "0.440 *"


def test_the_matched_macs_table_reads_one_run_or_seeds(tmp_path):
  import image_to_image_matched as matched  # pylint: disable=g-import-not-at-top
  metrics = {m: 0.5 for _, m, _ in matched.METRICS}
  base = {"transform": "identity", "macs": 1000, "stored_bytes": 4096,
          "finetune_s": 0.0, "generate_1000_s": 0.6, **metrics}
  slim = {**base, "transform": "distill(width=2,steps=5)", "macs": 250,
          "stored_bytes": 1024, "finetune_s": 12.4, "fid": 0.01234}
  with open(tmp_path / "results.json", "w") as f:
    json.dump({"rows": [base, slim]}, f)
  rows, seeds = matched.rows_of(str(tmp_path))
  assert seeds == 1
  last = matched.table(matched.by_training_seed(rows), seeds).splitlines()[
      -1].split(" | ")
  assert last[:6] == ["| distill", "width 2", "0", "250", "4.0×", "1"]
  assert "0.01234" in last and last[-2] == "12"
  # The same point at training seeds 1 and 2: one row, the mean and the
  # sample std over the three (FID 0.010, 0.012, 0.014: std 0.002), in the
  # place of seed 0's row; MACs that differ (a search's) get a spread too.
  seeded_rows = [base, slim] + [
      {**slim, "transform": f"distill(width=2,steps=5,seed={s})",
       "fid": fid, "macs": macs, "finetune_s": 10.0}
      for s, fid, macs in ((2, 0.014, 250), (1, 0.010, 280))]
  seeded_rows[1] = {**slim, "fid": 0.012, "macs": 220}
  grouped = matched.by_training_seed(seeded_rows)
  assert [r["transform"] for r in grouped] == [
      "identity", "distill(width=2,steps=5)"]
  assert grouped[1]["training_seeds"] == [0, 1, 2]
  assert grouped[1]["fid"] == pytest.approx(0.012)
  assert grouped[1]["fid_std"] == pytest.approx(0.002)
  assert grouped[1]["macs"] == pytest.approx(250)
  cells = matched.table(grouped, 1).splitlines()[-1].split(" | ")
  assert cells[2:5] == ["0, 1, 2", "250 ± 30", "4.0×"]
  assert "0.01200 ± 0.00200" in cells
  # A run over evaluation seeds (launch.py --seeds): its summary's rows, with
  # the keys `pipeline.run_seeds` writes (no generation time), the means
  # as the values and a spread that shows given; trained at two seeds too.
  seeded = tmp_path / "seeded"
  seeded.mkdir()
  keys = ("point", "transform", "bits", "stored_bytes", "compression_ratio",
          "macs", "params", "finetune_s")
  summary = []
  for src in (base, slim, {**slim, "transform":
                           "distill(width=2,steps=5,seed=1)", "ssim": 0.54}):
    row = {k: src.get(k, 0) for k in keys}
    row["num_seeds"] = 3
    for m in metrics:
      row[f"{m}_mean"], row[f"{m}_std"] = src[m], 0.0
    summary.append(row)
  summary[0]["ssim_std"] = 0.02
  with open(seeded / "summary.json", "w") as f:
    json.dump({"rows": summary, "seeds": [0, 1, 2]}, f)
  rows, seeds = matched.rows_of(str(seeded))
  text = matched.table(matched.by_training_seed(rows), seeds)
  assert seeds == 3 and text.startswith("3 evaluation seeds")
  lines = text.splitlines()
  assert "0.500 ± 0.020" in lines[-2]  # the evaluation seeds' spread
  # Two training seeds: their spread (SSIM 0.50, 0.54: std 0.028).
  assert "0.520 ± 0.028" in lines[-1] and lines[-1].endswith("| – |")
