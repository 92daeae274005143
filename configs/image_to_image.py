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
evaluation seed.

Training seeds: every point is trained at seed 0 first, then again at
seeds 1 and 2 (the recipe's `seed=`), distillation and collaborative
pruning before the search (the costliest), so a run stopped early still
has whole seed-0 rows and spreads for the cheaper methods.
"""

import ml_collections

from configs import sweep_pix2pix_edges2digits
from lsh_gan import finetune

GENERATOR = "pix2pix_edges2digits"
REDUCTIONS = (4, 8, 12)
TRAINING_SEEDS = (0, 1, 2)
STEPS = 2000
SEARCH_STEPS = 500


def widest_within(budget: int) -> int:
  """The widest uniform student whose MACs are within `budget`."""
  return max(w for w in range(1, finetune.teacher_channels(GENERATOR)[0] + 1)
             if finetune.macs_of(GENERATOR, w) <= budget)


def _point(method: str, r: int, seed: int) -> str:
  budget = finetune.macs_of(GENERATOR) // r
  tail = f", seed={seed})" if seed else ")"
  if method == "distill":
    return (f"distill(width={widest_within(budget)}, steps={STEPS}, "
            f"batch_size=32{tail}")
  if method == "search":
    return (f"search(budget_macs={budget}, supernet_steps={STEPS}, "
            f"steps={STEPS}, choices=(0.25, 0.5, 1.0), search_samples=500, "
            f"batch_size=32{tail}")
  return (f"collaborative_prune(macs_ratio={1 / r!r}, "
          f"search_steps={SEARCH_STEPS}, steps={STEPS}, batch_size=32{tail}")


def points() -> tuple[str, ...]:
  """Seed 0's nine points (per reduction: distill, search, collaborative),
  then the other training seeds' distill and collaborative points, then
  their searches."""
  methods = ("distill", "search", "collaborative_prune")
  later = TRAINING_SEEDS[1:]
  return tuple(
      [_point(m, r, 0) for r in REDUCTIONS for m in methods]
      + [_point(m, r, s) for s in later for r in REDUCTIONS
         for m in ("distill", "collaborative_prune")]
      + [_point("search", r, s) for s in later for r in REDUCTIONS])


def get_config() -> ml_collections.ConfigDict:
  config = sweep_pix2pix_edges2digits.get_config()
  config.points = ";".join(points())
  return config
