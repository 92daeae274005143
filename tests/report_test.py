"""compress.report against hand computations."""

import math

import numpy as np
import pytest

from lsh_gan import compress
from lsh_gan import report


def _params():
  return {
      "dense": {"kernel": np.array([[1.0, -2.0, 0.5, 0.0]] * 8, np.float32),
                "bias": np.array([0.1, 0.2, 0.3, 0.4], np.float32)},
  }


def test_report_of_a_packed_tree_hand_computed():
  params = _params()
  r = compress.report(params, compress.pack(params, 2))
  kernel, bias = (next(x for x in r.leaves if x.path == p)
                  for p in ("dense/kernel", "dense/bias"))
  # 32 weights at 2 bits: one group of 32 codes -> 2 words = 8 bytes, + scale.
  assert kernel.stored_bytes == 12 and kernel.original_bytes == 128
  assert kernel.storage == "int2 sym"
  assert kernel.effective_bits == 12 * 8 / 32
  assert kernel.compression_ratio == 128 / 12
  # s = 2: 1 -> round(0.5) = 0, -2 -> -2, 0.5 -> 0, 0 -> 0.
  assert kernel.sparsity == 0.75 and kernel.distinct_values == 2
  err = math.sqrt(8 * (1 + 0.25)) / math.sqrt(8 * (1 + 4 + 0.25))
  assert kernel.relative_l2_error == pytest.approx(err, rel=1e-12)
  assert bias.storage == "float32" and bias.compression_ratio == 1.0
  assert bias.relative_l2_error == 0.0 and bias.distinct_values == 4
  total = r.total
  assert total.num_params == 36 and total.stored_bytes == 12 + 16
  assert total.compression_ratio == 144 / 28
  assert total.sparsity == 24 / 36
  assert total.relative_l2_error == pytest.approx(
      math.sqrt(8 * 1.25) / math.sqrt(8 * 5.25 + 0.01 + 0.04 + 0.09 + 0.16),
      rel=1e-6)


def test_report_of_a_dense_tree_counts_dense_bytes():
  params = _params()
  r = compress.report(params, compress.prune(0.5)(params))
  kernel = next(x for x in r.leaves if x.path == "dense/kernel")
  assert kernel.stored_bytes == 128 and kernel.compression_ratio == 1.0
  assert kernel.sparsity == 0.5  # 8 zeros + 8 halves pruned (ties by index)


def test_report_table_and_dict():
  params = _params()
  r = compress.report(params, compress.pack(params, 4))
  table = str(r)
  for word in ("path", "dense/kernel", "dense/bias", "total", "int4 sym",
               "rel L2 err"):
    assert word in table
  d = r.to_dict()
  assert [x["path"] for x in d["leaves"]] == ["dense/bias", "dense/kernel"]
  assert d["total"]["num_params"] == 36


def test_report_rejects_mismatched_trees():
  params = _params()
  with pytest.raises(ValueError, match="compressed: its tree structure"):
    compress.report(params, {"dense": {"kernel": params["dense"]["kernel"]}})
  other = {"dense": {"kernel": np.zeros((2, 2), np.float32),
                     "bias": params["dense"]["bias"]}}
  with pytest.raises(ValueError, match="leaf 'dense/kernel' has shape"):
    compress.report(params, other)


def test_beyond_noise_is_the_larger_of_the_tolerance_and_three_stderrs():
  base = {"point": "baseline", "num_seeds": 4, "knn_precision_mean": 0.5,
          "knn_precision_std": 0.0, "fid_mean": 0.02, "fid_std": 0.0}
  row = dict(base, point="p")
  # Spreads of 0: the 0.05 tolerance decides.
  assert not report.beyond_noise(dict(row, knn_precision_mean=0.549),
                                 base, "knn_precision")
  assert report.beyond_noise(dict(row, knn_precision_mean=0.451 - 0.01),
                             base, "knn_precision")
  # std 0.1 on both sides, 4 seeds: 3 standard errors are
  # 3 * sqrt((0.01 + 0.01) / 4) = 0.212 by hand.
  noisy = dict(knn_precision_std=0.1)
  assert not report.beyond_noise(dict(row, knn_precision_mean=0.71, **noisy),
                                 dict(base, **noisy), "knn_precision")
  assert report.beyond_noise(dict(row, knn_precision_mean=0.713, **noisy),
                             dict(base, **noisy), "knn_precision")
  # FID: more than 1.5 times the baseline's.
  assert not report.beyond_noise(dict(row, fid_mean=0.0299), base, "fid")
  assert report.beyond_noise(dict(row, fid_mean=0.0301), base, "fid")
  assert report.mean_std_cell(dict(row, fid_std=0.0012), "fid", 4) == (
      "0.0200 ± 0.0012")
  assert report.fid_digits([base]) == 4  # 0.0200: three significant digits


def test_an_undefined_reading_on_one_side_has_moved():
  base = {"point": "baseline", "num_seeds": 3, "top_precision_mean": 0.9,
          "top_precision_std": 0.0}
  nan = dict(base, point="p", top_precision_mean=float("nan"),
             top_precision_std=float("nan"))
  assert report.beyond_noise(nan, base, "top_precision")
  assert report.beyond_noise(base, nan, "top_precision")
  assert not report.beyond_noise(nan, dict(nan, point="baseline"),
                                 "top_precision")
