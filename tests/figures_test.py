"""lsh_gan.report: tiles, sample grids, sweep plots and the summary table."""

import os

import numpy as np
import pytest

from lsh_gan import pipeline
from lsh_gan import report


def test_tile_places_each_image_in_its_cell():
  images = np.stack([np.full((2, 3, 1), v) for v in (-1.0, 0.0, 1.0)])
  grid = report.tile(images, cols=2, pad=1)
  assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 1)
  np.testing.assert_array_equal(grid[1:3, 1:4, 0], 0.0)   # -1 -> black
  np.testing.assert_array_equal(grid[1:3, 5:8, 0], 0.5)   # 0 -> grey
  np.testing.assert_array_equal(grid[4:6, 1:4, 0], 1.0)   # 1 -> white
  np.testing.assert_array_equal(grid[4:6, 5:8, 0], 1.0)   # empty cell
  np.testing.assert_array_equal(grid[0], 1.0)             # border
  with pytest.raises(ValueError, match=r"images must be \(n, H, W, C\)"):
    report.tile(np.zeros((3, 4)))


def test_sample_grids_and_sweep_plots_are_written(tmp_path):
  rng = np.random.default_rng(0)
  images = report.sample_grid(rng.uniform(-1, 1, (10, 8, 8, 1)),
                              str(tmp_path / "a" / "images.png"), title="t")
  points = report.sample_grid(rng.normal(size=(100, 2)),
                              str(tmp_path / "points.png"),
                              modes=np.zeros((1, 2)))
  rows = []
  for point, transform, bits in (("baseline", "identity", 32),
                                 ("quantize(bits=4)", "quantize(bits=4)", 4),
                                 ("quantize(bits=2,axis=-1)",
                                  "quantize(bits=2,axis=-1)", 2),
                                 ("prune(sparsity=0.5)", "prune(sparsity=0.5)",
                                  32)):
    row = {m: rng.uniform() for m in pipeline.METRICS}
    row.update(point=point, transform=transform, bits=bits,
               compression_ratio=32 / bits, stored_bytes=100, compress_s=0.1,
               generate_s=0.2, embed_s=0.3, score_s=0.4, notes="")
    rows.append(row)
  plots = report.sweep_plots(rows, str(tmp_path), title="x")
  assert [os.path.basename(p) for p in plots] == ["metrics_vs_bits.png",
                                                 "precision_recall.png"]
  for path in (images, points, *plots):
    with open(path, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp.png")]
  table = report.summary_table(rows, notes=False).splitlines()
  assert len(table) == 1 + len(rows)
  assert table[2].split() == ["quantize(bits=4)", "4", "8.0x",
                              *(f"{rows[1][k]:.3f}" for k in (
                                  "knn_precision", "knn_recall",
                                  "lsh_precision", "lsh_recall",
                                  "lsh_knn_precision", "lsh_knn_recall")),
                              f"{rows[1]['fid']:.3f}"]
  rows[3]["point"] = "clip(percentile=99.9)+quantize(bits=3,axis=-1)"
  rows[0]["fid"] = 1880.4
  printed = report.summary_table(rows)
  # An 80-column terminal: a long point name gets a line of its own.
  assert max(len(line) for line in printed.splitlines()) <= 80
  assert "\nclip(percentile=99.9)+quantize(bits=3,axis=-1)\n " in printed
  assert printed.splitlines()[1].split()[-1] == "1880"
  assert "pruning and\n  clipping keep dense float32 storage" in printed
  assert "KID\n  (unbiased MMD^2" in printed


def test_markdown_table():
  assert report.markdown_table(("a", "b"), [["1", "2"], ["3", "4"]]) == (
      "| a | b |\n| --- | --- |\n| 1 | 2 |\n| 3 | 4 |")
  assert report.markdown_table(["x"], []) == "| x |\n| --- |"


def test_figures_leave_the_matplotlib_backend_and_pyplot_alone(tmp_path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  backend = matplotlib.get_backend()
  matplotlib.use("svg")  # a user's choice
  try:
    figures = plt.get_fignums()
    report.sample_grid(np.zeros((4, 2, 2, 1)), str(tmp_path / "a.png"))
    assert matplotlib.get_backend() == "svg"
    assert plt.get_fignums() == figures  # nothing left open in pyplot
  finally:
    matplotlib.use(backend)
