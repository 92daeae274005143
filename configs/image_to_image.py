"""The pix2pix compressed at matched MACs (docs/image_to_image.md): GAN
Compression's distillation and width search against the density-preserving
collaborative pruning, at 4x, 8x and 12x fewer multiply-accumulates.

  python launch.py --config=configs/image_to_image.py \
      --workdir=runs/image_to_image/matched_macs

Per reduction r, the budget is the committed U-Net's MACs / r and the
points are:
- distill: the widest uniform student within the budget (widths 7, 5 and
  4: 4.9x, 9.2x and 14x fewer);
- search: GAN Compression's once-for-all supernet, per-level shares of
  (0.25, 0.5, 1.0), the best sub-network within the budget by FID on 500
  training pairs, then distilled;
- collaborative_prune(macs_ratio=1/r): the pruning agents, then the cut
  pair fine-tuned.
Each trains for STEPS steps after its search (a third of the pix2pix's
6,000; the supernet as many again, the agents SEARCH_STEPS). The
post-training points are configs/sweep_pix2pix_edges2digits.py's. Every
other field is that sweep's: the 1,000 test pairs, every metric. Each
fine-tuned generator is trained once in the workdir and reused by every
seed.
"""

import ml_collections

from configs import sweep_pix2pix_edges2digits
from lsh_gan import finetune

GENERATOR = "pix2pix_edges2digits"
REDUCTIONS = (4, 8, 12)
STEPS = 2000
SEARCH_STEPS = 500


def widest_within(budget: int) -> int:
  """The widest uniform student whose MACs are within `budget`."""
  return max(w for w in range(1, finetune.teacher_channels(GENERATOR)[0] + 1)
             if finetune.macs_of(GENERATOR, w) <= budget)


def points() -> tuple[str, ...]:
  full = finetune.macs_of(GENERATOR)
  out = []
  for r in REDUCTIONS:
    budget = full // r
    out += [
        f"distill(width={widest_within(budget)}, steps={STEPS}, "
        "batch_size=32)",
        f"search(budget_macs={budget}, supernet_steps={STEPS}, "
        f"steps={STEPS}, choices=(0.25, 0.5, 1.0), search_samples=500, "
        "batch_size=32)",
        f"collaborative_prune(macs_ratio={1 / r!r}, "
        f"search_steps={SEARCH_STEPS}, steps={STEPS}, batch_size=32)"]
  return tuple(out)


def get_config() -> ml_collections.ConfigDict:
  config = sweep_pix2pix_edges2digits.get_config()
  config.points = ";".join(points())
  return config
