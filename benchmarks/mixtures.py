"""Synthetic embedding sets with known structure, for the sweep and benchmark.

`Modes`: well-separated isotropic Gaussian modes (unit spread, centres
~ N(0, 10^2 I)), where precision and recall are known by construction when
the fake set drops or invents modes (the tests use the same construction).

`latent_pair`: the benchmark data. Embeddings of real images have a low
intrinsic dimension; these are 20 Gaussian modes in a 32-dimensional latent
space, mapped into d dimensions by a fixed smooth map (tanh, then a random
linear map) plus isotropic noise at 0.1. The fake set keeps 15 of the 20
modes, shifted by 0.2 in every latent coordinate: an imperfect generator
with some mode dropping, where neither precision nor recall is 0 or 1.
"""

from __future__ import annotations

import numpy as np


class Modes:
  """Gaussian modes with unit spread and centres ~ N(0, 10^2 I)."""

  def __init__(self, dim: int, modes: int, seed: int):
    self.rng = np.random.default_rng(seed)
    self.centres = self.rng.normal(size=(modes, dim)) * 10.0
    self.dim = dim

  def sample(self, n: int, modes) -> np.ndarray:
    modes = np.asarray(modes)
    labels = modes[self.rng.integers(0, len(modes), n)]
    return (self.centres[labels] +
            self.rng.normal(size=(n, self.dim))).astype(np.float32)

  def far(self, n: int) -> np.ndarray:
    """Far outliers ~ N(0, 30^2 I)."""
    return (self.rng.normal(size=(n, self.dim)) * 30.0).astype(np.float32)


def latent_pair(n: int, dim: int, seed: int = 0, modes: int = 20,
                kept: int = 15, latent: int = 32, num_fake: int | None = None):
  """(real, fake) float32, (n, dim) and (num_fake or n, dim): see the module
  docstring."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(modes, latent)) * 3.0
  lift = rng.normal(size=(latent, dim)).astype(np.float32) / np.sqrt(latent)

  def sample(keep, shift, n):
    labels = rng.integers(0, keep, n)
    z = centres[labels] + rng.normal(size=(n, latent)) + shift
    x = 3.0 * np.tanh(z / 3.0).astype(np.float32) @ lift
    return x + 0.1 * rng.standard_normal((n, dim), np.float32)

  return sample(modes, 0.0, n), sample(kept, 0.2, num_fake or n)
