"""Metrics on a `jax.sharding` mesh of 8 CPU devices give the one-device
numbers (counts exactly, FID and KID to 1e-6), whatever the layout of the
inputs; one device holds a shard and one visiting shard, never the set.

The cases run in one child process (`tests/sharded_cases.py`): the device
count is fixed when JAX starts, and this process has one device.
"""

import os
import sys

import pytest


sys.path.insert(0, os.path.dirname(__file__))
import sharded_cases  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope="module")
def results(compute_once):
  return compute_once("sharded", sharded_cases.run_in_child)


@pytest.mark.parametrize("case", [
    "knn_rows", "knn_host_uneven", "knn_three_devices",
    "knn_grid_columns_replicated", "knn_scale"])
def test_knn_counts_equal_one_device(results, case):
  one, *sharded = results[case]
  assert 0.05 < one["precision"] < 0.95 and 0.05 < one["coverage"] < 0.95
  for other in sharded:
    assert other == one  # exact fractions of integer counts


def test_identical_sets_on_the_mesh(results):
  # Every point is inside its twin's ball: precision = recall = coverage =
  # 1, density (k + 1) / k at k = 5 (tie-free Gaussian data).
  assert results["knn_identical"] == {
      "precision": 1.0, "recall": 1.0, "density": 1.2, "coverage": 1.0}


@pytest.mark.parametrize("scale", ["unit", "tiny", "huge"])
def test_fid_kid_equal_one_device(results, scale):
  one, sharded = results[f"fid_kid_{scale}"]
  assert one["fid"] > 0 and one["kid"] > 0
  for key in ("fid", "kid", "kid_std"):
    assert sharded[key] == pytest.approx(one[key], rel=1e-6), key


def test_reference_on_the_mesh(results):
  one, sharded, batched = results["reference"]
  # From batches, on the mesh: the numbers of the reference on the mesh.
  assert batched == sharded
  for a, b in zip(one, sharded):
    for key in ("precision", "recall", "density", "coverage"):
      assert b[key] == a[key], key
    for key in ("lsh_precision", "lsh_recall"):  # see the LSH-only test
      assert b[key] == pytest.approx(a[key], abs=2 / 500), key
    for key in ("fid", "kid"):
      assert b[key] == pytest.approx(a[key], rel=1e-6), key
    # The robust peers gather the set to one device: its centre is the
    # mesh's mean, equal to the one-device mean to rounding, which may move
    # a point on a ball's or band's edge.
    for key in a:
      if key.split("_")[0] in ("p", "top", "clipped", "realism"):
        assert b[key] == pytest.approx(a[key], abs=2 / 500), key
  # Two fake sets, one real side (on the mesh for exact KNN, and one
  # single-device side for the peers).
  assert results["reference_computed"]["knn"] == 2
  assert results["reference_computed"]["top"] == 1
  assert results["reference_computed"]["gaussian"] == 1


@pytest.mark.parametrize("scale", ["unit", "huge"])
def test_lsh_only_equals_one_device(results, scale):
  cases = {k: v for k, v in results["lsh"].items()
           if k.startswith(scale + " ")}
  # Identical here; the centre is summed in another order on the mesh, so a
  # projection within rounding of a bucket edge could move one key (one
  # point, 1/611) or one bisection step (0.15% of the width) elsewhere.
  widths, *width_scores = cases.pop(f"{scale} width")
  assert widths[1] == pytest.approx(widths[0], rel=2e-3)
  assert width_scores[1] == pytest.approx(width_scores[0], abs=2 / 608)
  for name, (one, on_mesh) in cases.items():
    assert on_mesh == pytest.approx(one, abs=2 / 611), name
  # Two clusters against one: recall about one half, precision near 1.
  calibrated = cases[f"{scale} calibrated"][0]
  assert 0.3 < calibrated["recall"] < 0.7 and calibrated["precision"] > 0.8


@pytest.mark.parametrize("case", ["M 128", "few queries", "M 256"])
def test_lsh_knn_pieces_equal_one_device_element_for_element(results, case):
  piece = results["lsh_knn_pieces"][case]
  assert piece["radii equal"] and piece["cover equal"], piece
  # Not a trivial case: some points isolated, a cover neither 0 nor 1,
  # stretches no longer than a few windows.
  assert piece["isolated"] > 0 and 0.2 < piece["covered"] < 0.95, piece
  assert piece["per"] <= 2 * 128, piece


@pytest.mark.parametrize("case", ["unit", "few fake, huge", "many fake",
                                  "fake 1e25 times larger",
                                  "rows, given width", "256 candidates"])
def test_lsh_knn_on_the_mesh_equals_one_device(results, case):
  one, on_mesh = results["lsh_knn"][case]
  # Candidates, radii and covers are computed from the same products on
  # the mesh; only the projections (a product of another shape per
  # device) could move a key at a bucket edge: within two points' worth.
  assert set(on_mesh) == set(one)
  for key, value in one.items():
    if key in ("precision", "recall"):
      assert on_mesh[key] == pytest.approx(value, abs=2 / 300), key
    else:  # the error estimates: the same sample, nearly the same hits
      assert on_mesh[key] == pytest.approx(value, abs=0.02), key
  if case in ("unit", "few fake, huge", "many fake",
              "fake 1e25 times larger"):
    # The real set stayed on the mesh: never gathered onto one device.
    assert not results["lsh_knn"][case + " gathered"]


def test_lsh_width_of_a_set_needing_the_float64_pass(results):
  one, on_mesh = results["lsh"]["dense far-out widths"]
  assert on_mesh == pytest.approx(one, rel=2e-3)


def test_errors_name_the_problem(results):
  errors = results["errors"]
  assert "real: contains NaN or inf (1 values; first in row 517)" in (
      errors["nan"])
  assert "mesh='all' must be a jax.sharding.Mesh" in errors["mesh"]
  assert "fake: has 5 features per point, real has 24" in errors["features"]


def test_one_device_holds_its_shard_not_the_set(results):
  # Measured (XLA's memory analysis, per device) on a set of 8 x 2048 rows:
  # radii hold 1.0 shard as arguments and 3.4 in all; the cross pass (a
  # fake and a real set) 2.1 and 4.6, of 16 shards.
  memory = results["memory"]
  shard = memory["set_bytes"] // 8
  for kernel, sets in (("radii", 1), ("cross", 2)):
    arguments, temporary = memory[kernel]
    # Its own rows of each set, and per-row values.
    assert arguments < 1.1 * sets * shard, kernel
    # Beyond them: the visiting shard, the one in flight, a block of
    # distances and the running minima.
    assert temporary < 3 * shard, kernel
  assert memory["precisions"] == ["Precision.HIGHEST"]


def _model_module(name: str) -> bool:
  """A kernel of the generator (`models.sampler`'s sample) or embedder
  (`pretrained.embedder`'s embed)."""
  return name in ("jit_sample", "jit_embed")


def test_every_float32_product_of_the_metrics_asks_for_highest(results):
  # The child's kernels (every metric on one device and on 8, and a tiny
  # sweep), read from the HLO it dumped: on GPU and TPU a product at the
  # default precision multiplies float32 in TF32 or bfloat16 (3 significant
  # digits), which would move distances past radii. The generator and the
  # embedder run at Flax's default, as they do when trained.
  dots = results["dots"]
  metric_modules = [m for m in dots["modules"] if not _model_module(m)]
  assert len(metric_modules) >= 15, dots["modules"]
  assert [m for m in dots["default"] if not _model_module(m)] == []
