#!/usr/bin/env bash
# The compression sweeps of docs/results.md: every pre-trained generator, the
# full sweep of configs/results.py, 3 seeds. Run from the repository root:
#
#   bash benchmarks/results_sweeps.sh [RUNS_DIR]     # about 90 min on 2 cores
#
# Each generator's sweep is resumable (rerun the script after an interruption:
# finished points are kept); its wall time is appended to RUNS_DIR/times.txt.
# Then `python benchmarks/results_figures.py` draws the figures and tables.
set -euo pipefail
runs="${1:-runs/results}"
mkdir -p "$runs"
for generator in dcgan_mnist5k wgan_gp_mnist5k dcgan_digits dcgan_shapes \
    pix2pix_edges2digits mlp_gan_ring8 mlp_gan_grid25; do
  start=$(date +%s)
  python launch.py --config="configs/results.py:$generator" --seeds=3 \
      --workdir="$runs/$generator"
  echo "$generator $(( $(date +%s) - start )) s" >> "$runs/times.txt"
done
