"""Known-truth sets built from real digit embeddings (benchmarks/known_truth.py):
LSH-only, LSH+KNN, density/coverage and the robust peers hold every case's
bound, or read its value within 0.1, at their defaults (or, where exact KNN
itself is off the truth, about as close as exact KNN), and none more than
0.1 worse than exact KNN on the same case; the known misses are listed,
each with why."""

import os
import sys

from lsh_gan import metrics
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "benchmarks"))
import known_truth  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope="module", params=["mnist5k", "digits"])
def scored(request, data_dir):
  real, cases = known_truth.embedded_cases(request.param, data_dir)
  ref = metrics.Reference(real)
  return request.param, {
      m: known_truth.truths({c: known_truth.score(m, ref, fake)
                             for c, fake in cases.items()})
      for m in known_truth.METRICS}


# Known misses, measured in the multilayer embeddings: with 20% noise images
# among the digits, LSH-only recall reads 1.000 on digits (truth 0.86): the
# noise images, a compact cluster of their own in this embedding, change the
# calibration of the fake tables (docs/metrics.md, known-truth table). The
# test asserts they are still misses, so that a fix updates this list.
KNOWN_MISSES = {("digits", "lsh", "noise20", "recall")} | {
    (dataset, metric, case, "recall") for dataset in ("mnist5k", "digits")
    for metric, case in (
        # One radius per set, from the mean k-NN distance: the compact
        # noise cluster in the fake set shrinks the fake radius, and
        # P-recall falls (0.49 for 0.68 on mnist5k).
        ("p", "noise20"),
        # A bandwidth from the 5d = 160-th neighbour: over half the classes
        # the fake KDE still reaches every real digit (recall 0.95-1.00).
        ("top", "half"),
        # Calibrated as a fraction of good fake samples, not of the real
        # set covered: half the classes read as all good (0.90 for 0.44),
        # 20% noise as 80% good (0.70 for 0.88).
        ("clipped", "half"), ("clipped", "noise20"))}
# Coverage's balls are k = 5 balls around the real points, read by a fake
# set a quarter the real set's size: a fresh sample covers 0.46 (digits)
# and 0.57 (mnist5k).
KNOWN_MISSES |= {(dataset, "dc", "heldout", "recall")
                 for dataset in ("mnist5k", "digits")}
# One mean radius per set, times a = 1.2: a fresh sample of the digits reads
# P-precision 0.58 and P-recall 0.59, under the bound of 0.6 (its ceiling is
# set by a and k, not by the data).
KNOWN_MISSES |= {("digits", "p", "heldout", side)
                 for side in ("precision", "recall")}


@pytest.mark.parametrize("metric", ["lsh", "lsh_knn", "dc", "p", "top",
                                    "clipped"])
def test_reads_every_known_truth_case_within_a_tenth(scored, metric):
  dataset, scored = scored
  wrong, missed = [], []
  for (case, side), (reading, kind, target) in scored[metric].items():
    err = known_truth.error(reading, kind, target)
    exact = known_truth.error(*scored["knn"][case, side])
    # Where exact KNN, the independent instrument, is itself off a truth
    # (half the classes: the fake set's balls also cover real points of
    # the other classes, and recall reads 0.48-0.51 for 0.38-0.42), the
    # construction does not hold exactly in this embedding; a metric may
    # then be off as far as exact KNN, plus its own sampling (0.03).
    # A bound must hold (it already leaves that room); a value is read
    # within TOLERANCE.
    allowed = known_truth.slack(kind)
    if exact > known_truth.TOLERANCE / 2:
      allowed = max(allowed, exact + 0.03)
    bad = err > allowed or err > exact + known_truth.TOLERANCE
    if (dataset, metric, case, side) in KNOWN_MISSES:
      missed.append(bad)
    elif bad:
      wrong.append(f"{case} {side}: {reading:.3f}, truth {kind} {target:.3f}"
                   f" (exact KNN off by {exact:.3f})")
  assert not wrong, wrong
  assert all(missed), "a known miss now reads right: update KNOWN_MISSES"


def test_the_cases_are_what_they_claim(scored):
  # Exact KNN, the independent instrument, sees the constructions: noise
  # images are far from every digit, half the classes halve recall.
  knn = scored[1]["knn"]
  assert knn["noise", "precision"][0] <= 0.05
  assert knn["half", "recall"][0] < 0.75 * knn["heldout", "recall"][0]
  assert knn["noise20", "precision"][0] == pytest.approx(
      knn["noise20", "precision"][2], abs=0.05)
