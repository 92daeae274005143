"""lsh_gan.finetune.distill on a pix2pix (conftest's small `tiny_pix2pix`,
a 2-level U-Net): a slimmer U-Net, resumed bit for bit. A module of its
own, outside conftest's ONE_WORKER, so xdist may run it beside
distill_test.py."""

import jax
import numpy as np
import pytest

from lsh_gan import compress
from lsh_gan import finetune

import conftest


def test_a_pix2pix_distils_into_a_slimmer_u_net_and_resumes_bit_exactly(
    with_tiny_pix2pix, data_dir, tmp_path):
  # The teacher's U-Net levels (4, 8) at width 2 are (2, 4); pairs from
  # edges2digits.
  name = conftest.TINY_PIX2PIX
  kwargs = dict(width=2, steps=4, batch_size=8, data_dir=data_dir)
  whole = finetune.distill(name, **kwargs)
  finetune.distill(name, workdir=tmp_path / "b", stop_after=2, **kwargs)
  resumed = finetune.distill(name, workdir=tmp_path / "b", **kwargs)
  for a, b in zip(jax.tree.leaves(whole.variables),
                  jax.tree.leaves(resumed.variables)):
    np.testing.assert_array_equal(a, b)
  assert finetune.teacher_channels(name) == (4, 8)
  assert whole.channels == (2, 4)
  # Half the channels: 0.36 of the MACs (those of the first and last
  # convolutions, on the one-channel images, only halve).
  assert whole.macs == finetune.macs_of(name, 2) < finetune.macs_of(name) / 2
  conftest.assert_translates(whole, data_dir)
  # The fine-tuning methods under a transform still take latents only.
  with pytest.raises(ValueError, match="conditional generator"):
    finetune.quantization_aware(name, compress.quantize(4), steps=1)
