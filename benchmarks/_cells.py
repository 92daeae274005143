"""Resumable benchmark cells, each run in its own process.

A benchmark is a grid of cells (a method at a size). Each cell runs in a
fresh process, so its peak memory is its own, and its result is kept in a
JSON file written atomically after every cell: a rerun skips finished cells,
so an interrupted benchmark resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

from lsh_gan import _files


def peak_rss_gb() -> float:
  """This process's peak resident memory so far, GB."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def current_rss_gb() -> float:
  """This process's resident memory now, GB."""
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 30


def best_of(fn, *args, runs: int = 3, repeat_below_s: float = 20.0):
  """(fn(*args)'s last output, {seconds: the best run, runs, first, peak_gb:
  peak resident memory beyond what the process held before}): fn runs up
  to `runs` times while its runs so far took under repeat_below_s in all
  (one run of milliseconds varies by 2x on a shared machine)."""
  import time  # pylint: disable=g-import-not-at-top
  base = current_rss_gb()
  times = []
  while len(times) < runs and sum(times) < repeat_below_s:
    start = time.perf_counter()
    out = fn(*args)
    times.append(time.perf_counter() - start)
  return out, {"seconds": min(times), "runs": len(times), "first": times[0],
               "peak_gb": max(0.0, peak_rss_gb() - base)}


def load(path: str) -> dict:
  """The results saved at path ({} if none); a damaged file is named."""
  if os.path.exists(path):
    return _files.read_json(path, "benchmark results", "move it away to "
                            "measure every cell again")
  return {}


def run(script: str, keys, path: str, skip=None, args=()) -> dict:
  """Runs `python script --cell=KEY *args` for each key not yet in the file
  at path.

  The cell's result is the JSON object on the last line of its stdout; a
  failed process is recorded as {"error": "failed (exit code)"} and tried
  again by the next run. `skip(key)`
  may return a reason not to run a cell, recorded as its error.
  """
  results = load(path)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  for key in keys:
    if key in results and not results[key].get("error", "").startswith(
        "failed"):  # a failed cell is tried again
      continue
    reason = skip(key) if skip else None
    if reason:
      results[key] = {"error": reason}
    else:
      proc = subprocess.run([sys.executable, os.path.abspath(script),
                             f"--cell={key}", *args], capture_output=True, text=True,
                            check=False)
      if proc.returncode:
        results[key] = {"error": f"failed ({proc.returncode})"}
        print(proc.stderr[-2000:], file=sys.stderr)
      else:
        results[key] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(key, results[key], flush=True)
    _files.write_json(path, results, sort_keys=True)
  return results
