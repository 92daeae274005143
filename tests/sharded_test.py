"""Metrics on a `jax.sharding` mesh of 8 CPU devices give the one-device
numbers (counts exactly, FID and KID to 1e-6), whatever the layout of the
inputs; one device holds a shard and one visiting shard, never the set.

The cases run in one child process (`tests/sharded_cases.py`): the device
count is fixed when JAX starts, and this process has one device.
"""

import json
import os
import subprocess
import sys

import pytest

from lsh_gan import data
from lsh_gan import pipeline

_CASES = os.path.join(os.path.dirname(__file__), "sharded_cases.py")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
  folder = tmp_path_factory.mktemp("sharded")
  out = folder / "results.json"
  data_dir = str(folder / "tfds")
  data.images("digits", "train", data_dir=data_dir)  # built here, read there
  env = {**os.environ,
         "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") +
                       " --xla_force_host_platform_device_count=8").strip(),
         "JAX_PLATFORMS": "cpu"}
  done = subprocess.run([sys.executable, _CASES, str(out), data_dir,
                         str(folder / "runs")], env=env,
                        capture_output=True, text=True, timeout=900,
                        check=False)
  assert done.returncode == 0, done.stderr[-4000:]
  with open(out) as f:
    return json.load(f)


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
  one, sharded = results["reference"]
  for a, b in zip(one, sharded):
    for key in ("precision", "recall", "density", "coverage"):
      assert b[key] == a[key], key
    for key in ("fid", "kid"):
      assert b[key] == pytest.approx(a[key], rel=1e-6), key
  # Two fake sets, one real side.
  assert results["reference_computed"]["knn"] == 1
  assert results["reference_computed"]["gaussian"] == 1


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


def test_the_pipeline_on_eight_devices_gives_the_one_device_rows(results):
  one, eight = results["pipeline"]["1"], results["pipeline"]["8"]
  assert eight["files"] == one["files"]
  assert "00_baseline.png" in one["files"]
  assert [r["point"] for r in eight["rows"]] == ["baseline",
                                                 "quantize(bits=4)"]
  for a, b in zip(one["rows"], eight["rows"]):
    for metric in pipeline.METRICS:
      if metric == "fid":
        # A difference of covariance traces of order 1 (the embedding's
        # blocks have unit length): float32 sums in another order move it
        # by about 1e-8, up to 1e-6 of its own small value.
        assert b[metric] == pytest.approx(a[metric], abs=1e-6)
      else:  # the same samples and embeddings: the same counts and KID
        assert b[metric] == a[metric], metric
