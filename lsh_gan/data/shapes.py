"""`shapes`: coloured shapes on a 32x32 RGB canvas, with known factors.

An image dataset whose modes are known exactly: every image shows one shape
on a black canvas, drawn from four independent, uniformly distributed
factors:

  shape     circle, square, triangle
  colour    red, green, blue, yellow
  size      small (radius 4 px), large (radius 6.5 px)
  position  the quadrant of its centre: top-left, top-right, bottom-left,
            bottom-right (the centre is uniform over the part of the
            quadrant at least 2 px from the midlines and r + 1 px from the
            canvas edges, so the shape stays on the canvas and the quadrant
            is never ambiguous)

3 x 4 x 2 x 4 = 96 modes. `label` is the mode,
((shape * 4 + colour) * 2 + size) * 4 + position, and each factor is stored
too. Within a mode the images vary by the exact centre and by a brightness
in [0.75, 1]. Edges are antialiased (4 x 4 supersampling). `train` holds
10,000 images (seed 0), `test` 2,000 (seed 1); the generation is pure
numpy, so the same seed gives the same images on every machine.
"""

from __future__ import annotations

import numpy as np

SIDE = 32
FACTORS = {
    "shape": ("circle", "square", "triangle"),
    "colour": ("red", "green", "blue", "yellow"),
    "size": ("small", "large"),
    "position": ("top-left", "top-right", "bottom-left", "bottom-right"),
}
NUM_MODES = int(np.prod([len(v) for v in FACTORS.values()]))
RADII = (4.0, 6.5)
COLOURS = np.array([[1.0, 0.1, 0.1], [0.1, 1.0, 0.1], [0.15, 0.3, 1.0],
                    [1.0, 0.9, 0.1]], np.float32)
SIZES = {"train": (10_000, 0), "test": (2_000, 1)}
_SUPER = 4


def mode(shape, colour, size, position):
  """The mode index of factor indices (numpy arrays or ints)."""
  return ((np.asarray(shape) * 4 + colour) * 2 + size) * 4 + position


def factors_of(modes) -> dict[str, np.ndarray]:
  """{factor: index} of mode indices (the inverse of `mode`)."""
  modes = np.asarray(modes)
  return {"shape": modes // 32, "colour": modes // 8 % 4,
          "size": modes // 4 % 2, "position": modes % 4}


def _coverage(shape: int, dy: np.ndarray, dx: np.ndarray, r: float):
  """Boolean mask of the shape at offsets (dy, dx) from its centre."""
  if shape == 0:  # circle
    return dy * dy + dx * dx <= r * r
  if shape == 1:  # square of the circle's area
    half = r * np.sqrt(np.pi) / 2
    return (np.abs(dy) <= half) & (np.abs(dx) <= half)
  # Upward isosceles triangle: apex at -r, base at +r, base width 2r.
  return (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2)


def render(shape: int, colour: int, size: int, centre, brightness: float
           ) -> np.ndarray:
  """One (32, 32, 3) uint8 image."""
  grid = (np.arange(SIDE * _SUPER) + 0.5) / _SUPER
  dy = grid[:, None] - centre[0]
  dx = grid[None, :] - centre[1]
  mask = _coverage(shape, dy, dx, RADII[size]).astype(np.float32)
  alpha = mask.reshape(SIDE, _SUPER, SIDE, _SUPER).mean(axis=(1, 3))
  rgb = alpha[..., None] * COLOURS[colour] * brightness
  return np.rint(255 * rgb).astype(np.uint8)


def generate(n: int, seed: int) -> dict[str, np.ndarray]:
  """n images and their factors: {"image": uint8 (n, 32, 32, 3), "label":
  mode, "shape", "colour", "size", "position"} (int64 (n,))."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, NUM_MODES, n)
  f = factors_of(labels)
  images = np.empty((n, SIDE, SIDE, 3), np.uint8)
  half = SIDE / 2
  for i in range(n):
    r = RADII[f["size"][i]]
    # Distance of the centre from the near canvas edge, in [r + 1, half - 2].
    low, high = r + 1, half - 2
    inset = rng.uniform(low, high, 2)
    row, col = f["position"][i] // 2, f["position"][i] % 2
    centre = (SIDE - inset[0] if row else inset[0],
              SIDE - inset[1] if col else inset[1])
    images[i] = render(f["shape"][i], f["colour"][i], f["size"][i], centre,
                       rng.uniform(0.75, 1.0))
  return {"image": images, "label": labels.astype(np.int64),
          **{k: v.astype(np.int64) for k, v in f.items()}}
