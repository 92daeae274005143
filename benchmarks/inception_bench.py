"""Images per second of the FID Inception-v3: ours (JAX) against pytorch-fid.

Run from the repository root (a few minutes on 2 cores):

  python benchmarks/inception_bench.py
  python benchmarks/inception_bench.py --batch=50 --repeats=3

Both networks get random weights of the standard shapes (speed does not
depend on the values) and the same batch of images; each cell is the best of
`repeats` timed batches after one warm-up (which compiles ours). The ceiling
is the machine's float32 matrix-product rate (a 2,048-square product, timed
in the same run) divided by the network's floating-point operations per
image (XLA's count for one 299 x 299 image): the images/s the network would
reach if every operation ran at GEMM speed (a ceiling). pytorch-fid's column needs the
`reference` extra (torch, pytorch-fid); without it the column is left out.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

SHAPES = ((28, 28, 1), (32, 32, 3), (299, 299, 3))


def _best(fn, repeats: int) -> float:
  fn()  # warm-up (compilation for ours)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times)


def gemm_rate(size: int = 2048, repeats: int = 3) -> float:
  """float32 matrix-product FLOP/s of this machine under XLA."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  a = jnp.ones((size, size), jnp.float32)
  product = jax.jit(lambda x: jnp.dot(x, x, precision="highest"))
  seconds = _best(lambda: product(a).block_until_ready(), repeats)
  return 2 * size ** 3 / seconds


def ours(batch: int):
  import jax  # pylint: disable=g-import-not-at-top
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  from lsh_gan.models import inception  # pylint: disable=g-import-not-at-top
  model = inception.InceptionV3()
  params = model.init(jax.random.key(0), np.zeros((1, 299, 299, 3),
                                                  np.float32))
  network = jax.jit(inception.InceptionV3(resize_input=False).apply)
  flops = network.lower(params, np.zeros((1, 299, 299, 3), np.float32)
                        ).compile().cost_analysis()
  flops = (flops[0] if isinstance(flops, list) else flops)["flops"]
  embed_fn = pretrained._inception_embed_fn()  # pylint: disable=protected-access
  return (lambda images: embed_fn(params, images).block_until_ready()), flops


def reference():
  """pytorch-fid's network with random weights, or None without torch."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
    import torchvision  # pylint: disable=g-import-not-at-top
    from pytorch_fid import inception as fid  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  state = torchvision.models.inception_v3(
      num_classes=1008, aux_logits=False, weights=None,
      init_weights=False).state_dict()
  original = fid.load_state_dict_from_url
  fid.load_state_dict_from_url = lambda *a, **k: state
  try:
    net = fid.InceptionV3([3]).eval()
  finally:
    fid.load_state_dict_from_url = original

  def run(images):
    x = torch.from_numpy((images + 1) / 2).permute(0, 3, 1, 2)
    if x.shape[1] == 1:
      x = x.repeat(1, 3, 1, 1)
    with torch.no_grad():
      return net(x)[0]
  return run


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  del argv
  batch, repeats = flags.FLAGS.batch, flags.FLAGS.repeats
  import jax  # pylint: disable=g-import-not-at-top
  rate = gemm_rate()
  embed, flops = ours(batch)
  ref = reference()
  ceiling = rate / flops
  print(f"device: {jax.devices()[0].device_kind}; float32 GEMM "
        f"{rate / 1e9:.1f} GFLOP/s; {flops / 1e9:.2f} GFLOP per image; "
        f"batch {batch}, best of {repeats}\n")
  head = ["input", "ours (images/s)"]
  if ref is not None:
    head.append("pytorch-fid (images/s)")
  head.append("GEMM ceiling (images/s)")
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for shape in SHAPES:
    images = np.random.default_rng(0).uniform(
        -1, 1, (batch,) + shape).astype(np.float32)
    cells = [f"{batch / _best(lambda: embed(images), repeats):.1f}"]
    if ref is not None:
      cells.append(f"{batch / _best(lambda: ref(images), repeats):.1f}")
    cells.append(f"{ceiling:.1f}")
    lines.append(f"| {'x'.join(map(str, shape))} | " + " | ".join(cells) +
                 " |")
  print("\n".join(lines))


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_integer("batch", 50, "images per timed batch")
  flags.DEFINE_integer("repeats", 3, "timed batches per cell (best kept)")
  app.run(main)
