r"""Throughput of the compression transforms on a 100M-parameter tree.

Each transform runs jitted (``jax.jit(t)``) on a float32 tree of realistic
generator layer shapes (3x3 convs of 512 and 1024 channels, 4096-wide dense
layers, a latent projection, and their biases), after one warm-up call that
compiles; the table gives the median wall time and GB/s of float32 parameters
processed.

  python benchmarks/compress_bench.py                    # ~100M parameters
  python benchmarks/compress_bench.py --millions=10 --repeats=5
"""

import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan import compress

_MILLIONS = flags.DEFINE_float("millions", 100.0,
                               "Approximate parameter count, in millions.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per transform.")
_ONLY = flags.DEFINE_string("only", None, "Run only rows containing this.")

# (name, shape, count) of a 100M-parameter generator.
_LAYERS = (
    ("latent_proj", (256, 16384), 1),
    ("conv3x3_1024", (3, 3, 1024, 1024), 4),
    ("conv3x3_1024_512", (3, 3, 1024, 512), 2),
    ("conv3x3_512", (3, 3, 512, 512), 6),
    ("dense_4096", (4096, 4096), 2),
    ("to_rgb", (1, 1, 512, 3), 1),
)

CASES = (
    ("quantize(bits=8)", "call"),
    ("quantize(bits=4)", "call"),
    ("quantize(bits=4,axis=-1)", "call"),
    ("quantize(bits=4,symmetric=False,axis=-1)", "call"),
    ("quantize(bits=1)", "call"),
    ("clip(threshold=0.01)", "call"),
    ("clip(percentile=99.9)", "call"),
    ("clip(num_std=3.0)", "call"),
    ("prune(sparsity=0.5)", "call"),
    ("prune(sparsity=0.5,scope='global')", "call"),
    ("quantize(bits=4)", "pack"),
    ("quantize(bits=4,axis=-1)", "pack"),
    ("quantize(bits=3)", "pack"),
    ("quantize(bits=4)", "unpack"),
)


def make_tree(millions: float):
  scale = millions / 100.0
  rng = np.random.default_rng(0)
  tree = {}
  for name, shape, count in _LAYERS:
    shape = list(shape)
    shape[-1] = max(1, int(round(shape[-1] * scale)))
    for i in range(count):
      tree[f"{name}_{i}"] = {
          "kernel": jnp.asarray(rng.standard_normal(shape, np.float32) * 0.02),
          "bias": jnp.zeros(shape[-1], jnp.float32)}
  return tree


def _time(fn, arg, repeats):
  jax.block_until_ready(fn(arg))  # compile and warm up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(arg))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv):
  del argv
  tree = make_tree(_MILLIONS.value)
  n = sum(x.size for x in jax.tree_util.tree_leaves(tree))
  gb = 4 * n / 1e9
  print(f"tree: {n / 1e6:.1f}M float32 parameters ({gb:.2f} GB), "
        f"{len(jax.tree_util.tree_leaves(tree))} leaves; device "
        f"{jax.devices()[0].platform}, {jax.device_count()} device(s); "
        f"median of {_REPEATS.value} runs after warm-up\n")
  header = f"{'transform':45s} {'mode':7s} {'seconds':>8s} {'GB/s':>7s}"
  print(header)
  print("-" * len(header))
  for spec, mode in CASES:
    if _ONLY.value and _ONLY.value not in f"{spec} {mode}":
      continue
    t = compress.parse(spec)
    if mode == "call":
      fn, arg = jax.jit(t), tree
    elif mode == "pack":
      fn, arg = jax.jit(t.pack), tree
    else:
      fn, arg = jax.jit(compress.unpack), t.pack(tree)
    seconds = _time(fn, arg, _REPEATS.value)
    print(f"{spec:45s} {mode:7s} {seconds:8.3f} {gb / seconds:7.2f}",
          flush=True)


if __name__ == "__main__":
  app.run(main)
