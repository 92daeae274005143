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
# # lsh_gan quickstart: compress a pre-trained GAN and measure what changed
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lsh-gan/lsh_gan/blob/main/colab/quickstart.ipynb)
#
# 1. load the committed DCGAN trained on `mnist5k` (5,000 real MNIST digits),
# 2. compress its parameters with transforms composed in your own code,
# 3. generate from the same latents before and after,
# 4. embed both sets with the committed mnist5k embedder and score them
#    against the real digits with the KNN and LSH precision/recall metrics,
# 5. plot.
#
# Nothing is downloaded at run time: the models and the data ship with the
# packages.

# %%
import os
import sys

if "google.colab" in sys.modules:  # Colab: install the library first
  os.system("pip install -q git+https://github.com/lsh-gan/lsh_gan")

# The test suite runs this notebook with LSH_GAN_NOTEBOOK_TEST=1: fewer samples.
NUM_SAMPLES = 500 if os.environ.get("LSH_GAN_NOTEBOOK_TEST") == "1" else 5000

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np

from lsh_gan import compress, data, metrics, pretrained, report

sample_fn, variables = pretrained.generator("dcgan_mnist5k")
embed_fn, embed_params = pretrained.embedder("mnist5k")
print(pretrained.info("dcgan_mnist5k")["metrics"])

# %% [markdown]
# ## Compose transforms
# Each transform is a pure `params -> params` function; `chain` composes
# them and `str(t)` is the string the launcher's sweeps use.

# %%
transforms = {
    "baseline": compress.identity(),
    "4-bit per channel": compress.chain(compress.clip(percentile=99.9),
                                        compress.quantize(4, axis=-1)),
    "2-bit per tensor": compress.quantize(2),
    "pruned 90%": compress.prune(0.9),
}
for name, t in transforms.items():
  size = compress.report(variables, t.pack(variables)).total
  print(f"{name:18s} {str(t):48s} {size.compression_ratio:5.1f}x smaller")

# %% [markdown]
# ## Generate from the same latents, embed, score
# One `metrics.Reference` holds the real side of every metric, computed once.

# %%
key = jax.random.key(0)  # the same key: the same latents for every setting
real = data.images("mnist5k", "train")
ref = metrics.Reference(np.asarray(embed_fn(embed_params, real)))

samples, scores = {}, {}
for name, t in transforms.items():
  images = np.asarray(sample_fn(t(variables), key, NUM_SAMPLES))
  fake = np.asarray(embed_fn(embed_params, images))
  samples[name] = images
  scores[name] = {
      "KNN": ref.knn_precision_recall(fake, k=3),
      "LSH": ref.lsh_precision_recall(fake),
      "LSH+KNN": ref.lsh_knn_precision_recall(fake, k=3),
  }
  print(f"{name:18s}", {m: {k: round(v, 3) for k, v in s.items()}
                        for m, s in scores[name].items()})

# %% [markdown]
# ## Plot: samples and precision/recall

# %%
fig, axes = plt.subplots(1, len(samples), figsize=(4 * len(samples), 4))
for ax, (name, images) in zip(axes, samples.items()):
  ax.imshow(report.tile(images[:36], cols=6)[..., 0], cmap="gray")
  ax.set_title(name)
  ax.axis("off")
plt.show()

fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
for ax, family in zip(axes, ("KNN", "LSH", "LSH+KNN")):
  names = list(scores)
  x = np.arange(len(names))
  ax.bar(x - 0.2, [scores[n][family]["precision"] for n in names], 0.4,
         label="precision")
  ax.bar(x + 0.2, [scores[n][family]["recall"] for n in names], 0.4,
         label="recall")
  ax.set_xticks(x, names, rotation=30, ha="right")
  ax.set_title(family)
axes[0].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The full sweep (16 settings, every metric, tables, plots, resumable) is one
# command: `python launch.py`.
