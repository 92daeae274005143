# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Precision/recall metrics on your own embeddings
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lsh-gan/lsh_gan/blob/main/colab/metrics_on_your_embeddings.ipynb)
#
# The metrics take any `(n, d)` float arrays: Inception features, CLIP
# embeddings, your own encoder's. Here the "real" set is a mixture of 10
# Gaussian modes in 64 dimensions and the "fake" sets drop modes or add
# outliers, so the right answers are known. Replace `real` and `fake` with
# your arrays.

# %%
import os
import sys

if "google.colab" in sys.modules:  # Colab: install the library first
  os.system("pip install -q git+https://github.com/lsh-gan/lsh_gan")

SMALL = os.environ.get("LSH_GAN_NOTEBOOK_TEST") == "1"  # the test suite's mode
N = 1000 if SMALL else 10000

# %%
import matplotlib.pyplot as plt
import numpy as np

from lsh_gan import metrics

rng = np.random.default_rng(0)
DIM, MODES = 64, 10
centres = rng.normal(size=(MODES, DIM)) * 4.0


def mixture(n, modes, seed):
  r = np.random.default_rng(seed)
  which = r.choice(modes, n)
  return (centres[which] + r.normal(size=(n, DIM))).astype(np.float32)


real = mixture(N, np.arange(MODES), 1)

# %% [markdown]
# ## One reference, many fake sets
# `metrics.Reference(real)` computes the real side of each metric (k-NN
# radii, LSH tables, Gaussian statistics) the first time a metric needs it
# and reuses it for every fake set you score.

# %%
ref = metrics.Reference(real)
outliers = rng.normal(size=(N // 20, DIM)).astype(np.float32) * 40.0
fakes = {
    "all 10 modes": mixture(N, np.arange(MODES), 2),
    "5 modes": mixture(N, np.arange(5), 3),
    "2 modes": mixture(N, np.arange(2), 4),
    "10 modes + 5% outliers": np.concatenate(
        [mixture(N - len(outliers), np.arange(MODES), 5), outliers]),
}
rows = {}
for name, fake in fakes.items():
  knn = ref.knn_metrics(fake, k=3, density_k=5)
  rows[name] = {
      "KNN P": knn["precision"], "KNN R": knn["recall"],
      "density": knn["density"], "coverage": knn["coverage"],
      **{f"LSH {k[0].upper()}": v
         for k, v in ref.lsh_precision_recall(fake).items()},
      **{f"LSH+KNN {k[0].upper()}": v
         for k, v in ref.lsh_knn_precision_recall(fake, k=3).items()},
      "FID": ref.frechet_distance(fake)["fid"],
  }
  print(f"{name:24s}", {k: round(v, 3) for k, v in rows[name].items()})
print("real-side computations:", dict(ref.computed))

# %% [markdown]
# With modes dropped, recall falls and precision stays: LSH recall and
# coverage read about 0.5 (5 of 10 modes) and 0.2 (2 of 10), KNN recall
# falls in proportion to its all-modes value. Outliers in the fake set
# inflate KNN recall; LSH precision drops by about the outlier share (each
# outlier lands in an empty bucket), and LSH recall does not move.

# %%
names = list(rows)
columns = ["KNN R", "LSH R", "LSH+KNN R", "coverage"]
x = np.arange(len(names))
fig, ax = plt.subplots(figsize=(9, 3.5))
for i, column in enumerate(columns):
  ax.bar(x + (i - 1.5) * 0.2, [rows[n][column] for n in names], 0.2,
         label=column)
ax.set_xticks(x, names)
ax.set_ylabel("recall")
ax.legend()
plt.show()
