"""The compression demo: compress a DCGAN generator and report what it did.

This is the main job until the full generation -> embedding -> scoring
launcher lands; it runs the compression stage end to end on a DCGAN
generator's parameter tree (freshly initialized: the pre-trained checkpoints
come with the model zoo).
"""

from __future__ import annotations

import json
import os
import time

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from lsh_gan import compress
from lsh_gan.models import dcgan

DEFAULT_TRANSFORM = "clip(percentile=99.9)+quantize(bits=4,axis=-1)"


def run(transform: str = DEFAULT_TRANSFORM, *, seed: int = 0,
        num_samples: int = 16, workdir: str | None = None) -> dict:
  """Compresses a DCGAN generator with `transform` and reports.

  Args:
    transform: a transform string (see `lsh_gan.compress.parse`).
    seed: seed of the generator's initialization and latents.
    num_samples: images generated before and after compression.
    workdir: if given, the packed variables (Orbax) and ``report.json`` are
      written there.

  Returns:
    A dict with the transform, the report (as a dict), and the mean absolute
    difference between images of the original and compressed generator.

  Raises:
    ValueError: for a bad transform string or `num_samples` < 1.
  """
  t = compress.parse(transform)
  if num_samples < 1:
    raise ValueError(f"num_samples={num_samples} must be >= 1")
  generator = dcgan.Generator()
  init_key, z_key = jax.random.split(jax.random.key(seed))
  z = jax.random.normal(z_key, (num_samples, 100))
  variables = generator.init(init_key, z)

  start = time.perf_counter()
  packed = jax.block_until_ready(t.pack(variables))
  seconds = time.perf_counter() - start
  compressed = compress.unpack(packed)
  exact = all(np.array_equal(a, b) for a, b in zip(
      jax.tree_util.tree_leaves(compressed),
      jax.tree_util.tree_leaves(t(variables))))
  if not exact:
    raise AssertionError("unpack(t.pack(v)) differs from t(v)")
  report = compress.report(variables, packed)

  generate = jax.jit(generator.apply)
  delta = float(jnp.mean(jnp.abs(generate(compressed, z) -
                                 generate(variables, z))))
  print(f"transform: {t}\n")
  print(report.table())
  print(f"\npacked in {seconds:.2f} s; unpack(pack(v)) == t(v) bit for bit; "
        f"mean |image change| over {num_samples} samples: {delta:.4f} "
        "(images in [-1, 1])")
  result = {"transform": str(t), "report": report.to_dict(),
            "mean_abs_image_change": delta}
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    compress.save(os.path.join(workdir, "packed"), packed, force=True)
    tmp = os.path.join(workdir, "report.json.tmp")
    with open(tmp, "w") as f:
      json.dump(result, f, indent=1, default=float)
    os.replace(tmp, os.path.join(workdir, "report.json"))
    logging.info("wrote %s", workdir)
    print(f"wrote {workdir}/report.json and {workdir}/packed")
  return result
